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
