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
