"""Stream schemas: the one declaration of each table's columns (``shared/schemas/*.json``).

The mappers, the Logs Ingestion emulator, the Bicep DCR (``loadJsonContent``) and the KQL
checks all read these files. ``violations(table, row)`` is the same check the service does.
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@cache
def all_schemas() -> dict[str, dict[str, Any]]:
    """table name -> {"table", "stream", "outputStream", "columns": [{"name","type"}]}."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        out[doc["table"]] = doc
    return out


def schema(table: str) -> dict[str, Any]:
    return all_schemas()[table]


def stream_of(table: str) -> str:
    return schema(table)["stream"]


@cache
def column_types(table: str) -> dict[str, str]:
    return {c["name"]: c["type"] for c in schema(table)["columns"]}


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -2**31 <= v < 2**31,
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "real": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "datetime": _is_datetime,
    "dynamic": lambda v: True,
}


def violations(table: str, row: dict[str, Any]) -> list[str]:
    """Why ``row`` would be refused by the stream of ``table`` (empty list = fits)."""
    types = column_types(table)
    problems = []
    for name, value in row.items():
        ctype = types.get(name)
        if ctype is None:
            problems.append(f"unknown column {name!r}")
        elif value is not None and not _CHECKS[ctype](value):
            problems.append(f"column {name!r} expects {ctype}, got {type(value).__name__}")
    if "TimeGenerated" in types and not row.get("TimeGenerated"):
        problems.append("TimeGenerated is missing")
    return problems
