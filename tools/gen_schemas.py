"""Regenerate shared/schemas/<Table>.json from tests/reference/schemas (one-off tool).

The files it writes are the single source of truth for every stream's columns: the Python
mappers, the Logs Ingestion emulator, the Bicep DCR (loadJsonContent) and the KQL checks all
read them. Run it only when the reference schemas change; the output is committed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference" / "schemas"
OUT = ROOT / "shared" / "schemas"

# Columns the service fills itself; a DCR stream must not declare them.
SYSTEM = {"_BilledSize", "_IsBillable", "SourceSystem", "TenantId", "Type", "_ResourceId",
          "_SubscriptionId", "MG", "ManagementGroupName", "Computer", "RawData"}
TYPES = {"bool": "boolean", "guid": "string"}


def main() -> int:
    for path in sorted(REFERENCE.glob("AWS*.json")):
        ref = json.loads(path.read_text())
        table = ref["table"]
        cols = [c for c in ref["columns"] if c["name"] not in SYSTEM]
        live = ref.get("live_schema_crosscheck") or {}
        if isinstance(live, dict):
            cols += live.get("columns_in_live_table_not_in_doc", [])
        seen, columns = set(), []
        for c in sorted(cols, key=lambda c: (c["name"] != "TimeGenerated", c["name"].lower())):
            if c["name"] in seen:
                continue
            seen.add(c["name"])
            columns.append({"name": c["name"], "type": TYPES.get(c["type"], c["type"])})
        doc = {"table": table, "stream": f"Custom-{table}", "outputStream": f"Microsoft-{table}",
               "columns": columns}
        (OUT / f"{table}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{table}: {len(columns)} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
