"""Per-record routing, end to end: objects of several kinds in moto S3 -> SQS -> timer -> Azure
queue -> queue function -> one DCR stream per table in the Logs Ingestion emulator.

Each record goes to the table it belongs to (``Format.tables``, ``formats.Routed``); the
provenance rules hold per record (a record of a sensitive kind its prefix is not declared for
is dead-lettered with the setting to change); checkpoints stay per object (a retry after one
table's DCR failed resends nothing already accepted, whatever the table); one health row per
(object, table), so RecordsOut reconciles per table.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter

from conftest import FIXTURES
from golden.support import CASES, LOCAL, run

ALERT, FLOW, TLS = ("Custom-AWSNetworkFirewallAlert", "Custom-AWSNetworkFirewallFlow",
                    "Custom-AWSNetworkFirewallTls")
CT, VPC, CW = "Custom-AWSCloudTrail", "Custom-AWSVPCFlow", "Custom-AWSCloudWatch"
GD, SH = "Custom-AWSGuardDuty", "Custom-AWSSecurityHubFindings"
HEALTH = "Custom-AWSS3ConnectorHealth"
NFW_KEY = ("AWSLogs/123456789012/network-firewall/alert/us-east-1/fw/2024/07/02/18/"
           "123456789012_network-firewall_alert_us-east-1_fw_202407021800_{}.log.gz")


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (LOCAL / name).read_text().splitlines() if line]


def netfirewall_mixed(copies: int) -> tuple[bytes, dict[str, int]]:
    """An alert object holding alert, netflow and TLS events interleaved (as one firewall's
    log destination can), each event with a unique src_port; and the count per stream."""
    templates = (_lines("network-firewall_alert.jsonl") + _lines("network-firewall_flow.jsonl")
                 + _lines("network-firewall_tls.jsonl"))
    out, counts, port = [], Counter(), 0
    for _ in range(copies):
        for template in templates:
            event = json.loads(json.dumps(template))
            port += 1
            event["event"]["src_port"] = port
            kind = event["event"].get("event_type")
            counts[ALERT if kind == "alert" else FLOW if kind == "netflow" else TLS] += 1
            out.append(json.dumps(event))
    return gzip.compress("\n".join(out).encode() + b"\n"), dict(counts)


def object_rows(world) -> list[dict]:
    return [r for r in world.accepted(HEALTH) if r["Kind"] == "object"]


def drain(world, **settings):
    world.configure(**settings)
    host = world.host()
    host.run_timer()
    return host, host.drain()


def test_a_network_firewall_object_of_three_log_types_fills_three_tables(world):
    # GIVEN an alert object that also holds netflow and TLS events
    src = world.add_source("nfw")
    data, counts = netfirewall_mixed(120)
    world.put(src, NFW_KEY.format("mixed"), data)
    # WHEN the functions run, with small batches so every table has several
    host, result = drain(world, MAX_BATCH_BYTES="20000")
    # THEN every event is in its own type's table exactly once; none was skipped
    for stream, n in counts.items():
        ports = [r["SrcPort"] for r in world.accepted(stream)]
        assert len(ports) == n and len(set(ports)) == n, stream
    assert {r["EventType"] for r in world.accepted(FLOW)} == {"netflow"}
    assert {r["EventType"] for r in world.accepted(ALERT)} == {"alert"}
    requests = Counter(r.stream for r in world.stack.ingestion.requests)
    assert all(requests[s] > 1 for s in counts)  # batched per table
    assert result.failed == 0 and host.poison_items() == []
    # one health row per table, each reconciling with its table; the object's own row first
    rows = object_rows(world)
    assert [r["TargetTable"] for r in rows] == ["AWSNetworkFirewallAlert",
                                                "AWSNetworkFirewallFlow",
                                                "AWSNetworkFirewallTls"]
    for row in rows:
        n = counts["Custom-" + row["TargetTable"]]
        assert row["RecordsOut"] == row["RecordsIn"] == n and row["Outcome"] == "delivered"
        assert row["RecordsSkipped"] == 0 and row["Format"] == "network-firewall-alert"
    assert rows[0]["Bytes"] > 0 and sum(r["Bytes"] for r in rows) == rows[0]["Bytes"]


def test_rows_routed_from_a_mixed_object_equal_the_single_type_objects_rows(world):
    # the netflow event of the alert fixture lands exactly as the flow file's row would
    alert = next(c for c in CASES if c.fmt == "network-firewall-alert")
    flow_case = next(c for c in CASES if c.fmt == "network-firewall-flow")
    netflow = [line for line in alert.file.read_text().splitlines() if '"netflow"' in line]
    routed = run(alert.file.read_bytes(), alert.key).routed
    alone = run("\n".join(netflow).encode(), flow_case.key).rows
    assert [r.row for r in routed] == alone and len(alone) == 1


def _findings() -> tuple[list[dict], list[dict]]:
    gd = [{"version": "0", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
           "time": f["updatedAt"], "detail": f}
          for f in _lines("guardduty_findings_from_expected.jsonl")]
    sh = json.loads((FIXTURES / "securityhub" /
                     "ASSEMBLED_eventbridge_SecurityHubFindingsImported__IAM.4.json").read_text())
    return gd, [sh]


def _eventbridge_object() -> bytes:
    gd, sh = _findings()
    mixed = [gd[0], sh[0], *gd[1:5], sh[0], *gd[5:]]  # as one EventBridge rule delivers them
    return "\n".join(json.dumps(e) for e in mixed).encode()


def test_an_eventbridge_stream_of_guardduty_and_security_hub_findings_fills_both(world):
    # GIVEN a Firehose prefix declared for both kinds
    src = world.add_source("eb", kinds={"firehose/findings/": ["guardduty", "securityhub"]})
    world.put(src, "firehose/findings/2025/07/28/02/findings-1", _eventbridge_object(),
              gz=True)
    host, result = drain(world)
    # THEN each finding is in its table, with the rows a single-kind object gives
    gd_case = next(c for c in CASES if c.fmt == "guardduty")
    sh_case = next(c for c in CASES if c.golden == "securityhub_eventbridge")
    expected_gd = run(gd_case.file.read_bytes(), gd_case.key).rows
    expected_sh = run(sh_case.file.read_bytes(), sh_case.key).rows
    assert sorted(world.accepted(GD), key=json.dumps) == sorted(expected_gd, key=json.dumps)
    assert world.accepted(SH) == expected_sh * 2
    assert result.failed == 0 and host.poison_items() == []
    rows = object_rows(world)
    assert {r["TargetTable"]: r["RecordsOut"] for r in rows} == {
        "AWSSecurityHubFindings": 2, "AWSGuardDuty": len(expected_gd)}
    assert {r["Outcome"] for r in rows} == {"delivered"}


def test_a_kind_the_prefix_is_not_declared_for_is_dead_lettered_per_record_then_replayed(
        world):
    # GIVEN the same stream on a prefix declared for GuardDuty only
    src = world.add_source("ebone", kinds={"firehose/findings/": "guardduty"})
    key = "firehose/findings/2025/07/28/02/findings-2"
    world.put(src, key, _eventbridge_object(), gz=True)
    host, result = drain(world)
    # THEN the GuardDuty findings are delivered; the Security Hub ones never reach their
    # table, and one envelope names them and the setting that would declare them
    gd, _ = _findings()
    assert len(world.accepted(GD)) == len(gd) and world.accepted(SH) == []
    [item] = host.poison_items()
    assert item["kind"] == "undeclared_kind" and item["stage"] == "parse"
    assert item["table"] == "AWSSecurityHubFindings" and item["records"]["count"] == 2
    assert '"kinds": {"firehose/findings/": ["guardduty", "securityhub"]}' in item["reason"]
    assert result.failed == 0
    rows = {r["TargetTable"]: r for r in object_rows(world)}
    assert rows["AWSSecurityHubFindings"]["RecordsOut"] == 0
    assert rows["AWSSecurityHubFindings"]["RecordsDropped"] == 2
    assert rows["AWSGuardDuty"]["RecordsOut"] == len(gd)
    assert {r["Outcome"] for r in rows.values()} == {"partial"}
    # WHEN the operator declares the kind and replays: only the refused records are sent
    src["kinds"] = {"firehose/findings/": ["guardduty", "securityhub"]}
    world.configure()
    from shared.__main__ import main
    assert main(["replay"]) == 0
    host.drain()
    assert len(world.accepted(SH)) == 2 and len(world.accepted(GD)) == len(gd)
    assert host.poison_items() == []


def _cloudwatch_object(first: str) -> tuple[bytes, dict[str, int]]:
    """Firehose's object of three log groups' subscription payloads (gzip members back to
    back): a trail's, a flow log's and an application's."""
    payloads = {
        "trail": (LOCAL / "cloudwatch_cloudtrail.json").read_text(),
        "flows": (LOCAL / "cloudwatch_vpcflow.json").read_text(),
        "app": (FIXTURES / "cloudwatch_subscription" /
                "decoded_DATA_MESSAGE__awsdocs.json").read_text(),
    }
    order = [first] + [k for k in payloads if k != first]
    data = b"".join(gzip.compress(payloads[k].encode()) for k in order)
    counts = {"trail": len(json.loads(payloads["trail"])["logEvents"]),
              "flows": len(json.loads(payloads["flows"])["logEvents"]),
              "app": len(json.loads(payloads["app"])["logEvents"])}
    return data, counts


