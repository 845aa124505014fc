"""CloudTrail (and VPC Flow, GuardDuty) however AWS or a pipeline delivers them, and the
provenance rule for the security-sensitive tables.

GIVEN AWS's CloudTrail log file examples and the same events as JSON lines, in EventBridge
envelopes and in CloudWatch Logs subscription payloads (tests/golden/make_envelope_fixtures.py)
WHEN each is read
THEN every event gives the same AWSCloudTrail row, column by column, as in its log file; and
content alone (a key outside AWS's layout, no declared prefix) never becomes such rows.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest
from golden.support import CASES, LOCAL, run

from shared.config import load_settings
from shared.errors import ConfigError, UndeclaredKindError
from shared.formats.provenance import kind_of

CT_FILES = [c for c in CASES if c.fmt == "cloudtrail" and not c.error]
ENVELOPES = {"cloudtrail_events.jsonl": "cloudtrail-events",
             "cloudtrail_eventbridge.json": "cloudtrail-events",
             "cloudwatch_cloudtrail.json": "cloudwatch-cloudtrail"}
DECLARED = "firehose/cloudtrail/2025/07/28/02/stream-1-2025-07-28-02-12-33-x"


def log_file_rows() -> list[dict]:
    """The rows of every event of the CloudTrail log file examples, in the fixture order."""
    rows = []
    for case in sorted(CT_FILES, key=lambda c: c.file.name):
        rows += run(case.file.read_bytes(), case.key).rows
    return rows


@pytest.mark.parametrize("name", sorted(ENVELOPES))
def test_each_envelope_gives_the_log_file_rows_column_by_column(name: str) -> None:
    expected = log_file_rows()
    out = run((LOCAL / name).read_bytes(), DECLARED, kind="cloudtrail")
    assert out.fmt.name == ENVELOPES[name] and out.fmt.table == "AWSCloudTrail"
    assert out.rejected == [] and out.error is None
    assert len(out.rows) == len(expected) == 8
    for got, want in zip(out.rows, expected):
        assert got == want  # same columns, same values, nothing more, nothing less


def test_console_sign_in_and_service_event_detail_types_are_unwrapped() -> None:
    events = [json.loads(line) for line in (LOCAL / "cloudtrail_events.jsonl").open()]
    body = "".join(json.dumps({"detail-type": t, "source": "aws.signin", "detail": events[0]})
                   for t in ("AWS Console Sign In via CloudTrail",
                             "AWS Console Signin via CloudTrail",
                             "AWS Service Event via CloudTrail",
                             "AWS Console Action via CloudTrail"))
    out = run(body.encode(), DECLARED, kind="cloudtrail")
    assert [r["AwsEventId"] for r in out.rows] == [events[0]["eventID"]] * 4


def test_other_events_inside_a_cloudtrail_envelope_are_rejected_one_by_one() -> None:
    events = [json.loads(line) for line in (LOCAL / "cloudtrail_events.jsonl").open()]
    body = "\n".join([json.dumps(events[0]),
                      json.dumps({"detail-type": "GuardDuty Finding", "detail": {"id": "x"}}),
                      "{not json", json.dumps(events[1])])
    out = run(body.encode(), DECLARED, kind="cloudtrail")
    assert len(out.rows) == 2 and [r.position for r in out.rejected] == [2, 3]
    # the EventBridge GuardDuty event is read as one (eventbridge.route): this one has no time
    assert "GuardDuty finding has no valid updatedAt" in out.rejected[0].reason
    assert "not JSON" in out.rejected[1].reason


def test_a_cloudwatch_payload_of_a_trail_with_a_foreign_log_event_rejects_only_that_one() -> None:
    doc = json.loads((LOCAL / "cloudwatch_cloudtrail.json").read_text())
    doc["logEvents"].insert(2, {"id": "1", "timestamp": 1, "message": "START RequestId: x"})
    out = run(gzip.compress(json.dumps(doc).encode()), DECLARED, kind="cloudtrail")
    assert out.fmt.name == "cloudwatch-cloudtrail" and len(out.rows) == 8
    [rej] = out.rejected
    assert rej.position == 3 and "is not a CloudTrail event" in rej.reason


def test_vpc_flow_records_in_cloudwatch_logs_give_the_flow_log_file_rows() -> None:
    flow_file = next(c for c in CASES if c.id.endswith("docv2default.log"))
    expected = run(flow_file.file.read_bytes(), flow_file.key).rows
    out = run((LOCAL / "cloudwatch_vpcflow.json").read_bytes(),
              "firehose/flows/2025/07/28/02/x")  # not sensitive: content decides
    assert out.fmt.name == "cloudwatch-vpcflow" and out.rows == expected


@pytest.mark.parametrize("body, other, routed", [
    ((LOCAL / "cloudtrail_events.jsonl").read_bytes(), "guardduty", "AWSCloudTrail"),
    ((LOCAL / "cloudwatch_cloudtrail.json").read_bytes(), "securityhub", "AWSCloudTrail"),
    (next(c for c in CASES if c.fmt == "cloudtrail").file.read_bytes(), "guardduty", None),
    ((LOCAL / "guardduty_findings_from_expected.jsonl").read_bytes(), "cloudtrail",
     "AWSGuardDuty"),
    (next(c for c in CASES if c.fmt == "securityhub").file.read_bytes(), "cloudtrail",
     "AWSSecurityHubFindings"),
], ids=["jsonl", "cloudwatch", "records-file", "guardduty", "securityhub"])
def test_content_alone_never_makes_sensitive_rows(body: bytes, other: str,
                                                  routed: str | None) -> None:
    key = "uploads/team-a/2025/01/01/object.json"
    if other == "securityhub":  # a CloudWatch Logs payload: the object is read as plain
        # CloudWatch Logs data; every CloudTrail record is routed, to be refused per record
        for kind in (None, other):
            out = run(body, key, kind=kind)
            assert out.fmt.name == "cloudwatch" and out.rows == []
            assert {r.table for r in out.routed} == {routed} and out.routed
        return
    # GIVEN a key outside AWS's layout, no declaration
    with pytest.raises(UndeclaredKindError, match=r'"kinds": \{"uploads/team-a/": "'):
        run(body, key)
    if routed is None:  # not an envelope of several kinds: a prefix declared for another
        # kind does not vouch for it either
        with pytest.raises(UndeclaredKindError, match="declared as"):
            run(body, key, kind=other)
        return
    # an EventBridge-style stream on a prefix declared for another kind: the declared kind's
    # parser reads it, and every record of this kind is routed to its table, where the
    # pipeline refuses it per record with the setting to add (provenance.undeclared_records)
    out = run(body, key, kind=other)
    assert kind_of(out.fmt) == other and out.rows == [] and out.error is None
    assert {r.table for r in out.routed} == {routed} and out.routed


def _settings(kinds) -> object:
    source = {"name": "s", "queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
              "region": "us-east-1", "accessKeyIdSecret": "a", "secretAccessKeySecret": "b",
              "buckets": {"logs": [""]}, "kinds": kinds}
    return load_settings({"AWS_SOURCES": json.dumps([source]),
                          "LOGS_INGESTION_ENDPOINT": "https://x", "DCR_IMMUTABLE_ID": "dcr-1",
                          "KEY_VAULT_URL": "https://v", "AzureWebJobsStorage": "x"})


def test_kinds_setting_longest_prefix_wins() -> None:
    s = _settings({"firehose/": "securityhub", "firehose/ct/": "cloudtrail"}).sources[0]
    assert s.kind_for("firehose/ct/2025/x") == "cloudtrail"
    assert s.kind_for("firehose/sh/2025/x") == "securityhub"
    assert s.kind_for("other/x") is None


@pytest.mark.parametrize("kinds, problem", [
    (["firehose/"], "kinds must map key prefix -> kind"),
    ({"firehose/": "cloudtrial"}, "kinds['firehose/'] is 'cloudtrial'; expected one of "
                                  "cloudtrail, guardduty, securityhub"),
])
def test_bad_kinds_are_reported_by_source_name(kinds, problem) -> None:
    with pytest.raises(ConfigError) as err:
        _settings(kinds)
    assert any(p.startswith("AWS_SOURCES[0] (s)") and problem in p for p in err.value.problems)


# ---- end to end: moto S3 -> SQS -> functions -> Logs Ingestion emulator ---------------------

CT, VPC, GD, HEALTH = ("Custom-AWSCloudTrail", "Custom-AWSVPCFlow", "Custom-AWSGuardDuty",
                       "Custom-AWSS3ConnectorHealth")


def test_e2e_cloudtrail_from_every_envelope_lands_identical_and_forgeries_are_dead_lettered(
        world):
    # GIVEN a source declaring its Firehose prefixes, and objects in every envelope
    src = world.add_source("env", kinds={"firehose/cloudtrail/": "cloudtrail",
                                         "firehose/guardduty/": "guardduty"})
    for case in CT_FILES:  # the reference: AWS's log files under AWS's key layout
        world.put(src, case.key, case.file.read_bytes())
    for i, name in enumerate(sorted(ENVELOPES)):
        world.put(src, f"firehose/cloudtrail/2025/07/28/02/ct-{i}", (LOCAL / name).read_bytes(),
                  gz=True)
    world.put(src, "firehose/flows/2025/07/28/02/f-1",
              (LOCAL / "cloudwatch_vpcflow.json").read_bytes(), gz=True)
    finding = json.loads((LOCAL / "guardduty_findings_from_expected.jsonl").open().readline())
    world.put(src, "firehose/guardduty/2025/07/28/02/gd-1",
              json.dumps({"detail-type": "GuardDuty Finding", "source": "aws.guardduty",
                          "detail": finding}).encode())
    # ... and the same content where nobody declared it (anyone with write access could)
    world.put(src, "uploads/2025/07/28/forged.jsonl",
              (LOCAL / "cloudtrail_events.jsonl").read_bytes())
    world.put(src, "uploads/2025/07/28/forged-records.json", CT_FILES[0].file.read_bytes())
    # WHEN the functions run
    world.configure()
    host = world.host()
    host.run_timer()
    result = host.drain()
    # THEN each event is in AWSCloudTrail four times (log file + 3 envelopes), identical
    copies = Counter(json.dumps(r, sort_keys=True) for r in world.accepted(CT))
    assert len(copies) == 8 and set(copies.values()) == {4}
    assert len(world.accepted(VPC)) == 7 and len(world.accepted(GD)) == 1
    assert world.accepted(GD)[0]["Id"] == finding["id"]
    # the forgeries are dead-lettered, each with the setting that would declare its prefix
    items = sorted(host.poison_items(), key=lambda i: i["object"]["key"])
    assert [i["object"]["key"] for i in items] == ["uploads/2025/07/28/forged-records.json",
                                                  "uploads/2025/07/28/forged.jsonl"]
    for item in items:
        assert item["kind"] == "undeclared_kind" and item["stage"] == "parse"
        assert '"kinds": {"uploads/": "cloudtrail"}' in item["reason"]
    outcomes = Counter(r["Outcome"] for r in world.accepted(HEALTH) if r["Kind"] == "object")
    assert outcomes == Counter({"delivered": len(CT_FILES) + 5, "dead_lettered": 2})
    assert result.failed == 0


def test_guardduty_findings_in_eventbridge_envelopes_give_the_export_rows() -> None:
    case = next(c for c in CASES if c.fmt == "guardduty")
    expected = run(case.file.read_bytes(), case.key).rows
    findings = [json.loads(line) for line in case.file.open()]
    body = "".join(json.dumps({"version": "0", "detail-type": "GuardDuty Finding",
                               "source": "aws.guardduty", "time": f["updatedAt"],
                               "detail": f}) for f in findings)
    out = run(body.encode(), "firehose/guardduty/2025/07/28/02/gd-1", kind="guardduty")
    assert out.fmt.name == "guardduty" and out.rows == expected and len(expected) == 10
