"""Write the Security Lake test objects (OCSF events in Parquet) from the published OCSF
examples in ``tests/fixtures/security_lake`` (SOURCES.md there). Run from the repo root:
``python tests/make_security_lake_fixtures.py``; the outputs are committed (a few KB each).

Each object holds the events of one Security Lake source, written with one row per row group
so the reader's row-group loop is exercised. Empty objects (``"session": {}``) are dropped:
Parquet cannot store a struct without fields, and Security Lake writes such fields as null.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent / "fixtures" / "security_lake"
OUT = HERE / "parquet"

# object name -> (S3 key Security Lake would give it, published example files)
OBJECTS = {
    "CLOUD_TRAIL_MGMT.parquet": "aws/CLOUD_TRAIL_MGMT/2.0/region=us-east-1/accountId=811596193553"
                                "/eventDay=20200921/5c3b9a0e-ct-mgmt.gz.parquet",
    "VPC_FLOW.parquet": "aws/VPC_FLOW/2.0/region=us-east-1/accountId=123456789012/"
                        "eventDay=20220412/7d1e2f30-vpc.gz.parquet",
    "ROUTE53.parquet": "aws/ROUTE53/2.0/region=us-east-1/accountId=123456789012/"
                       "eventDay=20221013/8e2f3a41-r53.gz.parquet",
    "SH_FINDINGS.parquet": "aws/SH_FINDINGS/2.0/region=us-east-2/accountId=111111111111/"
                           "eventDay=20230919/9f3a4b52-sh.gz.parquet",
    "WAF.parquet": "aws/WAF/2.0/region=us-east-1/accountId=123456789012/eventDay=20210923/"
                   "a04b5c63-waf.gz.parquet",
}


def _load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def _prune(value):
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def derived_api_activity_1_1(event: dict, *, error: bool) -> dict:
    """The published (1.0.0-rc.2) CloudTrail sample with the OCSF 1.1 names Security Lake 2.0
    writes: class 6003 in category 6, actor.user.uid = ARN, uid_alt = principal id."""
    ev = copy.deepcopy(event)
    user = ev["actor"]["user"]
    ev["actor"]["user"] = {"type": user["type"], "name": user["name"], "uid": user["uuid"],
                           "uid_alt": user["uid"], "credential_uid": user["credential_uid"],
                           "account": {"uid": user["account_uid"]}}
    ev.update(class_uid=6003, category_uid=6, category_name="Application Activity",
              type_uid=600302)
    ev["metadata"]["version"] = "1.1.0"
    ev["metadata"]["uid"] = ev["metadata"]["uid"][:-2] + ("e1" if error else "a1")
    ev["cloud"]["account"] = {"uid": ev["unmapped"]["recipientAccountId"]}
    if error:
        ev["api"]["response"] = {"error": "AccessDenied",
                                 "message": "User is not authorized to perform this operation"}
        ev.update(status="Failure", status_id=2)
    return ev


def events(name: str) -> list[dict]:
    if name == "CLOUD_TRAIL_MGMT.parquet":
        sample = _load("generic_api_activity.ocsf.json")
        return [sample, derived_api_activity_1_1(sample, error=False),
                derived_api_activity_1_1(sample, error=True)]
    source = {"VPC_FLOW.parquet": "vpcflowlog.json", "ROUTE53.parquet": "route53.json",
              "SH_FINDINGS.parquet": "sechub-guardduty.ocsf.json",
              "WAF.parquet": "waf.ocsf.json"}[name]
    return [_load(source)]


def write(name: str, rows: list[dict]) -> None:
    table = pa.Table.from_pylist([_prune(r) for r in rows])
    pq.write_table(table, OUT / name, row_group_size=1, compression="gzip")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name in OBJECTS:
        rows = events(name)
        if name == "CLOUD_TRAIL_MGMT.parquet":
            # the three events differ in shape (1.0.0-rc.2 vs 1.1 names): one file each,
            # concatenated as row groups of one object, as Security Lake appends them
            tables = [pa.Table.from_pylist([_prune(r)]) for r in rows]
            schema = pa.unify_schemas([t.schema for t in tables])
            with pq.ParquetWriter(OUT / name, schema, compression="gzip") as writer:
                for t in tables:
                    writer.write_table(t.cast(schema) if t.schema == schema else
                                       _conform(t, schema))
        else:
            write(name, rows)
        print(name, len(rows), "rows", (OUT / name).stat().st_size, "bytes")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every field of ``schema`` (missing ones null)."""
    rows = table.to_pylist()
    return pa.Table.from_pylist(rows, schema=schema)


if __name__ == "__main__":
    main()
