"""Bad and unusual input: a bad value never crashes an object, a bad record is rejected with
its position and reason, content that does not fit the format as a whole is a FormatError."""
from __future__ import annotations

import gzip
import json
import sys

import pytest
from golden.support import CASES, plain, run

from shared import formats
from shared.errors import FormatError
from shared.formats import vpcflow
from shared.reader import TextSource
from shared.schemas import violations

VPC_KEY = ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/123456789012_vpcflowlogs_"
           "us-east-1_fl-0123456789abcdef0_20240102T0305Z_abcd1234.log.gz")
VPC_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
              "bytes start end action log-status")
GD_KEY = "AWSLogs/123456789012/GuardDuty/us-east-1/2024/01/02/3f0e1c62-0000-4000-8000-1.jsonl.gz"
ALB_KEY = ("AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/01/02/123456789012_"
           "elasticloadbalancing_us-east-2_app.my-lb.1234567890abcdef_20240102T0305Z_"
           "10.0.0.1_abcd.log.gz")
S3_KEY = "logs/2024-01-02-03-04-05-0123456789ABCDEF"


def _fits(out, table: str) -> None:
    for row in out.rows:
        assert violations(table, row) == [], row


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# ---- VPC Flow Logs ---------------------------------------------------------------------------

def test_vpc_bad_values_are_dropped_or_kept_as_text_and_the_row_survives() -> None:
    out = run(_text([
        VPC_HEADER,
        "2 123456789012 eni-1 not-an-ip 10.0.0.2 99999999999 443 6 abc 1e3 1704164700 "
        "1704164760 ACCEPT OK",
    ]), VPC_KEY)
    row = out.rows[0]
    assert row["SrcAddr"] == "not-an-ip"          # text column: kept as written
    assert "SrcPort" not in row and "Packets" not in row and "Bytes" not in row
    assert row["DstPort"] == 443 and row["TimeGenerated"] == "2024-01-02T03:05:00Z"
    _fits(out, "AWSVPCFlow")


def test_vpc_record_with_wrong_field_count_is_rejected_with_its_line_number() -> None:
    out = run(_text([VPC_HEADER, "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1704164700",
                     "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1704164700 1704164760 "
                     "ACCEPT OK"]), VPC_KEY)
    assert [(r.position, "11 fields" in r.reason) for r in out.rejected] == [(2, True)]
    assert out.rejected[0].raw.startswith("2 123456789012")
    assert len(out.rows) == 1


def test_vpc_time_falls_back_from_start_to_end_to_the_file_name() -> None:
    out = run(_text([VPC_HEADER,
                     "2 1 eni-1 - - - - - - - - 1704164760 - NODATA",
                     "2 1 eni-1 - - - - - - - - - - NODATA"]), VPC_KEY, event_time=None)
    assert out.rows[0]["TimeGenerated"] == "2024-01-02T03:06:00Z"   # end
    assert out.rows[1]["TimeGenerated"] == "2024-01-02T03:05:00Z"   # ..._20240102T0305Z_...
    out = run(_text([VPC_HEADER, "2 1 eni-1 - - - - - - - - - - NODATA"]), "flows/x.log",
              override="vpcflow", event_time=None)
    assert out.rows == [] and "no start/end time" in out.rejected[0].reason


def test_vpc_without_header_is_read_in_the_default_order_and_garbage_is_a_format_error() -> None:
    out = run(_text(["2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 1 1704164700 1704164760 "
                     "ACCEPT OK"]), VPC_KEY)
    assert out.fmt.name == "vpcflow" and out.rows[0]["Action"] == "ACCEPT"
    out = run(b"hello world this is not a flow log\n", "x", override="vpcflow")
    assert isinstance(out.error, FormatError) and "header line" in out.error.message


def test_vpc_header_accepts_new_aws_fields_and_underscore_spelling() -> None:
    out = run(_text(["version account_id interface_id srcaddr dstaddr start end action "
                     "log_status reject-reason some-future-field ecs-cluster-name",
                     "8 1 eni-1 10.0.0.1 10.0.0.2 1704164700 1704164760 REJECT OK BPA x prod"]),
              VPC_KEY)
    row = out.rows[0]
    assert row["AccountId"] == "1" and row["LogStatus"] == "OK"
    assert row["EcsClusterName"] == "prod" and row["Version"] == 8
    _fits(out, "AWSVPCFlow")


