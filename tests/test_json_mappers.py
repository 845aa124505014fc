"""The column-by-column JSON mappers (``shared/formats/columns.py``: GuardDuty, WAF, Route 53,
Security Hub, Network Firewall alert / flow / TLS) give the rows of the plain mappings they
replaced, kept here verbatim as the reference: the same row (key order included) or the same
error on every fixture record and on thousands of randomly altered ones (values of the wrong
JSON type, empty strings, numbers as text, bad times, nested where flat belongs)."""
from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
import sample_logs
from golden.support import CASES, plain

from shared.formats import base, guardduty, netfirewall, route53, securityhub, waf
from shared.formats.base import (
    compact,
    int32,
    kql_bool,
    kql_string,
    trunc_int32,
    when,
    when_epoch,
)

# ---- the reference mappings (as they were before the column-by-column ones) ----------------

# GuardDuty
def ref_guardduty(f: dict[str, Any]) -> dict[str, Any]:
    created = when(f.get("createdAt"))
    row = {
        "TimeGenerated": when(f.get("updatedAt")) or created,
        "AccountId": kql_string(f.get("accountId")),
        "ActivityType": kql_string(f.get("type")),
        "Arn": kql_string(f.get("arn")),
        "Description": kql_string(f.get("description")),
        "Id": kql_string(f.get("id")),
        "Partition": kql_string(f.get("partition")),
        "Region": kql_string(f.get("region")),
        "ResourceDetails": f.get("resource"),
        "SchemaVersion": kql_string(f.get("schemaVersion")),
        "ServiceDetails": f.get("service"),
        "Severity": trunc_int32(f.get("severity")),
        "TimeCreated": created,
        "Title": kql_string(f.get("title")),
    }
    return compact(row)


# WAF
def _terminating_group(groups: Any) -> dict[str, Any]:
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict) and group.get("terminatingRule"):
                return group
    return {}


def ref_waf(r: dict[str, Any]) -> dict[str, Any]:
    req = r.get("httpRequest") if isinstance(r.get("httpRequest"), dict) else {}
    group = _terminating_group(r.get("ruleGroupList"))
    return compact({
        "TimeGenerated": when_epoch(r.get("timestamp"), millis=True),
        "FormatVersion": kql_string(r.get("formatVersion")),
        "WebAclId": kql_string(r.get("webaclId")),
        "TerminatingRuleId": kql_string(r.get("terminatingRuleId")),
        "TerminatingRuleType": kql_string(r.get("terminatingRuleType")),
        "Action": kql_string(r.get("action")),
        "TerminatingRuleMatchDetails": r.get("terminatingRuleMatchDetails"),
        "HttpSourceName": kql_string(r.get("httpSourceName")),
        "HttpSourceId": kql_string(r.get("httpSourceId")),
        "RuleGroupList": r.get("ruleGroupList"),
        "RateBasedRuleList": r.get("rateBasedRuleList"),
        "NonTerminatingMatchingRules": r.get("nonTerminatingMatchingRules"),
        "RequestHeadersInserted": r.get("requestHeadersInserted"),
        "ResponseCodeSent": int32(r.get("responseCodeSent")),
        "HttpRequest": r.get("httpRequest"),
        "ClientIp": kql_string(req.get("clientIp")),
        "Country": kql_string(req.get("country")),
        "Headers": req.get("headers"),
        "Uri": kql_string(req.get("uri")),
        "Args": kql_string(req.get("args")),
        "HttpVersion": kql_string(req.get("httpVersion")),
        "HttpMethod": kql_string(req.get("httpMethod")),
        "RequestId": kql_string(req.get("requestId")),
        "Labels": r.get("labels"),
        "CaptchaResponse": r.get("captchaResponse"),
        "ChallengeResponse": r.get("challengeResponse"),
        "OversizeFields": r.get("oversizeFields"),
        "Ja3Fingerprint": kql_string(r.get("ja3Fingerprint")),
        "RuleGroupId": kql_string(group.get("ruleGroupId")),
        "TerminatingRule": group.get("terminatingRule"),
        "ExcludedRules": group.get("excludedRules"),
    })


