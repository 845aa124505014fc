"""KQL: every query infra/ deploys, analysed offline by Kusto.Language.

tools/kql_check.js runs @kusto/language-service-next under node (node_modules, `npm install`)
on the queries against tables built from shared/schemas/*.json (each table's own columns plus
Log Analytics' standard ones; a DCR transform sees its stream's declared columns as `source`).

The queries are found in infra/, never listed here, so a query added there is checked:

* every KQL item (type 3, also inside groups) of infra/bicep/workbooks/*.json, with the workbook
  parameter tokens of WORKBOOK_TOKENS replaced;
* every scheduledQueryRules condition of infra/bicep/modules/alerts.bicep: a literal or a
  loadTextContent('...kql') file; its metricMeasureColumn must be a numeric result column;
* every transformKql literal of infra/bicep/modules/dcr.bicep, against each stream.

Stage (tools/validate_infra.py runs it):

* kql  no Kusto.Language error (warnings are notes), no workbook parameter token left over, no
       transform longer than Azure Monitor's limit
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .common import (
    BICEP_DIR,
    ROOT,
    WORKBOOK_DIR,
    Stage,
    function_call,
    load_schemas,
    parse_bicep,
    rel,
)

KQL_CHECK = ROOT / "tools" / "kql_check.js"
MAX_TRANSFORM_CHARS = 15_360  # Azure Monitor's limit on a DCR transformKql
# Columns every Log Analytics table has besides its own (log-standard-columns).
STANDARD_COLUMNS = {
    "TimeGenerated": "datetime", "TenantId": "string", "Type": "string", "SourceSystem": "string",
    "_ResourceId": "string", "_SubscriptionId": "string", "_BilledSize": "real",
    "_IsBillable": "string", "_TimeReceived": "datetime", "_ItemId": "string",
}
NUMERIC_KUSTO_TYPES = {"int", "long", "real", "decimal"}
# Workbook parameter tokens and what they stand for when a query is analysed offline.
WORKBOOK_TOKENS = {"{TimeRange:grain}": "1h", "{TimeRange}": "ago(1d)"}


# =================================================================================================
# The tables and the queries, from shared/schemas and infra/
# =================================================================================================
def kusto_tables(schemas: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Table name -> "(Col:type, ...)" as the real tables look (own columns + standard ones)."""
    schemas = schemas if schemas is not None else load_schemas()
    out = {}
    for table, doc in schemas.items():
        cols = {c["name"]: c["type"] for c in doc["columns"]}
        for name, ctype in STANDARD_COLUMNS.items():
            cols.setdefault(name, ctype)
        out[table] = "(" + ", ".join(f"['{n}']:{t}" for n, t in cols.items()) + ")"
    return out


def stream_source_table(doc: dict[str, Any]) -> str:
    """The `source` table a transform sees: exactly the declared stream columns."""
    return "(" + ", ".join(f"['{c['name']}']:{c['type']}" for c in doc["columns"]) + ")"


def workbook_queries(path: Path) -> list[dict[str, str]]:
    doc = json.loads(path.read_text())
    out = []

    def walk(items: list[dict[str, Any]], trail: str) -> None:
        for i, item in enumerate(items):
            name = item.get("name") or str(i)
            content = item.get("content") or {}
            if item.get("type") == 3 and "query" in content:
                query = content["query"]
                for token, value in WORKBOOK_TOKENS.items():
                    query = query.replace(token, value)
                out.append({"name": f"{rel(path)}#{trail}{name}", "query": query})
            if item.get("type") == 12:  # group
                walk(content.get("items") or [], f"{trail}{name}/")

    walk(doc.get("items") or [], "")
    return out


def alert_queries() -> list[dict[str, str]]:
    """Queries of the scheduledQueryRules: literal strings or loadTextContent files."""
    out = []
    path = BICEP_DIR / "modules" / "alerts.bicep"
    tree = parse_bicep(path)
    for rname, res in tree["resources"].items():
        if res.get("type") != "Microsoft.Insights/scheduledQueryRules":
            continue
        for j, cond in enumerate(res["config"]["properties"]["criteria"]["allOf"]):
            q = cond.get("query")
            fn = function_call(q)
            item: dict[str, Any] = {"name": f"{rel(path)}#{rname}[{j}]", "query": ""}
            if fn and fn[0] == "load_text_content":
                file = path.parent / fn[1]["file_path"]
                item = {"name": f"{rel(path)}#{rname}[{j}] ({rel(file.resolve())})",
                        "query": file.read_text()}
            elif isinstance(q, str):
                item["query"] = q
            else:
                item["error"] = "query is neither a literal nor loadTextContent(...)"
            if cond.get("metricMeasureColumn"):
                item["measure"] = cond["metricMeasureColumn"]
            out.append(item)
    return out