def test_a_cloudwatch_logs_object_of_three_log_groups_fills_three_tables(world):
    # GIVEN a Firehose prefix declared to carry CloudTrail (a trail's log group feeds it)
    src = world.add_source("cwl", kinds={"firehose/logs/": "cloudtrail"})
    data, counts = _cloudwatch_object("app")
    world.put(src, "firehose/logs/2025/07/28/02/logs-1", data)
    host, result = drain(world)
    # THEN each payload's events are in their log group's table, as their own objects give
    ct_case = next(c for c in CASES if c.golden == "cloudwatch_cloudtrail")
    vpc_case = next(c for c in CASES if c.golden == "cloudwatch_vpcflow")
    assert world.accepted(CT) == run(ct_case.file.read_bytes(), ct_case.key).rows
    assert world.accepted(VPC) == run(vpc_case.file.read_bytes(), vpc_case.key).rows
    assert len(world.accepted(CW)) == counts["app"]
    assert result.failed == 0 and host.poison_items() == []
    rows = {r["TargetTable"]: r["RecordsOut"] for r in object_rows(world)}
    assert rows == {"AWSCloudWatch": counts["app"], "AWSCloudTrail": counts["trail"],
                    "AWSVPCFlow": counts["flows"]}


def test_a_trail_log_group_on_an_undeclared_prefix_is_refused_the_others_delivered(world):
    # GIVEN the same object, the trail's payload first, on a prefix nobody declared
    src = world.add_source("cwl2")
    data, counts = _cloudwatch_object("trail")
    world.put(src, "firehose/logs/2025/07/28/02/logs-2", data)
    host, result = drain(world)
    # THEN the flow and application log events are delivered, the CloudTrail events are not
    # promoted by their content: dead-lettered with the setting to add
    assert world.accepted(CT) == []
    assert len(world.accepted(VPC)) == counts["flows"]
    assert len(world.accepted(CW)) == counts["app"]
    [item] = host.poison_items()
    assert item["kind"] == "undeclared_kind" and item["table"] == "AWSCloudTrail"
    assert item["records"]["count"] == counts["trail"]
    assert '"kinds": {"firehose/logs/": "cloudtrail"}' in item["reason"]
    assert result.failed == 0


