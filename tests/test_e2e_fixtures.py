"""Every real AWS sample file in tests/fixtures through the whole pipeline: uploaded to S3
under its real key name, announced to SQS, polled, read, parsed, batched and accepted by the
Logs Ingestion emulator's schema check, in the table `python -m shared inspect` names."""
from __future__ import annotations

from collections import Counter

from conftest import FIXTURES

HEALTH = "Custom-AWSS3ConnectorHealth"


def fixture_files():
    # Security Lake objects need their Security Lake keys: tests/test_security_lake.py
    return sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.parent.name not in
                  ("s3_notifications", "security_lake", "parquet")
                  and not p.name.endswith((".md", ".txt")))


def test_every_fixture_lands_in_its_table_through_the_pipeline(world):
    from shared.cli_inspect import inspect_file
    from shared.schemas import all_schemas

    # Security Hub findings have no AWS key layout (Firehose): their prefix is declared
    src = world.add_source("fixtures", kinds={"sh/": "securityhub"})
    expected: Counter[str] = Counter()
    for i, path in enumerate(fixture_files()):
        declared = "securityhub" if path.parent.name == "securityhub" else None
        report = inspect_file(str(path), kind=declared)
        assert report["error"] is None, (path.name, report["error"])
        if report["table"] is not None:
            expected[all_schemas()[report["table"]]["stream"]] += report["records"]
        # a distinct folder per file keeps keys unique while the file name stays the real one
        world.put(src, f"{'sh/' if declared else ''}f{i}/{path.name}", path.read_bytes())
    host = world.host()
    world.configure()
    host.run_timer()
    run = host.drain(max_seconds=120, concurrency=4)
    assert run.failed == 0 and host.poison_items() == []
    got = Counter({s: len(world.accepted(s)) for s in expected})
    assert got == expected
    assert len(expected) >= 10  # CloudTrail, VPC, ALB, NLB, ELB, CloudFront, S3, WAF, R53, ...
    outcomes = Counter(r["Outcome"] for r in world.accepted(HEALTH) if r["Kind"] == "object")
    assert outcomes["delivered"] >= len(fixture_files()) - outcomes["skipped"]