def dcr_transforms() -> list[str]:
    """transformKql values in modules/dcr.bicep (string literals only)."""
    text = (BICEP_DIR / "modules" / "dcr.bicep").read_text()
    return re.findall(r"transformKql:\s*'((?:[^'\\]|\\.)*)'", text)


def all_queries() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every workbook, alert and transform query in infra/, and the tables they run against."""
    schemas = load_schemas()
    queries: list[dict[str, Any]] = []
    for wb in sorted(WORKBOOK_DIR.glob("*.json")):
        queries += workbook_queries(wb)
    queries += alert_queries()
    for transform in dcr_transforms():
        for doc in schemas.values():
            queries.append({"name": f"modules/dcr.bicep#transformKql ({doc['stream']})",
                            "query": transform,
                            "tables": {"source": stream_source_table(doc)}})
    return queries, kusto_tables(schemas)


# =================================================================================================
# Analysis (tools/kql_check.js)
# =================================================================================================
def run_kql_check(tables: dict[str, str], queries: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH (Node 20 runs tools/kql_check.js)")
    if not (ROOT / "node_modules" / "@kusto" / "language-service-next").exists():
        raise RuntimeError("node_modules/@kusto/language-service-next is missing: run npm install")
    payload = json.dumps({"tables": tables,
                          "queries": [{k: v for k, v in q.items() if k in ("name", "query",
                                                                            "tables")}
                                      for q in queries]})
    proc = subprocess.run([node, str(KQL_CHECK)], input=payload, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"kql_check.js failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def check_kql(queries: list[dict[str, Any]] | None = None,
              tables: dict[str, str] | None = None) -> Stage:
    """Analyse ``queries`` (default: every workbook, alert and transform query) against
    ``tables`` (default: built from shared/schemas)."""
    stage = Stage("kql")
    if queries is None:
        queries, default_tables = all_queries()
        tables = tables or default_tables
    tables = tables if tables is not None else kusto_tables()
    for q in queries:
        if q.get("error"):
            stage.fail(f"{q['name']}: {q['error']}")
        if len(q["query"]) > MAX_TRANSFORM_CHARS and "transformKql" in q["name"]:
            stage.fail(f"{q['name']}: transformKql longer than {MAX_TRANSFORM_CHARS} chars")
        leftover = re.findall(r"\{[A-Za-z][A-Za-z0-9_]*(?::[a-z]+)?\}", q["query"])
        if leftover and "transformKql" not in q["name"]:
            stage.fail(f"{q['name']}: unknown workbook parameter(s) {sorted(set(leftover))}")
    try:
        report = run_kql_check(tables, queries)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
        stage.fail(str(err))
        return stage
    for q, result in zip(queries, report["results"], strict=True):
        measure = q.get("measure")
        if measure:
            types = {c["name"]: c["type"] for c in result.get("columns", [])}
            if measure not in types:
                stage.fail(f"{result['name']}: metricMeasureColumn {measure!r} is not a column "
                           f"of the result ({', '.join(types) or 'none'})")
            elif types[measure] not in NUMERIC_KUSTO_TYPES:
                stage.fail(f"{result['name']}: metricMeasureColumn {measure!r} is "
                           f"{types[measure]}, not numeric")
        for d in result["diagnostics"]:
            line = (f"{result['name']}: {d['severity']} {d['code']} at {d['line']}:{d['column']}: "
                    f"{d['message']}")
            if d["severity"] == "Error":
                stage.fail(line)
            else:
                stage.notes.append(line)
    stage.counts["queries"] = report["analysed"]
    stage.counts["workbook"] = sum(1 for q in queries if "workbook" in q["name"])
    stage.counts["alerts"] = sum(1 for q in queries if "alerts.bicep" in q["name"])
    stage.counts["transforms"] = sum(1 for q in queries if "transformKql" in q["name"])
    stage.counts["errors"] = report["errors"]
    stage.counts["warnings"] = report["warnings"]
    return stage
