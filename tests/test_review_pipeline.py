"""Review findings: each test pins one delivery-contract defect (loss, miscount, race)."""
from __future__ import annotations

import gzip
import json
import sys
import threading
from types import SimpleNamespace

import pytest
from azure.core.exceptions import ClientAuthenticationError
from sample_logs import bad_cloudtrail, guardduty

from shared.batching import batches
from shared.checkpoints import Ranges
from shared.ingestion import Ingestor, RetryPolicy

CT, GD = "Custom-AWSCloudTrail", "Custom-AWSGuardDuty"


def test_records_before_a_format_fault_are_delivered_not_dropped_with_the_open_batch(world):
    # GIVEN a CloudTrail object cut off mid-record: its first records are complete
    src = world.add_source("trunc2")
    key, data, _ = bad_cloudtrail()
    world.put(src, key, data)
    world.configure()
    host = world.host()
    host.run_timer()
    result = host.drain()
    # THEN the complete records arrive (README: "records before the fault are delivered"),
    # and the object is dead-lettered once with the parse reason
    assert result.failed == 0
    assert len(world.accepted(CT)) == 2
    [item] = host.poison_items()
    assert item["stage"] == "parse"


def test_a_work_item_of_an_unknown_source_is_dead_lettered_as_a_replayable_object(world):
    from shared import pipeline
    from shared.notifications import ObjectRef
    from shared.poison import read_envelope

    world.add_source("known")
    world.configure()
    conn = pipeline.connector()
    ref = ObjectRef(source="renamed", bucket="bkt", key="AWSLogs/x.json.gz", etag="abc")
    stats = pipeline.process_object(conn, ref.to_json())
    assert stats.outcome == "dead_lettered"
    [item] = world.host().poison_items()
    env = read_envelope(json.dumps(item))
    # the replay tool can put it back once the source is configured again
    assert env.ref is not None and env.ref.key == ref.key and env.ref.source == "renamed"
    assert "SQS" not in env.reason


def test_an_unexpected_error_on_the_last_attempt_is_dead_lettered_with_its_reason(world,
                                                                                   monkeypatch):
    from shared import pipeline
    from shared.errors import TransientError

    src = world.add_source("crash")
    key, data, _ = guardduty(2)
    world.put(src, key, data)
    world.configure()
    conn = pipeline.connector()

    def broken(*args, **kwargs):
        raise RuntimeError("parser bug: boom")

    monkeypatch.setattr(pipeline, "open_object", broken)
    from shared.notifications import ObjectRef

    body = ObjectRef(source="crash", bucket=src["_bucket"], key=key).to_json()
    with pytest.raises(TransientError, match="boom"):
        pipeline.process_object(conn, body, dequeue_count=1)
    stats = pipeline.process_object(conn, body, dequeue_count=conn.settings.max_dequeue_count)
    assert stats.outcome == "dead_lettered"
    [item] = world.host().poison_items()
    assert "boom" in item["reason"] and item["object"]["key"] == key


def test_ranges_membership_never_misses_while_another_thread_adds():
    done = Ranges([[0, 100], [1_000_000, 1_000_001]])
    misses = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            if 1_000_000 not in done:
                misses.append(1)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    t = threading.Thread(target=reader)
    t.start()
    try:
        for start in range(100, 200_000, 500):
            done.add(list(range(start, start + 500)))
    finally:
        stop.set()
        t.join()
        sys.setswitchinterval(old)
    assert misses == []


class _NoToken:
    def get_token(self, *scopes, **kwargs):
        raise ClientAuthenticationError(message="ManagedIdentityCredential: no response")


def test_a_token_failure_is_transient_not_a_refusal_of_the_records():
    ing = Ingestor("https://127.0.0.1:9", "dcr-x", _NoToken(), policy=RetryPolicy(2, 0, 0),
                   in_flight=1, sleep=lambda s: None)
    rows = [(i, {"TimeGenerated": "2024-05-01T00:00:00Z", "Message": "m"}) for i in range(3)]
    report = ing.send("Custom-AWSCloudWatch", batches(rows, 1_000_000))
    ing.close()
    # the records were never seen by the service: retry them, do not dead-letter them
    assert report.dead == [] and report.transient is not None