def test_one_tables_dcr_failing_retries_only_what_was_not_accepted(world):
    # GIVEN a mixed object, and the flow table's stream failing for the whole first attempt
    src = world.add_source("nfwfail")
    data, counts = netfirewall_mixed(60)
    world.put(src, NFW_KEY.format("fail"), data)
    world.configure(MAX_BATCH_BYTES="20000", MAX_UPLOADS_IN_FLIGHT="1",
                    UPLOAD_MAX_ATTEMPTS="2")
    host = world.host()
    host.run_timer()
    world.stack.ingestion.inject(503, stream=FLOW, count=2)  # both tries of its first batch
    result = host.drain()
    # THEN the work item was retried once, and every record is in its table exactly once:
    # the retry sent the flow records only (the alert and TLS tables' were accepted before)
    assert result.failed == 1 and result.succeeded == 1
    for stream, n in counts.items():
        ports = [r["SrcPort"] for r in world.accepted(stream)]
        assert len(ports) == n and len(set(ports)) == n, stream
    # (a record sent twice would be in the emulator's store twice: counted above)
    assert [r.stream for r in world.stack.ingestion.requests if r.status == 503] == [FLOW] * 2
    assert host.poison_items() == []
    # the final health rows reconcile per table (RecordsOut counts earlier attempts too)
    rows = object_rows(world)
    assert [r["Outcome"] for r in rows] == ["retrying"] * 3 + ["delivered"] * 3
    final = {r["TargetTable"]: r["RecordsOut"] for r in rows if r["Outcome"] == "delivered"}
    assert final == {s.removeprefix("Custom-"): n for s, n in counts.items()}


