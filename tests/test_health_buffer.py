"""Object health rows are buffered: small objects cost ~1 Logs Ingestion request each, and no
row is lost on a normal exit (flush by count, size, age, heartbeat, reset and atexit)."""
from __future__ import annotations

import threading
import time

from sample_logs import guardduty

from shared.health import HealthBuffer

HEALTH = "Custom-AWSS3ConnectorHealth"
GD = "Custom-AWSGuardDuty"


def _buffer(**kw):
    sent: list[list[dict]] = []
    return HealthBuffer(sent.append, **kw), sent


def test_rows_wait_until_the_count_is_reached_then_go_in_one_call():
    buf, sent = _buffer(max_rows=3, max_age=60)
    buf.add([{"Kind": "object", "n": 1}])
    buf.add([{"Kind": "object", "n": 2}])
    assert sent == [] and len(buf) == 2
    buf.add([{"Kind": "object", "n": 3}])
    assert [[r["n"] for r in call] for call in sent] == [[1, 2, 3]] and len(buf) == 0


def test_size_flushes_before_the_count():
    buf, sent = _buffer(max_rows=1000, max_bytes=1000, max_age=60)
    for i in range(5):
        buf.add([{"Kind": "object", "Error": "x" * 300, "n": i}])
    assert len(sent) == 1 and len(sent[0]) == 3 and len(buf) == 2  # ~330 B a row


def test_age_flushes_a_quiet_buffer():
    done = threading.Event()
    sent: list[list[dict]] = []
    buf = HealthBuffer(lambda rows: (sent.append(rows), done.set()), max_rows=100, max_age=0.2)
    buf.add([{"Kind": "object"}])
    assert done.wait(5) and len(sent[0]) == 1
    buf.flush()
    assert len(sent) == 1  # nothing left to send twice


def test_small_objects_cost_one_request_each_health_rows_included(world):
    from shared import pipeline

    source = world.add_source("small")
    world.configure()
    conn = pipeline.connector()
    n = 40
    for i in range(n):
        key, data, _ = guardduty(2)
        world.s3.put_object(Bucket=source["_bucket"], Key=f"{key}.{i}", Body=data)
        body = f'{{"source":"small","bucket":"{source["_bucket"]}","key":"{key}.{i}"}}'
        assert pipeline.process_object(conn, body).outcome == "delivered"
    before = len([r for r in world.stack.ingestion.requests if r.stream == HEALTH])
    assert before == 0  # still buffered: no request of their own
    rows = [r for r in world.accepted(HEALTH) if r["Kind"] == "object"]  # flushes
    assert len(rows) == n and {r["Outcome"] for r in rows} == {"delivered"}
    requests = world.stack.ingestion.requests
    assert len([r for r in requests if r.stream == HEALTH]) == 1
    assert len(requests) / n <= 1.1


def test_a_heartbeat_sends_the_buffered_object_rows_with_it(world):
    from shared import pipeline

    source = world.add_source("beat")
    world.configure()
    conn = pipeline.connector()
    key, data, _ = guardduty(3)
    world.s3.put_object(Bucket=source["_bucket"], Key=key, Body=data)
    pipeline.process_object(conn, f'{{"source":"beat","bucket":"{source["_bucket"]}",'
                                  f'"key":"{key}"}}')
    pipeline.poll_notifications(conn)
    time.sleep(0.1)
    rows = world.stack.ingestion.accepted(HEALTH)  # no explicit flush
    assert {r["Kind"] for r in rows} == {"object", "heartbeat"}
    assert len([r for r in world.stack.ingestion.requests if r.stream == HEALTH]) == 1