def test_a_busy_source_does_not_starve_the_next_one(monkeypatch):
    from shared import pipeline
    from shared.health import PollStats

    clock = [1000.0]
    monkeypatch.setattr(pipeline.time, "monotonic", lambda: clock[0])
    windows = {}

    def fake_poll(conn, source, deadline, **kw):
        windows[source.name] = deadline - clock[0]
        clock[0] = max(clock[0], deadline)  # a backlog: it uses all the time it is given
        return PollStats(source.name)

    monkeypatch.setattr(pipeline, "poll_source", fake_poll)
    conn = SimpleNamespace(
        settings=SimpleNamespace(poll_time_budget_seconds=240,
                                 sources=[SimpleNamespace(name="a"), SimpleNamespace(name="b")],
                                 logs_ingestion_endpoint="https://dce", dcr_routes={}),
        poison=SimpleNamespace(depth=lambda: 0),
        breaker=SimpleNamespace(state="closed"),
        emit_health=lambda rows: None)
    pipeline.poll_notifications(conn)
    assert windows["a"] > 0 and windows["b"] >= 100


def test_rejected_records_do_not_keep_their_raw_text_in_memory(world):
    import tracemalloc

    from shared import pipeline
    from shared.notifications import ObjectRef

    src = world.add_source("junk")
    header = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol "
              "packets bytes start end action log-status")
    world.configure()
    conn = pipeline.connector()

    def put(n):
        body = "\n".join([header] + [f"{'x' * 3000} {i}" for i in range(n)]).encode()
        key = ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/01/"
               f"123456789012_vpcflowlogs_us-east-1_fl-1_20240101T0000Z_junk{n}.log")
        world.put(src, key, body)
        return ObjectRef(source="junk", bucket=src["_bucket"], key=key).to_json()

    small, large = put(5), put(6000)
    pipeline.process_object(conn, small)  # clients and models loaded outside the measurement
    tracemalloc.start()
    try:
        stats = pipeline.process_object(conn, large)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.records_dropped == 6000
    # 6000 rejected lines of 3 KB (18 MB): their text must not be held until the end
    assert peak < 8_000_000, peak


def test_a_checkpoint_of_many_interleaved_rejects_still_saves(world):
    # GIVEN a GuardDuty export where every other line is not a finding: the accepted and the
    # dead-lettered positions are thousands of one-record intervals (over the 64 KB a Table
    # property may hold as JSON text)
    from shared import pipeline
    from shared.notifications import ObjectRef

    src = world.add_source("sparse")
    key, data, _ = guardduty(3000)
    good = gzip.decompress(data).decode().splitlines()
    lines = [x for line in good for x in (line, '{"note": "not a finding"}')]
    world.put(src, key, "\n".join(lines).encode())
    world.configure()
    conn = pipeline.connector()
    ref = ObjectRef(source="sparse", bucket=src["_bucket"], key=key)
    # WHEN the object is processed
    stats = pipeline.process_object(conn, ref.to_json())
    # THEN it completes (the checkpoint was saved), each record once, and a repeat is a duplicate
    assert stats.outcome == "partial" and stats.records_dropped == 3000
    assert len(world.accepted(GD)) == 3000
    again = pipeline.process_object(conn, ref.to_json())
    assert again.outcome == "duplicate" and len(world.accepted(GD)) == 3000
    progress = conn.checkpoints.load(ref)
    assert len(progress.done) == 3000 and len(progress.dead) == 3000
    assert 0 in progress.done and 1 not in progress.done and 1 in progress.dead


def test_checkpoint_ranges_round_trip_plain_and_packed():
    import random

    from shared.checkpoints import _pack, _unpack

    rng = random.Random(1)
    for n in (0, 10, 50_000):
        r = Ranges()
        r.add(sorted(rng.sample(range(4 * n + 1), n)))
        packed = _pack("Done", r)
        assert packed is not None and all(len(v) <= 60_000 for v in packed.values())
        assert _unpack(packed, "Done").intervals() == r.intervals()
    # entities written before packing existed still load
    assert _unpack({"Done": "[[0, 5]]"}, "Done").intervals() == [[0, 5]]
    assert len(_unpack({}, "Dead")) == 0


def test_a_work_item_that_is_json_but_not_an_object_is_a_notification_error():
    from shared.errors import NotificationError
    from shared.notifications import ObjectRef

    for text in ('["source"]', '"source bucket key"'):
        with pytest.raises(NotificationError):
            ObjectRef.from_json(text)


