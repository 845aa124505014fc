"""The delivery contract under random faults (seeded, reproducible).

GIVEN many objects and a Logs Ingestion API that randomly throttles, fails, drops connections,
answers 413 and refuses batches with 400, WHEN the functions run with the host's retry/poison
semantics, THEN every record is either accepted exactly once or named by a poison envelope
(record positions, or the whole object), never both and never silently missing; AND after the
faults stop and the operator replays the poison queue, every record is in its table exactly
once.
"""
from __future__ import annotations

import gzip
import json
import random
from collections import Counter

import pytest
from sample_logs import cloudtrail, guardduty

CT, GD = "Custom-AWSCloudTrail", "Custom-AWSGuardDuty"


def ids_in_order(key: str, data: bytes) -> list[str]:
    text = gzip.decompress(data).decode()
    if "/CloudTrail/" in key:
        return [r["eventID"] for r in json.loads(text)["Records"]]
    return [json.loads(line)["id"] for line in text.splitlines() if line.strip()]


def row_id(stream: str, row: dict) -> str:
    return row["AwsEventId"] if stream == CT else row["Id"]


@pytest.mark.parametrize("seed", [7, 2024, 3])
def test_every_record_is_accepted_once_or_dead_lettered_then_replay_completes(world, seed):
    from shared import pipeline
    from shared.__main__ import main as cli
    from shared.ingestion import CircuitBreaker

    rng = random.Random(seed)
    src = world.add_source(f"chaos{seed}")
    objects: dict[str, list[str]] = {}
    for i in range(24):
        key, data, _ = (cloudtrail(rng.randint(1, 120)) if i % 3 else
                        guardduty(rng.randint(1, 40)))
        world.put(src, key, data)
        objects[key] = ids_in_order(key, data)
    world.configure(MAX_BATCH_BYTES="20000", MAX_UPLOADS_IN_FLIGHT="3", UPLOAD_MAX_ATTEMPTS="3")
    conn = pipeline.connector()
    conn.breaker = CircuitBreaker(threshold=4, cooldown=0.5, max_cooldown=1.0)

    # a scripted, random answer for each of the next requests to the two data streams
    menu = [None] * 5 + [dict(status=429, retry_after=0), dict(status=503), dict(status=500),
                          dict(reset=True), dict(status=413), dict(status=400, code="Bad")]
    ing = world.stack.ingestion
    for _ in range(400):
        choice = rng.choice(menu)
        stream = rng.choice([CT, GD])
        if choice is None:
            ing.inject(latency=0.0, stream=stream)
        else:
            ing.inject(stream=stream, **choice)

    host = world.host()
    host.run_timer()
    host.drain(max_seconds=240, concurrency=8)  # as host.json's batchSize

    # ---- accounting after the faults --------------------------------------------------------
    accepted = Counter(row_id(s, r) for s in (CT, GD) for r in world.accepted(s))
    assert not [k for k, n in accepted.items() if n > 1], "a record was accepted twice"
    items = host.poison_items_all()
    by_key: dict[str, list[dict]] = {}
    for item in items:
        by_key.setdefault(item["object"]["key"], []).append(item)
    for key, ids in objects.items():
        got = {i for i in ids if i in accepted}
        dead_positions = {p for item in by_key.get(key, []) if item.get("records")
                          for p in item["records"]["positions"]}
        whole = [item for item in by_key.get(key, []) if not item.get("records")]
        dead = {ids[p] for p in dead_positions}
        assert not (got & dead), f"{key}: accepted and dead-lettered"
        if whole:  # the object itself was dead-lettered (transient errors outlasted retries)
            assert whole[0]["kind"] == "delivery_transient" and whole[0]["reason"]
        else:
            assert got | dead == set(ids), f"{key}: records neither accepted nor dead-lettered"
    kinds = Counter(i["kind"] for i in items)
    statuses = Counter(r.status for r in ing.requests)
    assert kinds["delivery_rejected"] and statuses[413] and statuses[429] and statuses[0], kinds

    # ---- the outage is over: replay ---------------------------------------------------------
    ing.reset()
    assert cli(["replay"]) == 0
    host.drain(max_seconds=120, concurrency=8)
    final = Counter(row_id(s, r) for s in (CT, GD) for r in world.accepted(s)) + accepted
    every = [i for ids in objects.values() for i in ids]
    assert sorted(final) == sorted(every), "after replay every record is in Sentinel"
    assert all(n == 1 for n in final.values()), "exactly once"
    assert host.poison_items_all() == []
