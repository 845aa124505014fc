"""CloudTrail log files ``{"Records":[...]}`` -> AWSCloudTrail; digest files are skipped.

Column mapping follows the AWSCloudTrail table reference: nested request/response objects are
serialised as JSON text (those columns are ``string`` in the table), identity fields are
flattened, ``TimeGenerated`` is ``eventTime``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    Skipped,
    compact_json,
    iso_from_text,
    when,
)

KEY = re.compile(r"(^|/)\d{12}_CloudTrail_[a-z0-9-]+_\d{8}T\d{4}Z_[A-Za-z0-9]+\.json(\.gz)?$"
                 r"|/CloudTrail/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/")
DIGEST_KEY = re.compile(r"(^|/)CloudTrail-Digest/|_CloudTrail-Digest_")
_RECORDS = re.compile(r'^\s*\{\s*"Records"\s*:\s*\[')
# S3 event notifications (and other Lambda-style events) also start with {"Records":[ but
# their records name the source as "aws:<service>"; CloudTrail's are "<service>.amazonaws.com"
_NOTIFICATION = re.compile(r'"eventSource"\s*:\s*"aws:')


def sniff(head: str) -> bool:
    return bool(_RECORDS.match(head)) and not _NOTIFICATION.search(head)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return compact_json(value)


def _bool(value: Any) -> bool | None:
    if value is True or value is False:
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def map_event(ev: dict[str, Any]) -> dict[str, Any]:
    get = ev.get
    ui = get("userIdentity") or {}
    ctx = ui.get("sessionContext") or {}
    issuer = ctx.get("sessionIssuer") or {}
    attrs = ctx.get("attributes") or {}
    tls = get("tlsDetails") or {}
    add = get("additionalEventData")
    created = attrs.get("creationDate")
    row: dict[str, Any] = {
        "TimeGenerated": iso_from_text(ev["eventTime"]),
        "OperationName": "CloudTrail",  # the table documents it as this constant
        "EventVersion": get("eventVersion"),
        "UserIdentityType": ui.get("type"),
        "UserIdentityPrincipalid": ui.get("principalId"),
        "UserIdentityArn": ui.get("arn"),
        "UserIdentityAccountId": ui.get("accountId"),
        "UserIdentityAccessKeyId": ui.get("accessKeyId"),
        "UserIdentityUserName": ui.get("userName"),
        "UserIdentityInvokedBy": ui.get("invokedBy"),
        "SessionMfaAuthenticated": _bool(attrs.get("mfaAuthenticated")),
        "SessionCreationDate": when(created),
        "SessionIssuerType": issuer.get("type"),
        "SessionIssuerPrincipalId": issuer.get("principalId"),
        "SessionIssuerArn": issuer.get("arn"),
        "SessionIssuerAccountId": issuer.get("accountId"),
        "SessionIssuerUserName": issuer.get("userName"),
        "EventSource": get("eventSource"),
        "EventName": get("eventName"),
        "AWSRegion": get("awsRegion"),
        "SourceIpAddress": get("sourceIPAddress"),
        "UserAgent": get("userAgent"),
        "ErrorCode": get("errorCode"),
        "ErrorMessage": get("errorMessage"),
        "RequestParameters": _text(get("requestParameters")),
        "ResponseElements": _text(get("responseElements")),
        "AdditionalEventData": _text(add),
        "AwsRequestId_": get("requestID"),
        "AwsEventId": get("eventID"),
        "EventTypeName": get("eventType"),
        "APIVersion": get("apiVersion"),
        "ReadOnly": _bool(get("readOnly")),
        "Resources": _text(get("resources")),
        "RecipientAccountId": get("recipientAccountId"),
        "ServiceEventDetails": _text(get("serviceEventDetails")),
        "SharedEventId": get("sharedEventID"),
        "VpcEndpointId": get("vpcEndpointId"),
        "ManagementEvent": _bool(get("managementEvent")),
        "Category": get("eventCategory"),
        "TlsVersion": tls.get("tlsVersion"),
        "CipherSuite": tls.get("cipherSuite"),
        "ClientProvidedHostHeader": tls.get("clientProvidedHostHeader"),
    }
    # IMDS version of instance-profile credentials: userIdentity.sessionContext.ec2RoleDelivery
    row["EC2RoleDelivery"] = _text(ctx.get("ec2RoleDelivery"))
    # Insights events name the API they are about in insightDetails; the table has no insight
    # columns, so the details go where additional data goes rather than being lost
    insight = get("insightDetails")
    if isinstance(insight, dict):
        row["EventSource"] = row["EventSource"] or insight.get("eventSource")
        row["EventName"] = row["EventName"] or insight.get("eventName")
        if row["AdditionalEventData"] is None:
            row["AdditionalEventData"] = _text({"insightDetails": insight})
    row.update(_ip_permission(get("requestParameters")))
    return {k: v for k, v in row.items() if v is not None}


def _ip_permission(params: Any) -> dict[str, Any]:
    """CidrIp / IpProtocol / SourcePort / DestinationPort: the first security-group rule of
    ``requestParameters.ipPermissions`` (Authorize/RevokeSecurityGroup* calls), as the table
    documents them (from port = SourcePort, to port = DestinationPort)."""
    if not isinstance(params, dict):
        return {}
    perms = params.get("ipPermissions")
    items = perms.get("items") if isinstance(perms, dict) else perms
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        return {}
    first = items[0]
    ranges = first.get("ipRanges")
    ranges = ranges.get("items") if isinstance(ranges, dict) else ranges
    cidr = ranges[0].get("cidrIp") if isinstance(ranges, list) and ranges and \
        isinstance(ranges[0], dict) else None
    return {k: v for k, v in {
        "IpProtocol": _text(first.get("ipProtocol")),
        "SourcePort": _text(first.get("fromPort")),
        "DestinationPort": _text(first.get("toPort")),
        "CidrIp": _text(cidr),
    }.items() if v is not None}


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not sniff(text.head):
        raise FormatError('CloudTrail file must be a JSON object starting with {"Records":[ '
                          "holding CloudTrail events (S3 event notifications are not)")
    try:
        for i, ev in enumerate(text.json_array_items("Records"), start=1):
            if isinstance(ev, JsonGarbage):  # too deep to decode: this record alone
                yield Rejected(i, f"CloudTrail record {ev.reason}", ev.raw)
                continue
            if not isinstance(ev, dict):
                yield Rejected(i, "CloudTrail record is not a JSON object", _text(ev) or "")
                continue
            try:
                yield map_event(ev)
            except (KeyError, ValueError, TypeError) as err:
                yield Rejected(i, f"CloudTrail record unusable: {err!r}", _text(ev) or "")
    except ValueError as err:
        raise FormatError(f"CloudTrail file is not valid JSON: {err}") from err


def _parse_digest(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    yield Skipped(1, "CloudTrail digest file (integrity proof of log files, not events)")


CLOUDTRAIL = Format(
    name="cloudtrail", table="AWSCloudTrail", parse=parse, key_pattern=KEY,
    sniff=sniff,
    description="CloudTrail log files (management, data and Insights events)")

CLOUDTRAIL_DIGEST = Format(
    name="cloudtrail-digest", table=None, parse=_parse_digest, key_pattern=DIGEST_KEY,
    sniff=lambda head: '"digestStartTime"' in head or '"logFiles"' in head,
    content_detectable=False,
    description="CloudTrail digest files (integrity proofs, not events): skipped and counted")
