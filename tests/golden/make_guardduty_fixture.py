"""Build the GuardDuty test fixture from Microsoft's sample rows of the AWSGuardDuty table.

There is no GuardDuty export among the shared fixtures, so the findings are reconstructed from
``reference/expected/AWSGuardDuty__AWS_GuardDuty_AlertEvent_IngestedLogs.csv`` (the inverse of
the documented mapping): type <- ActivityType, resource <- ResourceDetails, service <-
ServiceDetails, createdAt <- TimeCreated, updatedAt <- TimeGenerated. Two severities carry a
fraction (8.9, 4.3) as real findings do, to prove the int column truncates like KQL toint().
Run from the repo root: ``python tests/golden/make_guardduty_fixture.py``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSV = (HERE.parent / "reference" / "expected"
       / "AWSGuardDuty__AWS_GuardDuty_AlertEvent_IngestedLogs.csv")
OUT = HERE / "fixtures" / "guardduty_findings_from_expected.jsonl"
FRACTIONS = {"finding-002": 0.9, "finding-004": 0.3}


def _ms(text: str) -> str:
    return text.replace("Z", ".000Z")


def main() -> None:
    lines = []
    with CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            finding = {
                "schemaVersion": row["SchemaVersion"],
                "accountId": row["AccountId"],
                "region": row["Region"],
                "partition": row["Partition"],
                "id": row["Id"],
                "arn": row["Arn"],
                "type": row["ActivityType"],
                "resource": json.loads(row["ResourceDetails"]),
                "service": json.loads(row["ServiceDetails"]),
                "severity": int(row["Severity"]) + FRACTIONS.get(row["Id"], 0.0),
                "createdAt": _ms(row["TimeCreated"]),
                "updatedAt": _ms(row["TimeGenerated"]),
                "title": row["Title"],
                "description": row["Description"],
            }
            lines.append(json.dumps(finding, separators=(",", ":")))
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} findings to {OUT}")


if __name__ == "__main__":
    main()
