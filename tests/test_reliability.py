"""Failures of our own infrastructure must not consume the backlog.

GIVEN invalid settings, or a checkpoint table that does not answer on the last attempt, WHEN
work items arrive, THEN they wait on the work queue (re-queued as new messages with a delay,
so no dequeue count is spent), the logs and GET /api/health name the setting, and nothing
reaches the poison queue without our envelope and reason. AND the object lease is short and
renewed while an object is sent, so a killed worker's object resumes within about a minute.
"""
from __future__ import annotations

import logging
import time

import pytest
from sample_logs import guardduty

GD = "Custom-AWSGuardDuty"


def _enqueue_one(world, name):
    src = world.add_source(name)
    key, data, n = guardduty(3)
    world.put(src, key, data)
    world.configure()
    host = world.host()
    host.run_timer()
    assert host.work.get_queue_properties().approximate_message_count == 1
    return host, n


def _receive(host, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = list(host.work.receive_messages(max_messages=1, visibility_timeout=30))
        if msgs:
            return msgs[0]
        time.sleep(0.2)
    raise AssertionError("no work item became visible")


@pytest.mark.parametrize("setting,value", [("LOGS_INGESTION_ENDPOINT", ""),
                                           ("AWS_SOURCES", "[{not json")])
def test_invalid_settings_keep_the_backlog_waiting_and_name_the_setting(world, caplog, setting,
                                                                       value):
    import os
    import threading

    from devtools.hostsim import HostRun
    from shared import pipeline

    host, n = _enqueue_one(world, "cfg")
    good = os.environ[setting]
    world.monkeypatch.setenv(setting, value)
    pipeline.reset_connector()
    world.monkeypatch.setattr(pipeline, "CONFIG_RETRY_SECONDS", 1)  # 300 s in production
    # WHEN the host delivers the item more often than maxDequeueCount allows failures
    run, lock = HostRun(), threading.Lock()
    with caplog.at_level(logging.ERROR):
        for _ in range(host.max_dequeue + 2):
            msg = _receive(host)
            assert msg.dequeue_count == 1, "every round is a new message: no count spent"
            host._invoke(msg, run, lock)
            assert list(host.work.peek_messages()) == [], "the copy waits (invisible)"
    # THEN the function completed each time, the poison queue is empty, and the logs and the
    # health endpoint name the setting
    assert run.failed == 0 and run.moved_to_poison == 0
    assert host.poison_items_all() == []
    assert setting in caplog.text and "re-queued" in caplog.text
    status, body = pipeline.check_health()
    assert status == 503 and setting in body["components"]["settings"]["reason"]
    # AND once the setting is fixed the same item is delivered
    world.monkeypatch.setenv(setting, good)
    pipeline.reset_connector()
    time.sleep(1.1)
    assert host.drain(max_seconds=20).failed == 0
    assert len(world.accepted(GD)) == n


def test_checkpoint_table_down_on_the_last_attempt_requeues_with_reason(world):
    from azure.data.tables import TableClient

    from devtools.stack import free_port
    from shared import checkpoints as cp
    from shared import pipeline
    from shared.errors import StorageError

    host, n = _enqueue_one(world, "tbl")
    conn = pipeline.connector()
    dead = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            f"{world.stack.env['AzureWebJobsStorage'].split('AccountKey=')[1].split(';')[0]};"
            f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;")
    conn.checkpoints = cp.Checkpoints(TableClient.from_connection_string(
        dead, table_name="ckptdown", retry_total=0, connection_timeout=2))
    [msg] = list(host.work.receive_messages(max_messages=1, visibility_timeout=30))
    # GIVEN an attempt before the last: retried by the host, with a reason
    with pytest.raises(StorageError, match="checkpoint table unavailable"):
        pipeline.process_object(conn, msg.content, dequeue_count=1)
    # WHEN the last attempt meets the same outage
    stats = pipeline.process_object(conn, msg.content, dequeue_count=host.max_dequeue)
    host.work.delete_message(msg)  # returned normally: the host completes the original
    # THEN the item waits as a new message; nothing in the poison queue
    assert stats.outcome == "deferred" and "checkpoint table unavailable" in stats.error
    assert host.work.get_queue_properties().approximate_message_count == 1
    assert host.poison_items_all() == []
    assert world.accepted(GD) == []


def test_the_lease_is_short_and_renewed_while_the_object_is_sent(world):
    from shared import checkpoints as cp
    from shared import pipeline
    from shared.notifications import ObjectRef

    src = world.add_source("renew")
    world.configure()
    conn = pipeline.connector()
    assert cp.LEASE_SECONDS <= 60
    ref = ObjectRef(source="renew", bucket=src["_bucket"], key="k", etag="e")
    progress = conn.checkpoints.load(ref)
    assert conn.checkpoints.claim(ref, progress, 2) == 0
    first = conn.checkpoints.load(ref).lease_until
    with conn.checkpoints.keep_lease(ref, progress, every=0.3) as keeper:
        time.sleep(1.0)
    assert keeper.renewals >= 2
    renewed = conn.checkpoints.load(ref).lease_until
    assert renewed > first + 30, "a renewal extends the lease to LEASE_SECONDS from now"
    # a worker that stops renewing (killed) frees the object when the lease runs out
    other = conn.checkpoints.load(ref)
    assert 0 < conn.checkpoints.claim(ref, other, 60) <= cp.LEASE_SECONDS


def test_a_stale_owner_cannot_overwrite_the_checkpoint_of_the_worker_that_took_over(world):
    # GIVEN worker A owns an object, then pauses past its lease; worker B takes the object
    # over and saves its own progress
    from shared import checkpoints as cp
    from shared import pipeline
    from shared.errors import LeaseLost
    from shared.notifications import ObjectRef

    src = world.add_source("owners")
    world.configure()
    conn = pipeline.connector()
    ref = ObjectRef(source="owners", bucket=src["_bucket"], key="k", etag="e")
    a = conn.checkpoints.load(ref)
    assert conn.checkpoints.claim(ref, a, 0.3) == 0
    time.sleep(0.4)  # A is paused (no renewal) longer than its lease
    b = conn.checkpoints.load(ref)
    assert conn.checkpoints.claim(ref, b, 60) == 0, "the lease ran out: B takes over"
    b.done.add(range(0, 50))
    conn.checkpoints.save(ref, b)
    # WHEN A wakes up and saves what it sent meanwhile (a renewal, then its release)
    a.done.add(range(0, 10))
    with pytest.raises(LeaseLost):
        conn.checkpoints.save(ref, a)
    with pytest.raises(LeaseLost):
        conn.checkpoints.save(ref, a, release=True)
    # THEN B's positions and lease are intact (If-Match on A's etag refused both writes)
    row = conn.checkpoints.load(ref)
    assert len(row.done) == 50 and row.state == cp.RUNNING
    assert row.lease_until > time.time() + 30, "B still owns the object"
    conn.checkpoints.save(ref, b, release=True)  # B's own saves go on


def test_a_worker_that_lost_its_object_mid_send_stops_and_the_object_completes(world):
    # GIVEN an object of many batches, and a second worker that takes it over (as after the
    # first one's lease ran out) right after the first batch was stored
    import threading
    from collections import Counter

    from shared import checkpoints as cp
    from shared import pipeline
    from shared.notifications import ObjectRef

    src = world.add_source("takeover")
    key, data, n = guardduty(120)
    world.put(src, key, data)
    world.configure(MAX_BATCH_BYTES="4096", MAX_UPLOADS_IN_FLIGHT="1")
    conn = pipeline.connector()
    ref = ObjectRef(source="takeover", bucket=src["_bucket"], key=key,
                    etag=world.s3.head_object(Bucket=src["_bucket"], Key=key)["ETag"].strip('"'))
    other = cp.Checkpoints(conn.table)
    ids: Counter[str] = Counter()
    batches = {"before": 0, "after": 0, "largest": 0}
    taken: list[cp.Progress] = []
    lock = threading.Lock()

    def sink(stream, records, lost):
        if stream != GD:
            return
        with lock:
            ids.update(r["Id"] for r in records)
            batches["largest"] = max(batches["largest"], len(records))
            batches["after" if taken else "before"] += 1
            if not taken:
                b = other.load(ref)
                b.lease_until = 0.0  # as if A's lease had run out
                assert other.claim(ref, b, 60) == 0
                taken.append(b)

    world.stack.ingestion.sink = sink
    # WHEN worker A sends the object
    stats = pipeline.process_object(conn, ref.to_json())
    # THEN A stops at its next checkpoint save: the item waits (a new copy), at most the
    # batches in flight went out after the takeover, and B's lease was not overwritten
    assert stats.outcome == "deferred", stats.error
    assert batches["before"] == 1 and batches["after"] <= 1
    assert conn.work.depth() == 1
    row = conn.checkpoints.load(ref)
    assert row.lease_until > time.time() + 30 and row.state == cp.RUNNING
    # AND once B lets go, the object resumes and completes: every record, none lost
    other.save(ref, taken[0], release=True)
    assert pipeline.process_object(conn, ref.to_json()).outcome == "delivered"
    assert len(ids) == n
    # repeated: the batch B never heard of, and the one in flight at the takeover
    assert sum(ids.values()) - n <= 2 * batches["largest"]
