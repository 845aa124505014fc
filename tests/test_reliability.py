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
