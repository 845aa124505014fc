"""The delivery stage against the Logs Ingestion emulator: retry decisions, 413 split, dead
letters, bounded concurrency."""
from __future__ import annotations

import json

import pytest
from azure.identity import ManagedIdentityCredential

from shared.batching import Batch, batches, encode
from shared.ingestion import Ingestor, RetryPolicy

STREAM = "Custom-AWSCloudWatch"


def rows(n, size=10):
    return [(i, {"TimeGenerated": "2024-05-01T00:00:00Z", "Message": f"{i}:" + "m" * size})
            for i in range(n)]


@pytest.fixture
def ingest(stack, monkeypatch):
    for k, v in stack.env.items():
        monkeypatch.setenv(k, v)
    stack.ingestion.reset()
    sleeps: list[float] = []
    ing = Ingestor(stack.env["LOGS_INGESTION_ENDPOINT"], stack.env["DCR_IMMUTABLE_ID"],
                   ManagedIdentityCredential(), policy=RetryPolicy(4, 0.5, 8.0), in_flight=3,
                   sleep=sleeps.append)
    ing.sleeps = sleeps
    yield ing
    ing.close()


def big_batch(*sizes):
    # rows of these sizes as bytes (batching.encode would clip one field this long to 64 KB;
    # rows this large still happen: many fields, each under the field limit)
    b = Batch()
    for i, size in enumerate(sizes):
        b.add(i, json.dumps({"TimeGenerated": "2024-05-01T00:00:00Z",
                             "Message": "x" * size}).encode())
    return b


def test_all_batches_accepted_and_gzip_on_the_wire(ingest, stack):
    report = ingest.send(STREAM, batches(rows(500, 200), 20_000))
    assert report.records_out == 500 and not report.dead and report.transient is None
    assert len(stack.ingestion.accepted(STREAM)) == 500
    reqs = stack.ingestion.requests
    assert all(r.compressed_size < r.uncompressed_size <= 20_000 for r in reqs)


def test_retry_after_is_honoured(ingest, stack):
    stack.ingestion.inject(429, retry_after=3, stream=STREAM)
    report = ingest.send(STREAM, batches(rows(3), 1_000_000))
    assert report.records_out == 3 and ingest.sleeps == [3.0]


def test_backoff_without_retry_after_is_exponential_with_jitter(ingest, stack):
    stack.ingestion.inject(429, stream=STREAM, count=3)
    report = ingest.send(STREAM, batches(rows(3), 1_000_000))
    assert report.records_out == 3
    assert len(ingest.sleeps) == 3
    assert all(0 <= s <= 0.5 * 2 ** i for i, s in enumerate(ingest.sleeps))


def test_transient_failures_outlasting_attempts_are_reported_not_dropped(ingest, stack):
    stack.ingestion.inject(500, stream=STREAM, count=100)
    report = ingest.send(STREAM, batches(rows(5), 1_000_000))
    assert report.transient is not None and "500" in report.transient.message
    assert report.records_out == 0 and not report.dead


def test_real_413_splits_until_the_parts_fit(ingest, stack):
    # two rows of 600 KB: together over the service's 1 MB limit, each alone under it
    report = ingest.send(STREAM, [big_batch(600_000, 600_000)])
    assert report.records_out == 2 and not report.dead
    assert [r.status for r in stack.ingestion.requests] == [413, 204, 204]


def test_a_single_record_over_the_limit_is_dead_lettered_alone(ingest, stack):
    report = ingest.send(STREAM, [big_batch(100, 1_100_000, 100)])
    assert report.records_out == 2
    [dead] = report.dead
    assert dead.positions.intervals() == [[1, 2]] and dead.error.kind == "record_too_large"
    assert dead.error.status == 413 and "1048576" in dead.error.message


def test_schema_violation_is_dead_lettered_with_the_service_text(ingest, stack):
    b = Batch()
    b.add(0, encode({"TimeGenerated": "2024-05-01T00:00:00Z", "NoSuchColumn": 1}))
    report = ingest.send(STREAM, [b])
    [dead] = report.dead
    assert dead.error.status == 400 and "NoSuchColumn" in dead.error.message


def test_at_most_in_flight_uploads_at_once(ingest, stack):
    import threading
    import time

    active, peak, lock = 0, 0, threading.Lock()
    original = ingest._post

    def counting(stream, body):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.02)
            original(stream, body)
        finally:
            with lock:
                active -= 1

    ingest._post = counting
    report = ingest.send(STREAM, batches(rows(300, 100), 3_000))
    assert report.records_out == 300 and peak == 3


def test_a_timed_out_request_is_retried_and_at_most_that_batch_repeats(stack, monkeypatch):
    for k, v in stack.env.items():
        monkeypatch.setenv(k, v)
    stack.ingestion.reset()
    ing = Ingestor(stack.env["LOGS_INGESTION_ENDPOINT"], stack.env["DCR_IMMUTABLE_ID"],
                   ManagedIdentityCredential(), policy=RetryPolicy(3, 0.01, 0.05),
                   in_flight=1, read_timeout=0.5)
    # the service answers the first request too late: it stored the rows, we gave up waiting
    stack.ingestion.inject(latency=1.5, stream=STREAM)
    report = ing.send(STREAM, batches(rows(10), 1_000_000))
    ing.close()
    assert report.records_out == 10 and report.requests == 2 and report.transient is None
    stored = [r["Message"] for r in stack.ingestion.accepted(STREAM)]
    # every row arrived; at most the one batch in doubt arrived twice
    assert len(set(stored)) == 10 and 10 <= len(stored) <= 20


def test_a_lost_answer_after_the_store_repeats_the_batch_and_the_sink_says_so(ingest, stack):
    """The soak's emulator chaos: a reset after the batch was stored is a lost answer; the
    client retries and the batch is stored twice, and the sink is told which copy was lost."""
    from devtools.logs_ingestion import Chaos

    seen = []
    stack.ingestion.sink = lambda stream, records, lost: seen.append((len(records), lost))
    stack.ingestion.chaos = Chaos(p_reset_stored=1.0, seed=1)
    stack.ingestion.inject(latency=0.0, count=1)  # a scripted answer wins over chaos: ok
    report = ingest.send(STREAM, batches(rows(5), 1_000_000))
    assert report.transient is None and seen == [(5, False)]
    seen.clear()
    report = ingest.send(STREAM, batches(rows(5), 1_000_000))
    assert report.transient is not None, "every answer lost: the retries give up"
    assert seen == [(5, True)] * 4, "stored on every attempt, each answer lost"
    stack.ingestion.chaos = Chaos(p429=0.5, p503=0.3, seed=3)
    draws = __import__("collections").Counter(stack.ingestion.chaos.draw(STREAM)[0]
                                              for _ in range(4000))
    assert 0.45 < (draws["429"] + draws["429-retry-after"]) / 4000 < 0.55
    assert 0.4 < draws["429-retry-after"] / (draws["429"] + draws["429-retry-after"]) < 0.6
    assert 0.27 < draws["503"] / 4000 < 0.33
    stack.ingestion.chaos.outage(60)
    assert stack.ingestion.chaos.draw(STREAM)[0] == "503"
    stack.ingestion.reset()
