"""Amazon Security Lake: OCSF Parquet objects, read row group by row group, mapped by class.

GIVEN the OCSF examples Security Lake's guide points to, written as Parquet under the keys
Security Lake uses (tests/make_security_lake_fixtures.py, SOURCES.md)
WHEN each object is detected and parsed (unit) or goes through the whole pipeline (e2e, the
notification being the EventBridge "Object Created" event Security Lake sends its subscriber)
THEN each class lands in its Sentinel table with the columns the analytic rules read filled.
"""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from golden.support import run
from make_security_lake_fixtures import OBJECTS, OUT

from shared import formats
from shared.errors import FormatError
from shared.schemas import violations


def parsed(name: str):
    out = run((OUT / name).read_bytes(), OBJECTS[name])
    assert out.error is None and out.rejected == []
    return out


def test_every_object_goes_to_the_table_of_its_class_and_fits_its_schema() -> None:
    tables = {name: parsed(name) for name in OBJECTS}
    assert {n: (o.fmt.name, o.fmt.table) for n, o in tables.items()} == {
        "CLOUD_TRAIL_MGMT.parquet": ("ocsf-api", "AWSCloudTrail"),
        "VPC_FLOW.parquet": ("ocsf-network", "AWSVPCFlow"),
        "ROUTE53.parquet": ("ocsf-dns", "AWSRoute53Resolver"),
        "SH_FINDINGS.parquet": ("ocsf-finding", "AWSSecurityHubFindings"),
        "WAF.parquet": ("ocsf", "AWSSecurityLakeOCSF_CL"),
    }
    for out in tables.values():
        for row in out.rows:
            assert violations(out.fmt.table, row) == [], row


def test_api_activity_fills_the_cloudtrail_columns_analytic_rules_read() -> None:
    rc2, v11, failed = parsed("CLOUD_TRAIL_MGMT.parquet").rows  # three row groups
    for row in (rc2, v11, failed):  # 1.0.0-rc.2 names and 1.1 names give the same columns
        assert row["TimeGenerated"] == "2020-09-21T22:22:52Z"
        assert row["EventName"] == "DescribeDirectConnectGateways"
        assert row["EventSource"] == "directconnect.amazonaws.com"
        assert row["SourceIpAddress"] == "205.8.181.128"
        assert row["UserIdentityArn"] == "arn:aws:iam::811596193553:user/Level6"
        assert row["UserIdentityPrincipalid"] == "AIDADO2GQD0K8TEF7KW1V"
        assert row["UserIdentityUserName"] == "Level6"
        assert row["UserIdentityType"] == "IAMUser"
        assert row["UserIdentityAccountId"] == "811596193553"
        assert row["UserIdentityAccessKeyId"] == "AKIA3Z2XBVUDFQ9TU4MD"
        assert row["AWSRegion"] == "us-east-1" and row["RecipientAccountId"] == "811596193553"
        assert row["EventTypeName"] == "AwsApiCall" and row["OperationName"] == "CloudTrail"
        assert row["AwsRequestId_"] == "1c8a6220-4263-4763-b526-20c1d1dd012c"
    assert "ErrorCode" not in rc2
    assert failed["ErrorCode"] == "AccessDenied"
    assert failed["ErrorMessage"].startswith("User is not authorized")


def test_network_dns_and_finding_columns() -> None:
    [flow] = parsed("VPC_FLOW.parquet").rows
    assert (flow["SrcAddr"], flow["SrcPort"], flow["DstAddr"], flow["DstPort"]) == \
        ("1.2.3.4", 56858, "172.31.2.52", 39938)
    assert flow["Action"] == "REJECT" and flow["Protocol"] == 6 and flow["Bytes"] == 40
    assert flow["InterfaceId"] == "eni-000000000000000000" and flow["FlowDirection"] == "ingress"
    assert flow["Start"] == flow["TimeGenerated"] == "2022-04-12T00:02:12Z"
    [dns] = parsed("ROUTE53.parquet").rows
    assert dns["QueryName"] == "ip-127-0-0-62.alert.firewall.canary." and dns["Rcode"] == "NOERROR"
    assert dns["Answers"] == [{"Rdata": "127.0.0.62", "Type": "A", "Class": "IN"}]
    assert dns["SrcAddr"] == "10.200.21.100" and dns["FirewallRuleAction"] == "ALERT"
    [finding] = parsed("SH_FINDINGS.parquet").rows
    assert finding["AwsSecurityFindingId"].endswith("/finding/a6c556fcbc9bea427a19f8b787099a0b")
    assert finding["AwsSecurityFindingProductName"] == "GuardDuty"
    assert finding["AwsSecurityFindingSeverity"] == {"Label": "LOW", "Normalized": 40}
    assert finding["AwsSecurityFindingCreatedAt"] == "2023-09-19T15:05:22.487000Z"
    assert finding["AwsSecurityFindingTypes"] == [
        "TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled"]
    assert finding["RecordState"] == "ACTIVE" and finding["WorkflowState"] == "NEW"
    [other] = parsed("WAF.parquet").rows
    assert other["ClassUid"] == 4002 and other["SourceName"] == "aws/WAF"
    assert other["Event"]["firewall_rule"]["condition"] == "SQL_INJECTION"  # OCSF kept whole
    assert other["S3Key"] == OBJECTS["WAF.parquet"]