def test_a_table_in_another_dcr_on_another_endpoint_trips_only_that_endpoints_breaker(world):
    # GIVEN the flow table routed to a second endpoint (the same emulator under the name
    # `localhost`: another endpoint for the connector), whose stream fails on every attempt
    src = world.add_source("nfwroute")
    data, counts = netfirewall_mixed(20)
    world.put(src, NFW_KEY.format("routed"), data)
    default = world.stack.env["LOGS_INGESTION_ENDPOINT"]
    other = default.replace("127.0.0.1", "localhost")
    assert other != default
    routes = {"AWSNetworkFirewallFlow": {"endpoint": other,
                                         "dcrImmutableId": world.stack.env["DCR_IMMUTABLE_ID"]}}
    world.configure(DCR_ROUTES=json.dumps(routes), UPLOAD_MAX_ATTEMPTS="2",
                    MAX_UPLOADS_IN_FLIGHT="1", CIRCUIT_FAILURE_THRESHOLD="100")
    host = world.host()
    host.run_timer()
    world.stack.ingestion.inject(503, stream=FLOW, count=2 * host.max_dequeue)
    result = host.drain()
    # THEN the alert and TLS tables were delivered on the first attempt and never resent; the
    # flow records were retried, then dead-lettered naming their table and stream
    assert result.failed == host.max_dequeue - 1
    for stream in (ALERT, TLS):
        ports = [r["SrcPort"] for r in world.accepted(stream)]
        assert len(ports) == counts[stream] == len(set(ports)), stream
    assert world.accepted(FLOW) == []
    [item] = host.poison_items()
    assert item["kind"] == "delivery_transient" and FLOW in item["reason"]
    # each attempt's failure counted against the flow table's endpoint only
    from shared import pipeline
    conn = pipeline.connector()
    assert conn.breaker_at(other).snapshot()["failures"] == host.max_dequeue
    assert conn.breaker_at(default).snapshot()["failures"] == 0
    # and the entity remembers the source, for the poller's pause while the circuit is open
    assert conn.breaker_at(other)._read()[0].get("Sources") == "nfwroute"


def test_a_routed_object_deferred_by_its_second_endpoint_frees_the_probe_of_its_first(world):
    # GIVEN a mixed Network Firewall object whose flow table goes to a second endpoint, the
    # default endpoint half open (its probe free), and the second endpoint's probe taken by
    # another instance between the object's look (retry_in) and its take (admit)
    from shared import pipeline
    from shared.ingestion import CircuitBreaker
    from shared.notifications import ObjectRef

    class Clock:
        t = 1_000_000.0

        def __call__(self) -> float:
            return self.t

    class TakenMeanwhile(CircuitBreaker):
        def retry_in(self) -> float:
            return 0.0  # what the object saw first

        def admit(self, owner: str = "") -> float:
            return 30.0  # another instance got the probe just before

    src = world.add_source("probefree")
    data, _ = netfirewall_mixed(2)
    key = NFW_KEY.format("probe")
    world.put(src, key, data)
    default = world.stack.env["LOGS_INGESTION_ENDPOINT"]
    other = default.replace("127.0.0.1", "localhost")
    world.configure(DCR_ROUTES=json.dumps({"AWSNetworkFirewallFlow": {
        "endpoint": other, "dcrImmutableId": world.stack.env["DCR_IMMUTABLE_ID"]}}))
    conn = pipeline.connector()
    clock = Clock()
    first = CircuitBreaker(conn.table, default, threshold=1, cooldown=10, probe_seconds=60,
                           clock=clock)
    conn.breaker = first
    conn._breakers[other] = TakenMeanwhile(conn.table, other)
    first.failure("earlier")
    clock.t += 11
    assert first.state == "half_open"
    # WHEN the object is tried
    ref = ObjectRef(source="probefree", bucket=src["_bucket"], key=key).to_json()
    stats = pipeline.process_object(conn, ref)
    # THEN it was deferred (re-queued) and nothing was sent, and the default endpoint's probe
    # is free for the next caller now (not held for its 60 s lease by an object that never sent)
    assert stats.outcome == "deferred" and "open for 30s" in stats.error
    assert world.accepted(ALERT) == world.accepted(TLS) == []
    assert first.admit("next") == 0


