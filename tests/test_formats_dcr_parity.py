"""Parity with Microsoft's own DCR transforms (shared/reference/dcr/*.json).

KQL cannot run here, so this file carries a small interpreter for exactly the KQL that those
transforms use (project / extend / where / project-away, tostring, toint, tolong, todatetime,
todynamic, tobool, iff, isnotempty, isnull, parse_json, the VPC ``let`` helper). It reads the
``transformKql`` text from the reference files as Microsoft wrote it, evaluates it on the
record the DCR's input stream would receive, and compares every output column with the row
our mapper produces, field by field. A few hand-written literal checks per transform guard the
interpreter itself.

Equivalences: KQL ``""`` (tostring of nothing) == a column we omit; datetimes compare as
instants. Documented, deliberate differences (asserted explicitly, not skipped):
* ``TimeGenerated = now()`` (Network Firewall, new CloudFront): ours is the event's own time.
* VPC ``-`` fields: AWS writes ``-`` for "no value"; we send nothing, so the DCR input is
  built with null there (as Parquet objects carry it).
* Security Hub: the transform reads ``findings[0]`` only; we map every finding the same way.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from golden.support import CASES, plain, run

from shared.formats import vpcflow
from shared.schemas import column_types

REFERENCE = Path(__file__).resolve().parent / "reference" / "dcr"  # SOURCES.md there
NOW = object()  # what now() evaluates to
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---- a minimal KQL evaluator for the transforms in reference/dcr ----------------------------

def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses, brackets and string literals."""
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [part.strip() for part in out]


def k_tostring(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, separators=(",", ":"))


def k_tolong(v: Any) -> int | None:
    s = k_tostring(v).strip()
    return int(s) if re.fullmatch(r"[+-]?\d+", s) else None


def k_toint(v: Any) -> int | None:
    n = k_tolong(v)
    return n if n is not None and -2**31 <= n < 2**31 else None


def k_todatetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v
    s = k_tostring(v).strip()
    if not s:
        return None
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def k_tobool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    s = k_tostring(v).strip().lower()
    return {"true": True, "false": False, "1": True, "0": False}.get(s)


def k_unix_seconds(v: Any) -> datetime | None:
    n = k_tolong(v)
    return None if n is None else EPOCH + timedelta(seconds=n)


def _path(expr: str, row: dict[str, Any]) -> Any:
    tokens = re.findall(r"\['([^']+)'\]|\[(\d+)\]|([A-Za-z_][\w-]*)", expr)
    value: Any = row
    first = True
    for quoted, index, name in tokens:
        if index:
            value = value[int(index)] if isinstance(value, list) and len(value) > int(index) \
                else None
        else:
            key = quoted or name
            value = value.get(key) if isinstance(value, dict) else None
        first = False
    assert not first, expr
    return value


def evaluate(expr: str, row: dict[str, Any]) -> Any:
    expr = expr.strip()
    if expr.startswith('"') and expr.endswith('"'):
        return expr[1:-1]
    m = re.fullmatch(r"(\w+)\((.*)\)(.*)", expr, re.S)
    if m and m.group(1) in FUNCS and _balanced(m.group(2)):
        args = [a for a in _split(m.group(2), ",") if a] if m.group(2).strip() else []
        if m.group(1) == "iff":
            cond, yes, no = args
            value = evaluate(yes, row) if evaluate(cond, row) else evaluate(no, row)
        else:
            value = FUNCS[m.group(1)](*[evaluate(a, row) for a in args])
        rest = m.group(3)
        return _path("x" + rest, {"x": value}) if rest else value
    return _path(expr, row)


def _balanced(inner: str) -> bool:
    depth = 0
    for ch in inner:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


FUNCS = {
    "tostring": k_tostring, "toint": k_toint, "tolong": k_tolong, "todatetime": k_todatetime,
    "todynamic": lambda v: json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v,
    "parse_json": lambda v: json.loads(v) if isinstance(v, str) else v,
    "tobool": k_tobool, "isnotempty": lambda v: v not in (None, ""),
    "isnull": lambda v: v is None, "now": lambda: NOW,
    "unixTimeSecondsToDatetime": k_unix_seconds, "iff": None,
}


