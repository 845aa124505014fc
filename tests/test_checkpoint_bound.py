"""The checkpoint keeps up with the uploads: a worker killed at any moment repeats at most the
batches in flight (the soak's rule), whatever the coalescing of saves (checkpoints.GroupSaver).

GIVEN an object of many small batches and MAX_UPLOADS_IN_FLIGHT=3, WHEN it is delivered, THEN
each time the Logs Ingestion emulator stores a batch, the batches it stored before that are in
the checkpoint table (Azurite) except at most in_flight - 1 of them: with this one, at most
in_flight batches would repeat if the worker died now; AND one save per batch at most.
"""
from __future__ import annotations

import threading

from sample_logs import vpcflow

VPC = "Custom-AWSVPCFlow"


def test_accepted_batches_are_saved_before_more_than_in_flight_are_sent(world):
    from shared import pipeline
    from shared.notifications import ObjectRef

    in_flight = 3
    src = world.add_source("bound")
    key, data, n = vpcflow(3000)
    world.put(src, key, data)
    world.configure(MAX_BATCH_BYTES="8192", MAX_UPLOADS_IN_FLIGHT=str(in_flight))
    conn = pipeline.connector()
    ref = ObjectRef(source="bound", bucket=src["_bucket"], key=key)
    lock = threading.Lock()
    stored: list[int] = []  # records per stored batch, in the order the service stored them
    unsaved: list[int] = []  # records stored before this batch and not in the checkpoint

    def sink(stream, records, lost):
        if stream != VPC:
            return
        saved = len(conn.checkpoints.load(ref).done)  # records in the table right now
        with lock:
            unsaved.append(sum(stored) - saved)
            stored.append(len(records))

    world.stack.ingestion.sink = sink
    stats = pipeline.process_object(conn, ref.to_json())
    assert stats.outcome == "delivered" and stats.records_out == n
    assert sum(stored) == n and len(stored) == stats.batches > 20
    # each such batch holds an upload slot (its answer not yet back, or not yet saved), and
    # this one holds another: at most in_flight - 1 of them
    assert max(unsaved) <= (in_flight - 1) * max(stored), (max(unsaved), max(stored))
    assert 1 <= stats.checkpoint_saves <= stats.batches


# ---- GroupSaver's grouping: fewer saves, never a slot held that the sender needs ------------

class _Table:
    """Stands in for Checkpoints (our own class): counts saves, each taking ``seconds``."""

    def __init__(self, seconds: float = 0.0):
        self.saves, self.seconds = 0, seconds

    def save(self, ref, progress) -> None:
        import time
        time.sleep(self.seconds)
        self.saves += 1


def _saver(group: int, max_delay: float = 5.0, seconds: float = 0.0):
    from shared.checkpoints import GroupSaver, Progress
    table = _Table(seconds)
    return GroupSaver(table, None, Progress(), group=group, max_delay=max_delay), table


def _workers(saver, n: int) -> list[threading.Thread]:
    def work():
        saver.note()
        saver.commit()
    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def test_a_group_of_waiting_workers_is_one_save():
    saver, table = _saver(group=3)
    for t in _workers(saver, 3):
        t.join(timeout=2)
        assert not t.is_alive()
    assert table.saves == saver.saves == 1 and saver.commits == 3


def test_fewer_waiting_workers_than_a_group_save_when_the_sender_needs_a_slot_or_is_done():
    import time
    for signal in ("urge", "drain"):
        saver, table = _saver(group=3)
        [t] = _workers(saver, 1)
        t.join(timeout=0.2)
        assert t.is_alive() and table.saves == 0  # waiting for two more (max_delay 5 s)
        started = time.monotonic()
        getattr(saver, signal)()
        t.join(timeout=2)
        assert not t.is_alive() and table.saves == 1, signal
        assert time.monotonic() - started < 1, signal


def test_an_urge_before_the_worker_arrives_still_counts():
    # the sender waits for a slot while every worker is still sending: the first to finish
    # saves at once, not after max_delay
    saver, table = _saver(group=3)
    saver.urge()
    [t] = _workers(saver, 1)
    t.join(timeout=1)
    assert not t.is_alive() and table.saves == 1


def test_a_lone_worker_saves_after_max_delay():
    saver, table = _saver(group=3, max_delay=0.1)
    [t] = _workers(saver, 1)
    t.join(timeout=2)
    assert not t.is_alive() and table.saves == 1


def test_group_one_saves_each_batch_at_once():
    import time
    saver, table = _saver(group=1)
    started = time.monotonic()
    for t in _workers(saver, 1):
        t.join(timeout=2)
    assert table.saves == 1 and time.monotonic() - started < 1