# ---- units: the kinds setting, the health rows ---------------------------------------------

def _source(kinds):
    from shared.config import load_settings

    source = {"name": "s", "queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
              "region": "us-east-1", "accessKeyIdSecret": "a", "secretAccessKeySecret": "b",
              "buckets": {"logs": [""]}, "kinds": kinds}
    return load_settings({"AWS_SOURCES": json.dumps([source]),
                          "LOGS_INGESTION_ENDPOINT": "https://x", "DCR_IMMUTABLE_ID": "dcr-1",
                          "KEY_VAULT_URL": "https://v", "AzureWebJobsStorage": "x"}).sources[0]


def test_a_prefix_may_be_declared_for_several_kinds_and_the_longest_prefix_wins() -> None:
    s = _source({"firehose/": "cloudtrail", "firehose/eb/": ["guardduty", "securityhub"]})
    assert s.kinds_for("firehose/eb/2025/x") == {"guardduty", "securityhub"}
    assert s.kinds_for("firehose/ct/2025/x") == {"cloudtrail"}
    assert s.kinds_for("other/x") == frozenset()


def test_a_bad_kind_in_a_list_is_reported() -> None:
    import pytest

    from shared.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        _source({"firehose/": ["guardduty", "guardduty-findings"]})
    assert any("kinds['firehose/']" in p and "or a list of them" in p
               for p in err.value.problems)


def test_health_rows_split_per_table_and_sum_to_the_object() -> None:
    from shared.health import ObjectStats, TableCounts

    stats = ObjectStats("s", "b", "k", format="network-firewall-alert",
                        table="AWSNetworkFirewallAlert", records_in=20, records_out=14,
                        records_dropped=3, records_skipped=1, records_filtered=2,
                        filtered_by={"r1": 2}, bytes_in=999, batches=4)
    stats.routes = {"AWSNetworkFirewallAlert": TableCounts(records=10, accepted=8, batches=2),
                    "AWSNetworkFirewallFlow": TableCounts(records=7, accepted_before=2,
                                                          accepted=2, dead=1, filtered=2,
                                                          filtered_by={"r1": 2}, batches=1),
                    "AWSNetworkFirewallTls": TableCounts(records=0)}  # none: no row
    stats.finish("partial", None)
    own, flow = stats.rows()
    assert (own["TargetTable"], flow["TargetTable"]) == ("AWSNetworkFirewallAlert",
                                                         "AWSNetworkFirewallFlow")
    assert flow["RecordsIn"] == 7 and flow["RecordsOut"] == 4 and flow["RecordsDropped"] == 1
    assert flow["FilteredByRule"] == {"r1": 2} and "FilteredByRule" not in own
    assert flow["Bytes"] == 0 and own["Bytes"] == 999 and flow["Outcome"] == "partial"
    for name in ("RecordsIn", "RecordsOut", "RecordsDropped", "RecordsFiltered", "Batches",
                 "RecordsSkipped"):
        assert own[name] + flow[name] == stats.row()[name], name
    assert stats.filtered_by == {"r1": 2}  # the object's own counts are not changed
    single = ObjectStats("s", "b", "k", table="AWSVPCFlow", records_in=3)
    [row] = single.rows()
    assert row["TargetTable"] == "AWSVPCFlow" and row["RecordsIn"] == 3


def test_a_large_mixed_object_holds_one_open_batch_per_table_not_its_records(world):
    # GIVEN mixed Network Firewall objects of 7k and 42k events (6x; 42k encoded rows are
    # ~19 MB: holding them would show)
    import tracemalloc

    from shared import pipeline

    world.stack.ingestion.keep_records = False
    try:
        src = world.add_source("nfwmem")
        world.configure()
        conn = pipeline.connector()
        peaks = []
        for copies in (1000, 6000):
            key = NFW_KEY.format(f"mem{copies}")
            data, counts = netfirewall_mixed(copies)
            world.put(src, key, data)
            body = json.dumps({"source": src["name"], "bucket": src["_bucket"], "key": key})
            tracemalloc.start()
            try:
                stats = pipeline.process_object(conn, body)
                peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
            finally:
                tracemalloc.stop()
            # THEN every record was accepted, and the peak does not grow with the records
            assert stats.outcome == "delivered" and stats.records_out == sum(counts.values())
        assert peaks[1] < peaks[0] + 8, peaks  # 35k more rows held would be ~16 MB more
    finally:
        world.stack.ingestion.keep_records = True