def _assignments(text: str, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for part in _split(text, ","):
        name, sep, expr = part.partition("=")
        if sep and not expr.startswith("="):
            out[name.strip()] = evaluate(expr, {**row, **out})
        else:
            out[part] = row.get(part)
    return out


def transform(kql: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """Apply a DCR transformKql to one input record; None when a ``where`` drops it."""
    kql = kql.replace("\r", "\n")
    if kql.lstrip().startswith("let "):
        kql = kql.split(";", 1)[1]
    row = dict(record)
    for step in _split(kql, "|"):
        step = " ".join(step.split())
        if step == "source":
            continue
        op, _, body = step.partition(" ")
        if op == "extend":
            row.update(_assignments(body, row))
        elif op == "project":
            row = _assignments(body, row)
        elif op == "project-away":
            for name in _split(body, ","):
                row.pop(name, None)
        elif op == "where":
            m = re.fullmatch(r'(\w+) (==|!=) "(.*)"', body)
            assert m, body
            equal = k_tostring(row.get(m.group(1))) == m.group(3)
            if equal != (m.group(2) == "=="):
                return None
        else:
            raise AssertionError(f"KQL operator not handled: {op}")
    return row


def dcr(file: str, stream: str) -> str:
    doc = json.loads((REFERENCE / file).read_text())
    for rule in doc["extracted"]:
        for flow in rule["dataFlows"]:
            if flow["streams"] == [stream]:
                return flow["transformKql"]
    raise AssertionError(f"{stream} not in {file}")


def assert_same(expected: dict[str, Any], row: dict[str, Any], table: str, *,
                ignore: tuple[str, ...] = ()) -> None:
    """Every column the transform outputs has the same value in our row.

    Output columns the table does not have (input columns a transform leaves in place, such
    as ``firewall_name``) are dropped by the service, so they are not compared.
    """
    columns = column_types(table)
    compared = [c for c in expected if c in columns and c not in ignore]
    assert len(compared) >= 5, compared
    for column in compared:
        want = expected[column]
        got = row.get(column)
        if isinstance(want, datetime) or (want is None and isinstance(got, str)
                                          and column in _DATETIME_COLUMNS):
            got_dt = k_todatetime(got) if got is not None else None
            assert got_dt == want, (column, got, want)
        elif isinstance(want, str):
            assert (got if got is not None else "") == want, (column, got, want)
        else:
            assert got == want, (column, got, want)


_DATETIME_COLUMNS = {"TimeGenerated", "End", "NetFlowStart", "NetFlowEnd", "EventTimestamp"}


# ---- the interpreter itself -----------------------------------------------------------------

def test_interpreter_evaluates_the_forms_used_by_the_transforms() -> None:
    row = {"a": "7", "b": None, "c-d": "x", "event": {"tcp": {"syn": "true"}, "n": [5, 6]}}
    assert evaluate("toint(tostring(a))", row) == 7
    assert evaluate("iff(isnotempty(tostring(b)), tostring(b), tostring(['c-d']))", row) == "x"
    assert evaluate("tobool(event.tcp.syn)", row) is True
    assert evaluate("tostring(event.n[1])", row) == "6"
    assert evaluate("unixTimeSecondsToDatetime(tostring(a))", row) == EPOCH + timedelta(seconds=7)
    assert transform('source | where a == "8"', row) is None
    assert transform("source | project z = toint(a)", row) == {"z": 7}


# ---- VPC Flow Logs ----------------------------------------------------------------------------

VPC_KQL = ("AWSVPCFlowLogs_DCR.json", "Custom-VPCFlowLogsParquet")
VPC_CASES = [c for c in CASES if c.fmt == "vpcflow"]


def _vpc_inputs(case_text: str) -> list[dict[str, Any]]:
    lines = case_text.strip("\n").split("\n")
    names = lines[0].split()
    return [{n: (None if v == "-" else v) for n, v in zip(names, line.split())}
            for line in lines[1:]]


@pytest.mark.parametrize("case", VPC_CASES, ids=[c.id for c in VPC_CASES])
def test_vpcflow_text_matches_the_dcr_field_by_field(case: Any) -> None:
    kql = dcr(*VPC_KQL)
    records = _vpc_inputs(plain(case.file).decode())
    rows = run(case.file.read_bytes(), case.key).rows
    assert len(rows) == len(records)
    for record, row in zip(records, rows):
        expected = transform(kql, record)
        if record.get("start") is None:  # transit gateway example: no start/end fields
            # DCR: TimeGenerated = null -> ingestion time; ours: the file name's time
            assert row["TimeGenerated"] == "2021-01-01T00:00:00Z"
            expected.pop("TimeGenerated")
            expected.pop("End")
        assert_same(expected, row, "AWSVPCFlow", ignore=("Start",))
        # the one column the transform leaves empty that the live table has
        if record.get("start") is not None:
            assert k_todatetime(row["Start"]) == k_unix_seconds(record["start"])


def test_vpcflow_v5_record_literal_values() -> None:
    # hand translation of the transform for the v5 documentation record (second line)
    case = next(c for c in VPC_CASES if "v5" in c.id)
    row = run(case.file.read_bytes(), case.key).rows[1]
    assert row["TimeGenerated"] == "2021-03-26T03:28:12Z"   # 1970-01-01 + 1616729292 s
    assert row["End"] == "2021-03-26T03:29:09Z"             # 1616729349
    assert (row["Version"], row["SrcPort"], row["DstPort"], row["Protocol"]) == (5, 34210, 80, 6)
    assert (row["Packets"], row["Bytes"], row["TcpFlags"]) == (7, 471, 3)
    assert row["PktDstAwsService"] == "S3" and "PktSrcAwsService" not in row
    assert row["TrafficPath"] == "8" and row["FlowDirection"] == "egress"
    assert row["AzId"] == "apse2-az3" and row["Region"] == "ap-southeast-2"


def test_vpcflow_parquet_spelling_matches_the_dcr() -> None:
    # Parquet columns use underscores and typed values; the DCR coalesces both spellings
    kql = dcr(*VPC_KQL)
    record = {"version": 7, "account_id": "123456789012", "interface_id": "eni-1", "srcaddr":
              "10.0.0.1", "dstaddr": "10.0.0.2", "srcport": 443, "dstport": 50000,
              "protocol": 6, "packets": 10, "bytes": 5000000000, "start": 1700000000,
              "end": 1700000060, "action": "ACCEPT", "log_status": "OK", "tcp_flags": 19,
              "type": "IPv4", "ecs_cluster_name": "prod", "ecs_task_id": "t-1",
              "ecs_container_id": "c-1", "ecs_second_container_id": None,
              "pkt_src_aws_service": "AMAZON", "sublocation_type": "wavelength"}
    row = vpcflow.map_named(record)
    row = {"TimeGenerated": vpcflow._time(row, None), **row}
    assert_same(transform(kql, record), row, "AWSVPCFlow", ignore=("Start",))
    assert row["EcsClusterName"] == "prod" and row["Bytes"] == 5000000000


# ---- Route 53 Resolver ------------------------------------------------------------------------

def test_route53_resolver_matches_the_dcr_field_by_field() -> None:
    case = next(c for c in CASES if c.fmt == "route53-resolver")
    kql = dcr("AWSRoute53ResolverLogs_DCR.json", "Custom-AWSRoute53ResolverLogs")
    records = [json.loads(line) for line in plain(case.file).decode().splitlines() if line]
    rows = run(case.file.read_bytes(), case.key).rows
    for record, row in zip(records, rows, strict=True):
        expected = transform(kql, record)
        assert set(row) == set(expected)
        assert_same(expected, row, "AWSRoute53Resolver")
    assert rows[0]["TimeGenerated"] == "2021-02-04T17:51:55Z"
    assert rows[0]["Answers"] == [{"Rdata": "203.0.113.9", "Type": "PTR", "Class": "IN"}]
    assert rows[0]["SrcIds"] == {"instance": "i-0d15cd0d3example"}
    assert rows[0]["LogType"] == "ResolverQueryLogs" and rows[0]["SrcPort"] == "56067"


# ---- Security Hub -----------------------------------------------------------------------------

def test_securityhub_matches_the_dcr_field_by_field() -> None:
    case = next(c for c in CASES if c.id.startswith("securityhub/ASSEMBLED"))
    kql = dcr("AWSSecurityHubFindings_DCR.json", "Custom-AWSSecurityHubFindings")
    event = json.loads(plain(case.file))
    expected = transform(kql, {"time": event["time"], "detail": event["detail"]})
    row = run(case.file.read_bytes(), case.key).rows[0]
    expected.pop("RawData")  # system column: not in the table's stream
    assert_same(expected, row, "AWSSecurityHubFindings")
    assert row["TimeGenerated"] == "2025-07-28T02:12:33Z"
    assert row["ComplianceStatus"] == "FAILED" and row["ComplianceSecurityControlId"] == "IAM.4"
    assert row["AwsSecurityFindingSeverity"] == {"Normalized": 90, "Label": "CRITICAL",
                                                 "Original": "CRITICAL"}
    assert k_todatetime(row["AwsSecurityFindingUpdatedAt"]) == k_todatetime(
        "2025-07-28T02:12:29.270Z")


def test_securityhub_every_finding_maps_like_the_dcr_maps_the_first() -> None:
    case = next(c for c in CASES if c.id.startswith("securityhub/ASSEMBLED"))
    kql = dcr("AWSSecurityHubFindings_DCR.json", "Custom-AWSSecurityHubFindings")
    event = json.loads(plain(case.file))
    first = event["detail"]["findings"][0]
    second = {**first, "Id": "second-finding", "Compliance": {"Status": "PASSED"}}
    event["detail"]["findings"] = [first, second]
    rows = run(json.dumps(event).encode(), case.key).rows
    assert len(rows) == 2
    for i, finding in enumerate((first, second)):
        alone = {"time": event["time"], "detail": {"findings": [finding]}}
        expected = transform(kql, alone)
        expected.pop("RawData")
        assert_same(expected, rows[i], "AWSSecurityHubFindings")
    assert rows[1]["ComplianceStatus"] == "PASSED"


# ---- Network Firewall -------------------------------------------------------------------------

NFW_KQL = "AWSNetworkFirewallLog_DCR.json"


def _nfw(case_fmt: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    case = next(c for c in CASES if c.fmt == case_fmt)
    records = [json.loads(line) for line in plain(case.file).decode().splitlines() if line]
    return records, run(case.file.read_bytes(), case.key).rows


def _event_time(record: dict[str, Any]) -> datetime:
    return k_todatetime(record["event"]["timestamp"])


@pytest.mark.parametrize("fmt,stream,table,epoch_as_datetime", [
    ("network-firewall-alert", "Custom-AWSNetworkFirewall-AlertLog", "AWSNetworkFirewallAlert",
     True),
    ("network-firewall-flow", "Custom-AWSNetworkFirewall-FlowLog", "AWSNetworkFirewallFlow",
     False),
    ("network-firewall-tls", "Custom-AWSNetworkFirewall-TlsLog", "AWSNetworkFirewallTls", True),
])
def test_network_firewall_matches_the_dcr_field_by_field(fmt: str, stream: str, table: str,
                                                         epoch_as_datetime: bool) -> None:
    kql = dcr(NFW_KQL, stream)
    records, rows = _nfw(fmt)
    outputs = []
    for record in records:
        given = dict(record)
        if epoch_as_datetime:  # the stream declares event_timestamp as datetime
            given["event_timestamp"] = k_unix_seconds(record["event_timestamp"])
        outputs.append((record, transform(kql, given)))
    kept = [(r, out) for r, out in outputs if out is not None]
    assert len(kept) == len(rows)
    for (record, expected), row in zip(kept, rows):
        assert expected["TimeGenerated"] is NOW
        # deliberate difference: the event's own time instead of the ingestion time
        assert k_todatetime(row["TimeGenerated"]) == _event_time(record)
        if fmt == "network-firewall-tls" and "revocation_check" in record["event"]:
            # extension: the documented revocation-check event keeps its values
            check = record["event"]["revocation_check"]
            for col, key in (("LeafCertificateFingerprint", "leaf_cert_fpr"),
                             ("Status", "status"), ("Action", "action")):
                assert expected[col] == "" and row[col] == check[key]
            expected = {k: v for k, v in expected.items()
                        if k not in ("LeafCertificateFingerprint", "Status", "Action")}
        assert_same(expected, row, table, ignore=("TimeGenerated",))


def test_network_firewall_literal_values() -> None:
    _, alerts = _nfw("network-firewall-alert")
    assert alerts[0]["EventTimestamp"] == "2020-10-13T22:10:01Z"   # epoch 1602627001
    assert (alerts[0]["SignatureId"], alerts[0]["Severity"], alerts[0]["Rev"]) == ("5", "1", "0")
    assert alerts[0]["SrcPort"] == "55555" and "Category" not in alerts[0]
    assert alerts[1]["VerdictAction"] == "drop" and alerts[1]["Sni"] == "example.com"
    _, flows = _nfw("network-firewall-flow")
    assert flows[0]["EventTimestamp"] == "1602627001"              # string in the Flow table
    assert flows[0]["TCPFlags"] == "02" and flows[0]["Syn"] is True and "Ack" not in flows[0]
    assert flows[0]["NetFlowStart"] == "2020-10-13T22:09:01.006481Z"
    assert flows[0]["FlowId"] == "1582438383425873"
    assert flows[1]["Ack"] is True and flows[1]["NetFlowAge"] == "58"


# ---- CloudFront -------------------------------------------------------------------------------

def test_cloudfront_matches_the_positional_dcr_field_by_field() -> None:
    case = next(c for c in CASES if c.fmt == "cloudfront")
    kql = dcr("AWSCloudFrontLog_DCR.json", "Custom-AwsCloudfront-AccessLog")
    lines = [ln for ln in plain(case.file).decode().splitlines() if not ln.startswith("#")]
    rows = run(case.file.read_bytes(), case.key).rows
    assert len(rows) == len(lines)
    for line, row in zip(lines, rows):
        record = {f"Field{i}": v for i, v in enumerate(line.split("\t"), start=1)}
        expected = transform(kql, record)
        assert expected["TimeGenerated"] is NOW
        # the case-only duplicate "Distributionid" (Field42) is not created: see cloudfront.py
        assert_same(expected, row, "AWSCloudFront_AccessLog_CL",
                    ignore=("TimeGenerated", "Distributionid"))
        # legacy transform: TimeGenerated = todatetime(strcat(date, 'T', time))
        assert k_todatetime(row["TimeGenerated"]) == k_todatetime(
            record["Field1"] + "T" + record["Field2"])
    assert rows[0]["CsUserAgent"].startswith("Mozilla/5.0%20(Windows")  # kept URL-encoded
    assert rows[0]["CsReferer"] == "-" and rows[3]["ScStatus"] == "502"


# ---- GuardDuty (no DCR: Microsoft's sample table rows) ------------------------------------------

def test_guardduty_matches_microsofts_sample_rows() -> None:
    import csv

    expected_csv = (REFERENCE.parent / "expected"
                    / "AWSGuardDuty__AWS_GuardDuty_AlertEvent_IngestedLogs.csv")
    case = next(c for c in CASES if c.fmt == "guardduty")
    rows = run(case.file.read_bytes(), case.key).rows
    with expected_csv.open(newline="") as fh:
        samples = list(csv.DictReader(fh))
    assert len(rows) == len(samples) == 10
    for sample, row in zip(samples, rows):
        for column, text in sample.items():
            if column in ("SourceSystem", "TenantId", "Type"):
                continue  # filled by the service, not sent
            got = row[column]
            if column in ("ResourceDetails", "ServiceDetails"):
                assert got == json.loads(text), column
            elif column == "Severity":
                assert got == int(text)
            else:
                assert got == text, (column, got, text)
