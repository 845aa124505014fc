"""The short soak inside make test: the real path with worker processes, kills and faults.

GIVEN moto S3/SQS, the timer in its own process, queue workers as OS processes behind the
host simulator (host.json semantics), and a Logs Ingestion emulator answering 429/503, resets
(some after storing the batch), latency spikes and an 8 s outage, WHEN a few dozen objects of
seven formats arrive (with a 10x burst) and workers are SIGKILLed in the middle of objects,
THEN no record is lost, every duplicate is explained by a kill or a lost answer, nothing is
poisoned by a transient failure, and the shared circuit opened and closed again.
`make soak` runs the full version (devtools/soak.py).
"""
from __future__ import annotations

from devtools import soak


def test_short_soak_loses_nothing_under_kills_and_faults(tmp_path):
    results = soak.run(soak.Plan(**soak.SHORT), tmp_path / "soak-results.json")
    assert soak.check(results) == []
    assert results["kills"] >= 2 and results["objects_interrupted_by_kills"] >= 2
    assert results["records_accepted_unique"] == results["records_sent"]
    assert results["faults"]["429"] and results["faults"]["503"] and results["faults"]["resets"]
    assert len(results["formats"]) >= 7
    assert (tmp_path / "soak-results.json").exists()


def test_the_killer_interrupts_objects_and_never_crash_loops_one_work_item():
    # GIVEN workers running work items (message, seconds running), some killed before
    from collections import Counter
    from types import SimpleNamespace

    def msg(obj, dequeue_count=1):
        body = f'{{"key": "soak/waf/x_soak{obj:05d}.log.gz"}}'.encode()
        return SimpleNamespace(content=body, dequeue_count=dequeue_count)

    kills = Counter({7: soak.KILLS_PER_OBJECT, 8: 1})
    # THEN the worker with the most fresh objects in the middle of their run is chosen
    assert soak._victim({0: [(msg(1), 2.0)], 1: [(msg(2), 2.0), (msg(3), 1.0)]}, kills,
                        min_running=0.5) == 1
    # not one whose objects just started (not mid-object) or were all killed already
    assert soak._victim({0: [(msg(1), 0.1)], 1: [(msg(8), 5.0)]}, kills,
                        min_running=0.5) is None
    # and never one running an object killed KILLS_PER_OBJECT times or a work item past its
    # KILL_MAX_DEQUEUE-th delivery (the host would move it to the poison queue at 5)
    assert soak._victim({0: [(msg(1), 2.0), (msg(7), 2.0)]}, kills, min_running=0.5) is None
    assert soak._victim({0: [(msg(1), 2.0), (msg(2, soak.KILL_MAX_DEQUEUE + 1), 2.0)]}, kills,
                        min_running=0.5) is None