def test_replay_requeues_an_object_once_however_many_envelopes_name_it(world):
    # GIVEN an object with a line that is not a finding (one envelope) and a batch refused
    # with 400 (a second envelope): two poison items for one object
    from shared.__main__ import main as cli

    src = world.add_source("twoenv")
    key, data, n = guardduty(5)
    lines = gzip.decompress(data).decode().splitlines() + ['{"note": "not a finding"}']
    world.put(src, key, "\n".join(lines).encode())
    world.configure()
    host = world.host()
    host.run_timer()
    world.stack.ingestion.inject(400, stream=GD, code="InvalidPayload", message="bad column")
    host.drain()
    assert sorted(i["stage"] for i in host.poison_items()) == ["deliver", "parse"]
    # WHEN the service is fixed and the operator replays
    world.stack.ingestion.reset()
    assert cli(["replay"]) == 0
    host.drain()
    # THEN the object was processed once more: its records arrive once, and the line that is
    # still not a finding is reported once (not once per replayed envelope)
    assert len(world.accepted(GD)) == n
    assert [i["stage"] for i in host.poison_items()] == ["parse"]


def test_concurrent_first_invocations_share_one_connector(monkeypatch):
    import time as _time
    from concurrent.futures import ThreadPoolExecutor

    from shared import pipeline

    built = []

    def slow_build(settings):
        _time.sleep(0.05)
        built.append(object())
        return built[-1]

    monkeypatch.setattr(pipeline, "load_settings", lambda: None)
    monkeypatch.setattr(pipeline.Connector, "from_settings", staticmethod(slow_build))
    pipeline.reset_connector()
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda _: pipeline.connector(), range(8)))
    finally:
        pipeline.reset_connector()
    # one set of clients, one circuit breaker per worker process
    assert len(built) == 1 and all(c is built[0] for c in got)


def _values(text: str, size: int, method: str = "json_values"):
    from shared.reader import TextSource

    data = text.encode()
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    source = TextSource(iter(chunks))
    return getattr(source, method)() if method == "json_values" else \
        source.json_array_items("Records")


def test_a_bad_line_is_reported_without_reading_the_object_ahead():
    from shared.reader import JsonGarbage, TextSource

    lines = ['{"a":'] + [json.dumps({"id": i, "pad": "y" * 100}) for i in range(20_000)]
    data = "\n".join(lines).encode()
    read = []

    def chunks():
        for i in range(0, len(data), 4096):
            read.append(i)
            yield data[i:i + 4096]

    it = TextSource(chunks()).json_values()
    assert isinstance(next(it), JsonGarbage)
    # the head (64 KB) and a chunk or two, not the whole 2.3 MB (up to 64M characters)
    assert len(read) * 4096 < 100_000
    assert sum(1 for v in it if not isinstance(v, JsonGarbage)) == 20_000


@pytest.mark.parametrize("size", [1, 5, 13, 4096])
def test_values_cut_anywhere_by_chunk_ends_still_parse(size):
    from shared.reader import JsonGarbage

    def record(i):
        return {"i": i, "t": True, "f": False, "n": None, "x": -1.5e-3 * i, "big": 10 ** 20 + i,
                "s": "caf\u00e9 \\ \"q\" \u2603 \U0001F600", "l": [1, [2, {"k": "v"}]]}
    n = 800
    pad = " " * 70_000  # past the 64 KB head: the rest arrives in chunks of `size`
    lines = pad + "\n".join(json.dumps(record(i), ensure_ascii=i % 2 == 0) for i in range(n))
    out = list(_values(lines, size))
    assert not [v for v in out if isinstance(v, JsonGarbage)]
    assert [v["i"] for v in out] == list(range(n))
    pretty = pad + json.dumps({"Records": [record(i) for i in range(n)]}, indent=2)
    assert [v["i"] for v in _values(pretty, size, "array")] == list(range(n))


def test_a_poison_queue_other_than_the_hosts_is_a_config_error():
    from shared.config import load_settings
    from shared.errors import ConfigError

    env = {"AWS_SOURCES": json.dumps([{
        "name": "p", "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "region": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/R",
        "buckets": {"logs": ["AWSLogs/"]}}]),
        "LOGS_INGESTION_ENDPOINT": "https://dce.example", "DCR_IMMUTABLE_ID": "dcr-1",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AWS_WEB_IDENTITY_AUDIENCE": "api://x", "WORK_QUEUE": "objects"}
    assert load_settings(env).poison_queue == "objects-poison"
    # the host moves crashed items to objects-poison: replay and the depth would never see them
    with pytest.raises(ConfigError, match="POISON_QUEUE: must be objects-poison"):
        load_settings({**env, "POISON_QUEUE": "dead-letters"})