# Route 53
def ref_route53(r: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"TimeGenerated": when(r.get("query_timestamp"))}
    for key, column in route53.STRINGS.items():
        row[column] = kql_string(r.get(key))
    row["Answers"] = r.get("answers")
    row["SrcIds"] = r.get("srcids")
    row["LogType"] = "ResolverQueryLogs"
    return compact(row)


# Security Hub
def _sh_get(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def ref_securityhub(f: dict[str, Any], event_time: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"TimeGenerated": when(event_time) or when(f.get("UpdatedAt"))}
    for column, path in securityhub.STRINGS.items():
        row[column] = kql_string(_sh_get(f, path))
    for column, path in securityhub.DYNAMICS.items():
        row[column] = _sh_get(f, path)
    for column, name in securityhub.TIMES.items():
        row[column] = when(f.get(name))
    severity = _sh_get(f, ("FindingProviderFields", "Severity"))
    row["AwsSecurityFindingSeverity"] = severity if severity is not None else f.get("Severity")
    return compact(row)


# Network Firewall
def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _common(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "TimeGenerated": when(ev.get("timestamp")) or when_epoch(r.get("event_timestamp")),
        "FirewallName": kql_string(r.get("firewall_name")),
        "AvailabilityZone": kql_string(r.get("availability_zone")),
        "SrcIp": kql_string(ev.get("src_ip")),
        "SrcPort": kql_string(ev.get("src_port")),
        "DestIp": kql_string(ev.get("dest_ip")),
        "DestPort": kql_string(ev.get("dest_port")),
    }


def ref_alert(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    return compact({
        **_common(r, ev),
        "EventTimestamp": when_epoch(r.get("event_timestamp")),
        "Timestamp": when(ev.get("timestamp")),
        "TxId": kql_string(ev.get("tx_id")),
        "AppProto": kql_string(ev.get("app_proto")),
        "EventType": kql_string(ev.get("event_type")),
        "Severity": kql_string(_get(ev, "alert", "severity")),
        "SignatureId": kql_string(_get(ev, "alert", "signature_id")),
        "Rev": kql_string(_get(ev, "alert", "rev")),
        "Signature": kql_string(_get(ev, "alert", "signature")),
        "AlertAction": kql_string(_get(ev, "alert", "action")),
        "Category": kql_string(_get(ev, "alert", "category")),
        "FlowId": kql_string(ev.get("flow_id")),
        "Proto": kql_string(ev.get("proto")),
        "VerdictAction": kql_string(_get(ev, "verdict", "action")),
        "Sni": kql_string(_get(ev, "tls", "sni")),
        "Version": kql_string(_get(ev, "tls", "version")),
        "PktSrc": kql_string(ev.get("pkt_src")),
        "Direction": kql_string(ev.get("direction")),
    })


def ref_flow(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    return compact({
        **_common(r, ev),
        "EventTimestamp": kql_string(r.get("event_timestamp")),
        "Timestamp": when(ev.get("timestamp")),
        "TCPFlags": kql_string(_get(ev, "tcp", "tcp_flags")),
        "Syn": kql_bool(_get(ev, "tcp", "syn")),
        "Fin": kql_bool(_get(ev, "tcp", "fin")),
        "Psh": kql_bool(_get(ev, "tcp", "psh")),
        "Ack": kql_bool(_get(ev, "tcp", "ack")),
        "Ecn": kql_bool(_get(ev, "tcp", "ecn")),
        "Rst": kql_bool(_get(ev, "tcp", "rst")),
        "AppProto": kql_string(ev.get("app_proto")),
        "NetFlowPkts": kql_string(_get(ev, "netflow", "pkts")),
        "NetFlowBytes": kql_string(_get(ev, "netflow", "bytes")),
        "NetFlowStart": when(_get(ev, "netflow", "start")),
        "NetFlowEnd": when(_get(ev, "netflow", "end")),
        "NetFlowAge": kql_string(_get(ev, "netflow", "age")),
        "NetFlowMinttl": kql_string(_get(ev, "netflow", "min_ttl")),
        "NetFlowMaxttl": kql_string(_get(ev, "netflow", "max_ttl")),
        "EventType": kql_string(ev.get("event_type")),
        "FlowId": kql_string(ev.get("flow_id")),
        "Proto": kql_string(ev.get("proto")),
    })


def ref_tls(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    check = ev.get("revocation_check") if isinstance(ev.get("revocation_check"), dict) else {}

    def pick(name: str) -> str | None:
        return kql_string(ev.get(name)) or kql_string(check.get(name))

    return compact({
        **_common(r, ev),
        "EventTimestamp": when_epoch(r.get("event_timestamp")),
        "Sni": kql_string(ev.get("sni")),
        "LeafCertificateFingerprint": pick("leaf_cert_fpr"),
        "Status": pick("status"),
        "Action": pick("action"),
        "ErrorMessage": kql_string(_get(ev, "tls_error", "error_message")),
    })



# ---- the records ---------------------------------------------------------------------------

def _values(data: bytes) -> list[Any]:
    """Every JSON value of a JSON-lines / concatenated-JSON text (bad stretches passed over)."""
    text, decoder, pos, out = data.decode("utf-8", "replace"), json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return out
        try:
            value, pos = decoder.raw_decode(text, pos)
            out.append(value)
        except ValueError:
            nl = text.find("\n", pos)
            pos = len(text) if nl < 0 else nl + 1


def _fixture(fmt: str) -> list[Any]:
    values: list[Any] = []
    for case in CASES:
        if case.fmt == fmt and not case.error:
            values += _values(plain(case.file))
    return values


def _generated(builder: Any) -> list[Any]:
    import gzip
    return _values(gzip.decompress(builder(30)[1]))


def _securityhub_findings() -> list[tuple[Any, Any]]:
    out = []
    for value in _fixture("securityhub"):
        findings, event_time, _ = securityhub._findings(value)
        out += [(f, event_time) for f in findings if isinstance(f, dict)]
    return out


GUARDDUTY = [guardduty._finding(v) for v in _fixture("guardduty") + _generated(
    sample_logs.guardduty)]
WAF = _fixture("waf") + _generated(sample_logs.waf)
ROUTE53 = _fixture("route53-resolver")
SECURITYHUB = _securityhub_findings()
NETFW = {kind: [v for v in _fixture(f"network-firewall-{kind}")
                if isinstance(v, dict) and isinstance(v.get("event"), dict)]
         for kind in ("alert", "flow", "tls")}

# what a field may hold in hostile or unusual input
ODD = [None, "", "-", "true", "FALSE", "1", "0", True, False, 0, 1, -5, 2**31, 2**63, 1.5,
       8.9, 1e-7, 1e16, float("nan"), float("inf"), [], {}, [1, None], {"a": None},
       {"k": [1, 2.0]}, "2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123+02:00",
       "2024-13-01T00:00:00Z", "not a date", " ", "1700000000", "1700000000123", 1700000000,
       1700000000123, 2**70, "\u00e9\u4e2d", [{"terminatingRule": {"ruleId": "x"}}],
       [{"ruleGroupId": 5, "terminatingRule": "r", "excludedRules": [1]}],
       -2147483648.5, 2147483647.9, -2147483649.0, 2147483648.0, -2**31, 2**31 - 1, -0.0]


def _read_paths(fn: Any) -> list[tuple[str, ...]]:
    """The (root, key, ...) paths a generated mapper reads."""
    return sorted({alt[1] for col in fn.columns for alt in col[1:]
                   if alt[0] != "const" and len(alt[1]) > 1}, key=repr)


def _some_path(value: Any, rnd: random.Random) -> tuple[str, ...]:
    path: tuple[str, ...] = ()
    node = value
    while isinstance(node, dict) and node:
        name = rnd.choice(sorted(node))
        path += (name,)
        node = node[name]
        if rnd.random() < 0.5:
            break
    return path


def _alter(record: dict[str, Any], paths: list[tuple[str, ...]], rnd: random.Random
           ) -> dict[str, Any]:
    """``record`` with 1-4 of its fields (ones the mapper reads, or any) set to an odd value
    or removed; ``paths`` are relative to ``record``."""
    record = copy.deepcopy(record)
    for _ in range(rnd.randint(1, 4)):
        path = rnd.choice(paths) if paths and rnd.random() < 0.7 else _some_path(record, rnd)
        if not path:
            continue
        node: Any = record
        for name in path[:-1]:
            nxt = node.get(name) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                if rnd.random() < 0.5:
                    break  # leave the odd value above in place
                nxt = {}
                node[name] = nxt
            node = nxt
        else:
            if rnd.random() < 0.25:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = copy.deepcopy(rnd.choice(ODD))
    return record


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        out = fn(*copy.deepcopy(args))
        return ("row", None if out is None else list(out.items()))
    except Exception as err:  # noqa: BLE001 - the same failure is part of the contract
        return ("error", repr(err))


def _clear_caches() -> None:
    base._WHEN.clear()
    base._WHEN_EPOCH.clear()


# (name, new mapper, reference, records as argument tuples, the root of the records' paths)
CASES_ = [
    ("guardduty", guardduty.map_finding, ref_guardduty, [(f,) for f in GUARDDUTY]),
    ("waf", waf.map_record, ref_waf, [(r,) for r in WAF]),
    ("route53", route53.map_record, ref_route53, [(r,) for r in ROUTE53]),
    ("securityhub", securityhub.map_finding, ref_securityhub, SECURITYHUB),
    *((f"netfw-{kind}", mapper, ref, [(r, r["event"]) for r in NETFW[kind]])
      for kind, mapper, ref in (("alert", netfirewall.alert_row, ref_alert),
                                ("flow", netfirewall.flow_row, ref_flow),
                                ("tls", netfirewall.tls_row, ref_tls))),
]
IDS = [c[0] for c in CASES_]


@pytest.mark.parametrize("name,new,ref,records", CASES_, ids=IDS)
def test_fixture_records_give_the_reference_rows(name, new, ref, records) -> None:
    assert records, name
    for args in records:
        _clear_caches()
        expected = _outcome(ref, *args)
        assert expected[0] == "row" and len(expected[1]) >= 5
        assert _outcome(new, *args) == expected
        assert _outcome(new, *args) == expected  # with the time caches warm


def _netfw_alter(r: dict[str, Any], mapper: Any, rnd: random.Random) -> tuple[Any, Any]:
    # the mapper's paths are (root, ...) with root r or ev; the record's: r's keys, ev = event
    paths = [p[1:] if p[0] == "r" else ("event", *p[1:]) for p in _read_paths(mapper)]
    out = _alter(r, paths, rnd)
    ev = out.get("event")
    return out, ev if isinstance(ev, dict) else r["event"]


@pytest.mark.parametrize("name,new,ref,records", CASES_, ids=IDS)
def test_altered_records_give_the_reference_rows_or_the_same_error(name, new, ref,
                                                                    records) -> None:
    rnd = random.Random(name)
    shapes = set()
    for i in range(3000):
        args = rnd.choice(records)
        if name.startswith("netfw"):
            args = _netfw_alter(args[0], new, rnd)
        else:
            paths = [p[1:] for p in _read_paths(new) if p[0] != "event_time"]
            args = (_alter(args[0], paths, rnd), *args[1:])
            if name == "securityhub" and rnd.random() < 0.3:
                args = (args[0], rnd.choice(ODD))
        _clear_caches()
        expected = _outcome(ref, *args)
        assert _outcome(new, *args) == expected, (i, args)
        assert _outcome(new, *args) == expected, (i, args)  # the caches warm
        shapes.add((expected[0], len(expected[1]) if expected[0] == "row" else 0))
    assert len(shapes) >= 5  # the alterations reach the rows (columns come and go)


def test_the_generated_code_is_kept_for_reading() -> None:
    assert "def flow_row(r, ev):" in netfirewall.flow_row.source
    assert "row['TimeGenerated'] = v" in guardduty.map_finding.source


# ---- CloudWatch Logs: the log event row -----------------------------------------------------

def ref_cloudwatch_row(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    stamp = when_epoch(event.get("timestamp"), millis=True)
    message = event.get("message")
    if stamp is None or message is None:
        return None
    if not isinstance(message, str):
        message = base.json_text(message)
    return {"TimeGenerated": stamp, "ExtractedTime": stamp, "Message": message}


def test_cloudwatch_stamps_are_when_epoch_millis() -> None:
    from shared.formats import cloudwatch
    rnd = random.Random(3)
    values = [0, 1, 999, 1000, 1001, 1_700_000_000_000, 1_700_000_000_123,
              cloudwatch._MS_MAX - 1, cloudwatch._MS_MAX, -1, -1000, 2**63, 2**70]
    values += [rnd.randrange(0, cloudwatch._MS_MAX) for _ in range(100_000)]
    values += [rnd.randrange(1_500_000_000_000, 1_900_000_000_000) for _ in range(100_000)]
    for v in values:
        event = {"timestamp": v, "message": "m"}
        if rnd.random() < 0.01:
            cloudwatch._MINUTES.clear()
        assert cloudwatch._row(event) == ref_cloudwatch_row(event), v


def test_cloudwatch_altered_events_give_the_reference_rows() -> None:
    from shared.formats import cloudwatch
    rnd = random.Random(4)
    events = [e for v in _fixture("cloudwatch") + _generated(sample_logs.cloudwatch)
              if isinstance(v, dict) for e in v.get("logEvents", [])]
    assert len(events) >= 30
    for i in range(5000):
        event = _alter(rnd.choice(events), [("timestamp",), ("message",)], rnd)
        if rnd.random() < 0.05:
            event = rnd.choice(ODD)
        _clear_caches()
        cloudwatch._MINUTES.clear()
        expected = _outcome(ref_cloudwatch_row, event)
        assert _outcome(cloudwatch._row, event) == expected, (i, event)
        assert _outcome(cloudwatch._row, event) == expected, (i, event)


# ---- Security Hub: the parser's bare-finding path ------------------------------------------

def _items(items: Any) -> list[Any]:
    return [("row", list(i.items())) if isinstance(i, dict) else
            ("routed", i.table, list(i.row.items())) if isinstance(i, base.Routed) else
            (type(i).__name__, i.position, i.reason) for i in items]


def test_securityhub_bare_findings_give_what_other_kind_and_value_items_give() -> None:
    from shared.formats import eventbridge
    from shared.reader import JsonGarbage, TextSource
    rnd = random.Random(5)
    top = [("detail",), ("detail-type",), ("eventVersion",), ("eventTime",), ("eventSource",),
           ("Findings",), ("findings",), ("SchemaVersion",), ("Id",), ("UpdatedAt",)]
    values = []
    for _ in range(1500):
        finding = copy.deepcopy(rnd.choice(SECURITYHUB)[0])
        if rnd.random() < 0.5:
            path = rnd.choice(top)
            finding[path[0]] = copy.deepcopy(rnd.choice(ODD + [[finding], [{}], "x"]))
        values.append(finding)
    text = "\n".join(json.dumps(v) for v in values) + "\n"
    got = _items(securityhub.parse(TextSource(iter([text.encode()])), None))
    expected, position = [], 0
    for _, value in base.json_records(TextSource(iter([text.encode()]))):
        assert not isinstance(value, JsonGarbage)
        other = eventbridge.other_kind(value, "securityhub")
        gen = (eventbridge.route(other, value, position) if other is not None
               else securityhub.value_items(value, position))
        while True:
            try:
                expected.append(next(gen))
            except StopIteration as end:
                position = end.value
                break
    assert got == _items(expected)
    assert {g[0] for g in got} >= {"row", "Rejected"}


def test_guardduty_bare_findings_give_what_other_kind_and_finding_item_give() -> None:
    from shared.formats import eventbridge
    from shared.reader import TextSource
    rnd = random.Random(6)
    top = [("detail",), ("detail-type",), ("schemaVersion",), ("id",), ("type",),
           ("updatedAt",), ("createdAt",), ("accountId",), ("eventVersion",)]
    values = []
    for _ in range(1500):
        finding = copy.deepcopy(rnd.choice(GUARDDUTY))
        for _ in range(rnd.randint(0, 2)):
            path = rnd.choice(top)
            if rnd.random() < 0.3:
                finding.pop(path[0], None)
            else:
                finding[path[0]] = copy.deepcopy(rnd.choice(ODD + ["GuardDuty Finding"]))
        values.append(finding)
    text = "\n".join(json.dumps(v) for v in values) + "\n"
    got = _items(guardduty.parse(TextSource(iter([text.encode()])), None))
    expected, position = [], 0
    for _, value in base.json_records(TextSource(iter([text.encode()]))):
        for item in (value if isinstance(value, list) else [value]):
            other = eventbridge.other_kind(item, "guardduty")
            if other is not None:
                gen = eventbridge.route(other, item, position)
                while True:
                    try:
                        expected.append(next(gen))
                    except StopIteration as end:
                        position = end.value
                        break
                continue
            position += 1
            expected.append(guardduty.finding_item(item, position))
    assert got == _items(expected)
    assert {g[0] for g in got} >= {"row", "Rejected"}


def test_stamp_ms_is_when_epoch_millis() -> None:
    """``cloudwatch.stamp_ms`` (WAF's TimeGenerated) gives what when_epoch(millis=True) gives."""
    from shared.formats import cloudwatch
    rnd = random.Random(5)
    values: list[Any] = [0, 1, 999, 1000, 1001, 1_700_000_000_000, 1_700_000_000_123,
                         cloudwatch._MS_MAX - 1, cloudwatch._MS_MAX, -1, -1000, 2**63, 2**70,
                         True, False, None, 1.5, 1_700_000_000_000.0, "1700000000000", "",
                         "x", [1], {"a": 1}, float("nan"), float("inf"), -0.0]
    values += [rnd.randrange(0, cloudwatch._MS_MAX) for _ in range(50_000)]
    values += [rnd.randrange(1_500_000_000_000, 1_900_000_000_000) for _ in range(50_000)]
    for v in values:
        if rnd.random() < 0.01:
            cloudwatch._MINUTES.clear()
        assert cloudwatch.stamp_ms(v) == when_epoch(v, millis=True), v


def test_waf_records_with_odd_timestamps_give_the_reference_rows() -> None:
    rnd = random.Random(11)
    odd: list[Any] = [True, False, None, -1, 0, 2**70, 1.5e12, "1700000000000", "", [], {},
                      4_102_444_800_000, 4_102_444_799_999, float("nan")]
    for i in range(3000):
        record = copy.deepcopy(WAF[i % len(WAF)])
        record["timestamp"] = (rnd.choice(odd) if i % 3 == 0
                               else rnd.randrange(1_500_000_000_000, 1_900_000_000_000))
        if i % 50 == 0:
            del record["timestamp"]
        assert list(waf.map_record(record).items()) == list(ref_waf(record).items()), record