def test_vpc_parquet_needs_pyarrow_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = formats.get("vpcflow")
    key = VPC_KEY.replace(".log.gz", ".log.parquet")
    head = "PAR1\x15\x04"
    assert formats.detect(key, head) is fmt and fmt.parse_bytes is not None
    with pytest.raises(FormatError) as err:  # the text parser says how it must be read
        list(fmt.parse(TextSource(iter([b"PAR1\x15\x04junk"])), formats.ObjectContext(
            "s", "b", key)))
    assert "read as bytes" in err.value.message and "pyarrow" in err.value.message
    assert "cannot be read" in run(b"PAR1\x15\x04junk", key).error.message
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    ctx = formats.ObjectContext("s", "b", key)
    with pytest.raises(FormatError, match="install pyarrow"):
        list(fmt.parse_bytes(b"PAR1junk", ctx))


def test_vpc_parquet_rows_with_pyarrow() -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is optional (VPC Parquet only)")
    import io

    import pyarrow.parquet as pq
    table = pa.table({"version": [5], "account_id": ["123456789012"], "srcaddr": ["10.0.0.1"],
                      "start": [1704164700], "end": [1704164760], "action": ["ACCEPT"],
                      "log_status": ["OK"], "bytes": [5_000_000_000]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    rows = list(vpcflow.parse_parquet(buf.getvalue(), formats.ObjectContext("s", "b", VPC_KEY)))
    assert rows == [{"TimeGenerated": "2024-01-02T03:05:00Z", "Version": 5,
                     "AccountId": "123456789012", "SrcAddr": "10.0.0.1",
                     "Start": "2024-01-02T03:05:00Z", "End": "2024-01-02T03:06:00Z",
                     "Action": "ACCEPT", "LogStatus": "OK", "Bytes": 5_000_000_000}]


def test_vpc_parquet_corrupt_further_on_is_a_format_error_after_the_records_before_it() -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is optional (VPC Parquet only)")
    import io

    import pyarrow.parquet as pq
    n = 10_000
    table = pa.table({"version": [5] * n, "account_id": ["123456789012"] * n,
                      "srcaddr": [f"10.0.{i // 256}.{i % 256}" for i in range(n)],
                      "start": [1704164700 + i for i in range(n)],
                      "end": [1704164760 + i for i in range(n)], "action": ["ACCEPT"] * n,
                      "log_status": ["OK"] * n})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=2_000, compression="none")
    data = bytearray(buf.getvalue())
    # GIVEN a page of the 4th row group overwritten with garbage (a damaged object)
    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(3).column(2)
    at = column.data_page_offset
    data[at:at + 64] = b"\xff" * 64
    items = vpcflow.parse_parquet(bytes(data), formats.ObjectContext("s", "b", VPC_KEY))
    rows = []
    # THEN the rows before the damage come out, then a FormatError (never pyarrow's OSError)
    with pytest.raises(FormatError, match="cannot be read after record 6000"):
        for item in items:
            rows.append(item)
    assert len(rows) == 6_000 and all(isinstance(r, dict) for r in rows)


def test_time_caches_never_keep_a_long_hostile_value() -> None:
    from shared.formats import base, columns, s3access

    junk = "x" * 100_000
    assert base.when(junk) is None and junk not in base._WHEN
    assert s3access.log_time(junk) is None and junk not in s3access._LOG_TIMES
    assert columns.epoch_text("9" * 100_000) is None and "9" * 100_000 not in columns._EPOCHS
    stamp = "2024-01-02T03:05:00Z"
    assert base.when(stamp) == stamp and stamp in base._WHEN  # a real time is still remembered


# ---- GuardDuty -------------------------------------------------------------------------------

def _finding(**over: object) -> str:
    f = {"schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1",
         "id": "f1", "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 5.0,
         "createdAt": "2024-01-02T03:00:00.000Z", "updatedAt": "2024-01-02T03:05:00.000Z"}
    f.update(over)
    return json.dumps({k: v for k, v in f.items() if v is not None})


def test_guardduty_bad_values_and_bad_lines() -> None:
    out = run(_text([_finding(), _finding(severity="high", id="f2"), "{not json",
                     _finding(updatedAt=None, id="f3"),
                     _finding(updatedAt=None, createdAt="yesterday", id="f4")]), GD_KEY)
    assert [r["Id"] for r in out.rows] == ["f1", "f2", "f3"]
    assert "Severity" not in out.rows[1]
    assert out.rows[2]["TimeGenerated"] == "2024-01-02T03:00:00Z"   # createdAt when no update
    assert [(r.position, r.reason.split(":")[0]) for r in out.rejected] == [
        (3, "GuardDuty finding is not JSON"),
        (5, "GuardDuty finding has no valid updatedAt/createdAt")]
    _fits(out, "AWSGuardDuty")


def test_guardduty_first_line_not_json_is_rejected_alone() -> None:
    # a broken first line does not condemn the object (issue 8): it is one rejected record
    out = run(_text(["{oops", _finding()]), GD_KEY)
    assert out.error is None and out.fmt.name == "guardduty" and len(out.rows) == 1
    assert [r.position for r in out.rejected] == [1] and "not JSON" in out.rejected[0].reason


def test_guardduty_object_of_nothing_but_bad_lines_is_a_format_error() -> None:
    out = run(_text(["{oops", "{still not", "nope", _finding()]), GD_KEY, override="guardduty")
    assert isinstance(out.error, FormatError) and "not JSON" in out.error.message


def test_guardduty_eventbridge_wrapped_finding_is_unwrapped() -> None:
    event = {"version": "0", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
             "time": "2024-01-02T03:06:00Z", "detail": json.loads(_finding(severity=8.9))}
    out = run(json.dumps(event).encode(),
              "firehose/guardduty/2024/01/02/03/gd-1-2024-01-02-03-06-00-x")
    assert out.fmt.name == "guardduty" and out.rows[0]["Severity"] == 8


# ---- CloudWatch Logs via Firehose ---------------------------------------------------------------

def _cwl(message_type: str, events: list[dict]) -> bytes:
    return gzip.compress(json.dumps({
        "messageType": message_type, "owner": "123456789012", "logGroup": "app",
        "logStream": "s1", "subscriptionFilters": ["f"], "logEvents": events},
        separators=(",", ":")).encode())


def test_cloudwatch_concatenated_gzip_members_control_message_and_bad_event() -> None:
    data = (_cwl("CONTROL_MESSAGE", [{"id": "", "timestamp": 1704164700000,
                                      "message": "CWL CONTROL MESSAGE: Checking health"}])
            + _cwl("DATA_MESSAGE", [{"id": "1", "timestamp": 1704164700123, "message": "a"},
                                    {"id": "2", "message": "no time"}])
            + _cwl("DATA_MESSAGE", [{"id": "3", "timestamp": 1704164701000, "message": "b"}]))
    out = run(data, "firehose/2024/01/02/03/cwl-1-2024-01-02-03-05-00-uuid", chunk=50)
    assert out.fmt.name == "cloudwatch"
    assert [r["Message"] for r in out.rows] == ["a", "b"]
    assert out.rows[0]["TimeGenerated"] == out.rows[0]["ExtractedTime"] == \
        "2024-01-02T03:05:00.123000Z"
    assert [s.position for s in out.skipped] == [1]
    assert [r.position for r in out.rejected] == [3]
    _fits(out, "AWSCloudWatch")


# ---- ELB / S3 access logs --------------------------------------------------------------------

ALB_LINE = ('https 2024-01-02T03:04:05.123456Z app/my-lb/50dc6c495c0c9188 {client} 10.0.0.1:80 '
            '0.001 0.002 0.000 {status} 200 34 366 "GET https://example.com:443/ HTTP/1.1" '
            '"curl/8" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elb:tg "Root=1-abc" "-" "-" 0 '
            '2024-01-02T03:04:05.000000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1')


def test_alb_bad_port_and_status_are_dropped_ipv6_client_and_short_lines_rejected() -> None:
    out = run(_text([ALB_LINE.format(client="192.0.2.1:notaport", status="xyz"),
                     ALB_LINE.format(client="[2001:db8::1]:443", status="200"),
                     "https 2024-01-02T03:04:05Z app/x"]), ALB_KEY)
    first, second = out.rows
    assert first["ClientIp"] == "192.0.2.1" and "ClientPort" not in first
    assert "ElbStatusCode" not in first and first["ConnTraceId"] == "TID_1"
    assert (second["ClientIp"], second["ClientPort"], second["ElbStatusCode"]) == \
        ("2001:db8::1", 443, 200)
    assert [r.position for r in out.rejected] == [3]
    _fits(out, "AWSALBAccessLogs")


def test_alb_connection_log_key_is_not_taken_for_an_access_log() -> None:
    key = ALB_KEY.replace("/123456789012_elasticloadbalancing", "/conn_log.123456789012_"
                          "elasticloadbalancing")
    assert formats.detect(key, "2024-01-02T03:04:05Z 192.0.2.1 1234 443 TLSv1.2 x\n").name == \
        "raw"


S3_FIELDS = ['owner', 'bucket', '[02/Jan/2024:03:04:05 +0000]', '192.0.2.3', 'requester',
             'REQID', 'REST.GET.OBJECT', 'photos/a%20b.jpg', '"GET /bucket/photos/a%20b.jpg '
             'HTTP/1.1"', '200', '-', '3000000000', '3000000000', '70', '10', '"-"',
             '"aws-cli/2"', '-']


def test_s3_access_variable_trailing_fields_and_oversized_ints() -> None:
    short = " ".join(S3_FIELDS)
    long_ = short + (" hostid SigV4 ECDHE AuthHeader bucket.s3.amazonaws.com TLSv1.3 - Yes "
                     "us-east-1 more-future-fields")
    out = run(_text([short, long_, "owner bucket [99/Foo/2024:03:04:05 +0000] x y z w v u t"]),
              S3_KEY)
    a, b = out.rows
    assert a["TimeGenerated"] == "2024-01-02T03:04:05Z" and a["Key"] == "photos/a%20b.jpg"
    assert "ObjectSize" not in a and "BytesSent" not in a      # beyond the int column
    assert a["TotalTime"] == 70 and "HostId" not in a
    assert b["ACLRequired"] == "Yes" and b["TLSVersion"] == "TLSv1.3"
    assert [r.position for r in out.rejected] == [3]
    _fits(out, "AWSS3ServerAccess")


# ---- JSON lines formats ------------------------------------------------------------------------

def test_waf_record_without_timestamp_is_rejected_and_the_rest_kept() -> None:
    case = next(c for c in CASES if c.fmt == "waf")
    lines = plain(case.file).decode().splitlines()
    broken = json.loads(lines[1])
    broken.pop("timestamp")
    out = run(_text([lines[0], json.dumps(broken), lines[2]]), case.key)
    assert len(out.rows) == 2 and [r.position for r in out.rejected] == [2]


def test_network_firewall_flow_file_routes_other_event_types_to_their_tables() -> None:
    case = next(c for c in CASES if c.fmt == "network-firewall-flow")
    line = plain(case.file).decode().splitlines()[0]
    alert, tls = json.loads(line), json.loads(line)
    alert["event"]["event_type"] = "alert"
    tls["event"].pop("event_type")
    out = run(_text([line, json.dumps(alert), json.dumps(tls)]), case.key)
    assert len(out.rows) == 1 and out.skipped == [] and out.rejected == []
    assert [r.table for r in out.routed] == ["AWSNetworkFirewallAlert", "AWSNetworkFirewallTls"]
    assert out.routed[0].row["EventType"] == "alert" and "Sni" not in out.routed[0].row


def test_securityhub_empty_findings_skipped_and_bad_dates_dropped() -> None:
    case = next(c for c in CASES if c.id.startswith("securityhub/ASSEMBLED"))
    event = json.loads(plain(case.file))
    finding = event["detail"]["findings"][0]
    finding["CreatedAt"] = "not a date"
    empty = {**event, "detail": {"findings": []}}
    out = run((json.dumps(empty) + json.dumps(event)).encode(), case.key)
    assert [s.position for s in out.skipped] == [1]
    assert len(out.rows) == 1 and "AwsSecurityFindingCreatedAt" not in out.rows[0]
    _fits(out, "AWSSecurityHubFindings")


def test_asff_finding_from_guardduty_is_security_hub_not_guardduty() -> None:
    case = next(c for c in CASES if c.id.startswith("securityhub/asff_sample_control_finding_00"))
    finding = json.loads(plain(case.file))
    finding["ProductArn"] = "arn:aws:securityhub:us-east-1::product/aws/guardduty"
    finding["GeneratorId"] = "arn:aws:guardduty:us-east-1:123456789012:detector/d"
    assert formats.detect("x/finding.json", json.dumps(finding),
                          kind="securityhub").name == "securityhub"


# ---- CloudTrail ------------------------------------------------------------------------------

CT_KEY = ("AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/123456789012_CloudTrail_"
          "us-east-1_20240102T0305Z_abcdefABCDEF0123.json.gz")


def test_cloudtrail_truncated_file_is_a_format_error_after_the_good_records() -> None:
    record = {"eventVersion": "1.08", "eventTime": "2024-01-02T03:04:05Z",
              "eventSource": "s3.amazonaws.com", "eventName": "GetObject"}
    text = json.dumps({"Records": [record, record, record]})
    out = run(text[:-60].encode(), CT_KEY)
    assert isinstance(out.error, FormatError) and len(out.rows) == 2


def test_cloudtrail_record_without_time_is_rejected() -> None:
    text = json.dumps({"Records": [{"eventVersion": "1.08", "eventName": "X"},
                                   {"eventVersion": "1.08", "eventTime": "2024-01-02T03:04:05Z",
                                    "eventSource": "iam.amazonaws.com"}]})
    out = run(text.encode(), CT_KEY)
    assert [r.position for r in out.rejected] == [1] and len(out.rows) == 1


def test_s3_event_notification_is_not_mistaken_for_cloudtrail() -> None:
    case = next(c for c in CASES if "direct_s3_notification" in c.id)
    head = plain(case.file).decode()
    assert head.lstrip().startswith('{') and '"Records"' in head
    assert formats.detect("misc/body.json", head).name == "raw"


def test_cloudtrail_digest_is_not_ingested() -> None:
    case = next(c for c in CASES if c.fmt == "cloudtrail-digest")
    out = run(case.file.read_bytes(), case.key)
    assert out.fmt.table is None and out.rows == [] and len(out.skipped) == 1


def test_cloudtrail_security_group_rule_and_insight_columns() -> None:
    rule = {"eventVersion": "1.08", "eventTime": "2024-01-02T03:04:05Z",
            "eventSource": "ec2.amazonaws.com", "eventName": "AuthorizeSecurityGroupIngress",
            "requestParameters": {"groupId": "sg-1", "ipPermissions": {"items": [
                {"ipProtocol": "tcp", "fromPort": 22, "toPort": 23,
                 "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}}
    row = run(json.dumps({"Records": [rule]}).encode(), CT_KEY).rows[0]
    assert (row["IpProtocol"], row["SourcePort"], row["DestinationPort"], row["CidrIp"]) == \
        ("tcp", "22", "23", "0.0.0.0/0")
    insight = next(c for c in CASES if "docExample09" in c.id)
    row = run(insight.file.read_bytes(), insight.key).rows[0]
    assert row["EventName"] == "UpdateInstanceInformation"
    assert row["EventSource"] == "ssm.amazonaws.com"
    assert json.loads(row["AdditionalEventData"])["insightDetails"]["state"] == "Start"


# ---- detection rules -------------------------------------------------------------------------

def test_override_wins_over_the_key() -> None:
    head = VPC_HEADER + "\n"
    assert formats.detect(VPC_KEY, head, override="raw").name == "raw"
    with pytest.raises(FormatError, match="unknown format"):
        formats.detect(VPC_KEY, head, override="no-such-format")


def test_hive_style_vpc_key_is_recognised() -> None:
    key = ("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
           "year=2024/month=01/day=02/123456789012_vpcflowlogs_us-east-1_fl-0a_20240102T0305Z_"
           "ab.log.gz")
    assert formats.detect(key, VPC_HEADER + "\n").name == "vpcflow"
    assert formats.ObjectContext("s", "b", key).account_id == "123456789012"


def test_cloudfront_header_order_drives_the_columns() -> None:
    text = ("#Version: 1.0\n#Fields: time date c-ip x-edge-location sc-status cs-uri-stem\n"
            "21:02:31\t2019-12-04\t192.0.2.1\tLAX1\t200\t/index.html\n")
    out = run(text.encode(), "cf/E2EXAMPLE123.2019-12-04-21.abcd1234.gz")
    assert out.rows[0]["TimeGenerated"] == "2019-12-04T21:02:31Z"
    assert (out.rows[0]["CIp"], out.rows[0]["XEdgeLocation"]) == ("192.0.2.1", "LAX1")
    _fits(out, "AWSCloudFront_AccessLog_CL")


# ---- raw fallback ----------------------------------------------------------------------------

def test_raw_csv_with_header_puts_fields_by_name() -> None:
    out = run(b"time,user,action\n2024-01-02T03:04:05Z,alice,login\n,bob,\"a,b\"\n",
              "exports/report.csv")
    assert out.fmt.name == "raw"
    assert out.rows[0]["Fields"] == {"time": "2024-01-02T03:04:05Z", "user": "alice",
                                     "action": "login"}
    assert out.rows[0]["TimeGenerated"] == "2024-01-02T03:04:05Z"
    assert out.rows[1]["Fields"]["action"] == "a,b"
    assert out.rows[1]["TimeGenerated"] == "2024-01-01T00:00:00Z"   # the S3 event time
    assert {r["Format"] for r in out.rows} == {"csv"}
    _fits(out, "AWSS3Raw_CL")


def test_raw_pretty_json_document_is_one_row_and_text_is_one_row_per_line() -> None:
    doc = json.dumps({"time": "2024-01-02T03:04:05Z", "a": {"b": [1, 2]}}, indent=2).encode()
    out = run(doc, "misc/AWSLogs/123456789012/thing/us-west-2/doc.json")
    assert len(out.rows) == 1 and out.rows[0]["Fields"]["a"] == {"b": [1, 2]}
    assert out.rows[0]["AccountId"] == "123456789012" and out.rows[0]["Region"] == "us-west-2"
    out = run(b"line one\n\nline two\n", "misc/notes.txt")
    assert [(r["LineNumber"], r["RawData"]) for r in out.rows] == [(1, "line one"),
                                                                    (3, "line two")]
    _fits(out, "AWSS3Raw_CL")


def test_raw_record_without_any_time_is_rejected_not_sent_without_time() -> None:
    out = run(b"just text\n", "misc/notes.txt", event_time=None)
    assert out.rows == [] and "no time" in out.rejected[0].reason


@pytest.mark.parametrize("fmt", [f.name for f in formats.FORMATS])
def test_an_empty_object_gives_no_records_and_no_error(fmt: str) -> None:
    case = next((c for c in CASES if c.fmt == fmt), None)
    key = case.key if case else "misc/empty.txt"
    keyed = formats.get(fmt).key_pattern is not None
    assert formats.detect(key, "").name == (fmt if keyed else "raw")
    for data in (b"", gzip.compress(b""), b"\n\n"):
        out = run(data, key, override=fmt)
        assert out.error is None and out.rows == [] and out.rejected == []


def test_wants_bytes_only_for_parquet_content() -> None:
    vpc, waf = formats.get("vpcflow"), formats.get("waf")
    assert formats.wants_bytes(vpc, "PAR1\x00") and not formats.wants_bytes(vpc, VPC_HEADER)
    assert not formats.wants_bytes(waf, "PAR1\x00")