def _parquet(rows: list[dict], row_group_size: int = 1) -> bytes:
    buf = io.BytesIO()
    schema = pa.unify_schemas([pa.Table.from_pylist([r]).schema for r in rows])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buf,
                   row_group_size=row_group_size)
    return buf.getvalue()


def test_an_event_of_another_class_in_a_source_folder_is_rejected_alone() -> None:
    flow = json.loads((OUT.parent / "vpcflowlog.json").read_text())
    api = {"class_uid": 6003, "class_name": "API Activity", "time": 1600726972000,
           "api": {"operation": "GetObject"}}
    out = run(_parquet([{"class_uid": 4001, "time": flow["time"]}, api]),
              OBJECTS["VPC_FLOW.parquet"])
    assert len(out.rows) == 1 and [r.position for r in out.rejected] == [2]
    assert "OCSF class 6003 (API Activity) in a aws/VPC_FLOW object" in out.rejected[0].reason


def test_a_custom_source_never_becomes_cloudtrail_rows_by_its_class() -> None:
    # ext/ is written by whoever runs the custom source: its API Activity stays OCSF
    api = {"class_uid": 6003, "class_name": "API Activity", "time": 1600726972000}
    key = ("ext/my-app/1.0/region=us-east-1/accountId=123456789012/eventDay=20200921/"
           "x.parquet")
    out = run(_parquet([api]), key)
    assert out.fmt.table == "AWSSecurityLakeOCSF_CL" and out.rows[0]["ClassUid"] == 6003


def test_broken_parquet_and_text_under_a_security_lake_key_are_format_errors() -> None:
    key = OBJECTS["VPC_FLOW.parquet"]
    assert run(b"PAR1\x15\x04junk", key).error is not None
    with pytest.raises(FormatError, match="content does not match"):
        formats.detect(key, '{"class_uid": 4001}')


def test_many_row_groups_stream_in_order() -> None:
    rows = [{"class_uid": 4001, "time": 1649721732000 + i, "traffic": {"bytes": i}}
            for i in range(25)]
    out = run(_parquet(rows, row_group_size=4), OBJECTS["VPC_FLOW.parquet"])
    assert [r["Bytes"] for r in out.rows] == list(range(25))


# ---- end to end ------------------------------------------------------------------------------

def test_e2e_security_lake_subscriber_queue_to_every_table(world):
    # GIVEN a Security Lake bucket; its subscriber queue gets EventBridge "Object Created"
    # events (Security Lake notifies subscribers through an EventBridge rule)
    src = world.add_source("lake", prefixes=["aws/", "ext/"])
    world.s3.put_bucket_notification_configuration(  # only Security Lake's events below
        Bucket=src["_bucket"], NotificationConfiguration={})
    for name, key in OBJECTS.items():
        data = (OUT / name).read_bytes()
        world.s3.put_object(Bucket=src["_bucket"], Key=key, Body=data)
    for key in OBJECTS.values():
        head = world.s3.head_object(Bucket=src["_bucket"], Key=key)
        world.send_raw(src, json.dumps({
            "version": "0", "id": "5e4f3a2b-0000-0000-0000-000000000000",
            "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
            "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{src['_bucket']}"],
            "detail": {"version": "0", "bucket": {"name": src["_bucket"]},
                       "object": {"key": key, "size": head["ContentLength"],
                                  "etag": head["ETag"].strip('"')},
                       "reason": "PutObject"}}))
    # WHEN the functions run
    world.configure()
    host = world.host()
    host.run_timer()
    result = host.drain()
    # THEN every class is in its table, CloudTrail and findings vouched for by AWS's layout
    assert result.failed == 0 and host.poison_items() == []
    counts = {t: len(world.accepted(f"Custom-{t}")) for t in
              ("AWSCloudTrail", "AWSVPCFlow", "AWSRoute53Resolver", "AWSSecurityHubFindings",
               "AWSSecurityLakeOCSF")}
    assert counts == {"AWSCloudTrail": 3, "AWSVPCFlow": 1, "AWSRoute53Resolver": 1,
                      "AWSSecurityHubFindings": 1, "AWSSecurityLakeOCSF": 1}
    errors = [r for r in world.accepted("Custom-AWSCloudTrail") if "ErrorCode" in r]
    assert [r["ErrorCode"] for r in errors] == ["AccessDenied"]


def test_the_columns_read_are_every_column_the_mappers_read() -> None:
    # only the top-level fields in COLUMNS are read from the Parquet file: every mapper, on
    # every fixture event (and on the events of the bench's generator), gives the same row
    # with the projection as with every column
    import random

    from benchmarks.harness import _ocsf_schema, ocsf_api_events
    from shared.formats import securitylake as sl

    mappers = {"api": sl.map_api_activity, "network": sl.map_network_activity,
               "dns": sl.map_dns_activity, "finding": sl.map_finding}
    objects = [(OUT / name).read_bytes() for name in OBJECTS]
    generated = ocsf_api_events(random.Random(3), 0, 50, 1764600000)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(generated, schema=_ocsf_schema()), buf)
    objects.append(buf.getvalue())
    for data in objects:
        events = list(sl.records(data))
        for kind, mapper in mappers.items():
            projected = list(sl.records(data, sl.COLUMNS[kind]))
            assert len(projected) == len(events)
            assert [mapper(e) for e in projected] == [mapper(e) for e in events], kind
            assert set().union(*(e.keys() for e in projected)) <= set(sl.COLUMNS[kind])
