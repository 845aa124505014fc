"""Reconciliation: the workbook section and the alert rule that compare, per table and hour,
the records the health rows say were accepted with the rows the table holds.

No Kusto engine runs offline, so the queries are analysed by Kusto.Language (test_infra) and
checked here for what their numbers rest on: they read every table the connector writes, sum
RecordsOut over final object rows only, and fire below 99 %. The end-to-end test proves the
premise: summed that way, the health rows equal the rows the ingestion service accepted per
table, even when an object was retried (its earlier attempts' rows must not count twice).
"""
from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from sample_logs import cloudtrail, guardduty, vpcflow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from validate import common  # noqa: E402

ALERT = (ROOT / "infra" / "bicep" / "queries" / "alert-reconciliation.kql").read_text()
WORKBOOK = json.loads((common.WORKBOOK_DIR / "pipeline-health.workbook.json").read_text())
WB_QUERY = next(i["content"]["query"] for i in WORKBOOK["items"] if i.get("name") ==
                "reconciliation")
DATA_TABLES = {json.loads(p.read_text())["table"] for p in (ROOT / "shared" / "schemas")
               .glob("*.json")} - {"AWSS3ConnectorHealth_CL"}


def union_tables(query: str) -> set[str]:
    m = re.search(r"union withsource=TargetTable isfuzzy=true(.*?)\n\s*\|", query, re.S)
    return {t.strip() for t in m.group(1).replace("\n", " ").split(",")}


def test_both_queries_read_every_table_the_connector_writes() -> None:
    # a format added with a new table is reconciled too (or this test names the gap)
    assert union_tables(ALERT) == DATA_TABLES
    assert union_tables(WB_QUERY) == DATA_TABLES


def test_sent_side_is_the_final_row_of_each_object_and_the_threshold_is_99_percent() -> None:
    for query in (ALERT, WB_QUERY):
        assert "Outcome in ('delivered', 'partial', 'dead_lettered')" in query
        assert "retrying" not in query  # its RecordsOut is counted again by the final row
        assert "sum(RecordsOut)" in query and "ingestion_time()" in query
    assert "InTable < 0.99 * Sent" in ALERT and "PercentInTable < 99.0" in WB_QUERY
    # the alert looks at a closed hour, an hour after it ended (ingestion delay)
    assert "bin(ago(2h), 1h)" in ALERT


def test_alert_rule_window_covers_event_times_and_names_the_table() -> None:
    rule = common.parse_bicep(common.BICEP_DIR / "modules" / "alerts.bicep")["resources"][
        "reconciliation"]["config"]["properties"]
    assert rule["evaluationFrequency"] == "PT1H" and rule["windowSize"] == "P2D"
    cond = rule["criteria"]["allOf"][0]
    assert cond["metricMeasureColumn"] == "ShortTables" and cond["operator"] == "GreaterThan"
    assert [d["name"] for d in cond["dimensions"]] == ["TargetTable"]


def test_e2e_final_health_rows_sum_to_the_rows_each_table_accepted(world):
    # GIVEN objects of three tables, one of whose uploads fails until the work item is retried
    src = world.add_source("recon")
    for key, data, _ in (cloudtrail(120), vpcflow(300), guardduty(9)):
        world.put(src, key, data)
    world.stack.ingestion.inject(stream="Custom-AWSVPCFlow", count=3)  # 3 batches accepted,
    world.stack.ingestion.inject(503, stream="Custom-AWSVPCFlow", count=2)  # then 503s
    # WHEN the functions run (the host retries the failed work item)
    world.configure(MAX_BATCH_BYTES="20000", UPLOAD_MAX_ATTEMPTS="1",
                    MAX_UPLOADS_IN_FLIGHT="1")
    host = world.host()
    host.run_timer()
    host.drain()
    # THEN per table: sum of RecordsOut over final rows == rows accepted by the service
    health = [r for r in world.accepted("Custom-AWSS3ConnectorHealth") if r["Kind"] == "object"]
    assert any(r["Outcome"] == "retrying" and r["RecordsOut"] > 0 for r in health)
    sent: Counter[str] = Counter()
    for r in health:
        if r["Outcome"] in ("delivered", "partial", "dead_lettered"):
            sent[r["TargetTable"]] += r["RecordsOut"]
    held = Counter({t: len(world.accepted(f"Custom-{t}")) for t in sent})
    assert sent == held and sent["AWSVPCFlow"] == 300
    # summing every row instead (retrying ones too) would over-count the retried table
    every = sum(r["RecordsOut"] for r in health if r["TargetTable"] == "AWSVPCFlow")
    assert every > held["AWSVPCFlow"]
