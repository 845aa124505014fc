"""Fidelity review of the format mappers: each test pins one defect found against the AWS log
documentation and the Sentinel table reference (copied into tests/reference)."""
from __future__ import annotations

from typing import Any

from shared.formats import cloudtrail
from shared.schemas import violations


def _ct(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:i-0123456789abcdef0",
            "arn": "arn:aws:sts::123456789012:assumed-role/web-role/i-0123456789abcdef0",
            "accountId": "123456789012",
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                  "arn": "arn:aws:iam::123456789012:role/web-role",
                                  "accountId": "123456789012", "userName": "web-role"},
                "webIdFederationData": {},
                "attributes": {"creationDate": "2024-03-13T13:08:12Z",
                               "mfaAuthenticated": "false"},
                "ec2RoleDelivery": "2.0",
            },
        },
        "eventTime": "2024-03-13T14:12:16Z",
        "eventSource": "sts.amazonaws.com",
        "eventName": "GetCallerIdentity",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "5f4b1c5e-0000-4000-8000-000000000001",
        "eventID": "5f4b1c5e-0000-4000-8000-000000000002",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }
    ev.update(over)
    return ev


def test_cloudtrail_ec2_role_delivery_comes_from_the_session_context() -> None:
    # AWS writes ec2RoleDelivery ("1.0" = IMDSv1, "2.0" = IMDSv2) as a child of
    # userIdentity.sessionContext, not in additionalEventData: IMDSv1 credential-theft hunting
    # on EC2RoleDelivery found nothing
    row = cloudtrail.map_event(_ct())
    assert row["EC2RoleDelivery"] == "2.0"
    assert violations("AWSCloudTrail", row) == []


def test_cloudtrail_operation_name_is_the_documented_constant() -> None:
    # AWSCloudTrail reference: OperationName "Constant value: CloudTrail."
    row = cloudtrail.map_event(_ct())
    assert row["OperationName"] == "CloudTrail"


def test_cloudtrail_bad_session_creation_date_does_not_lose_the_event() -> None:
    # a secondary field that is not a valid time must not reject the whole API call
    ev = _ct()
    ev["userIdentity"]["sessionContext"]["attributes"]["creationDate"] = "not a date"
    row = cloudtrail.map_event(ev)
    assert row["EventName"] == "GetCallerIdentity"
    assert "SessionCreationDate" not in row


def test_securityhubs_bare_finding_fast_path_gives_what_the_general_path_gives() -> None:
    # parse maps a bare ASFF finding without eventbridge.other_kind and value_items: wherever
    # bare_finding says yes, those two must give exactly that one row (or rejection)
    import itertools
    import json

    from conftest import FIXTURES

    from shared.formats import eventbridge, securityhub

    finding = json.loads((FIXTURES / "securityhub" /
                          "asff_sample_control_finding_00__awsdocs.json").read_text())
    if isinstance(finding.get("Findings"), list):
        finding = finding["Findings"][0]
    extras = [{}, {"detail": {"findings": [finding]}}, {"detail-type": "GuardDuty Finding"},
              {"detail-type": "Security Hub Findings - Imported"},
              {"eventVersion": "1.08", "eventTime": "2024-01-01T00:00:00Z",
               "eventSource": "s3.amazonaws.com"},
              {"eventVersion": "1.08"}, {"Findings": [finding]}, {"findings": []},
              {"Findings": "not a list"}, {"schemaVersion": "2.0", "accountId": "1", "id": "x"},
              {"UpdatedAt": "not a time", "CreatedAt": None}]
    drops = [(), ("SchemaVersion",), ("Id",), ("UpdatedAt", "CreatedAt")]
    taken = 0
    for extra, drop in itertools.product(extras, drops):
        value = {k: v for k, v in {**finding, **extra}.items() if k not in drop}
        if not securityhub.bare_finding(value):
            continue
        taken += 1
        assert eventbridge.other_kind(value, "securityhub") is None, value.keys()
        general = list(securityhub.value_items(value, 0))
        fast = securityhub.finding_item(1, value, None)
        assert len(general) == 1 and repr(general[0]) == repr(fast), value.keys()
    assert taken >= 6  # the fast path was exercised, with and without a valid time
    assert not securityhub.bare_finding([finding]) and not securityhub.bare_finding("x")
