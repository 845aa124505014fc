"""CloudTrail log files ``{"Records":[...]}`` -> AWSCloudTrail; digest files are skipped.

Column mapping follows the AWSCloudTrail table reference: nested request/response objects are
serialised as JSON text (those columns are ``string`` in the table), identity fields are
flattened, ``TimeGenerated`` is ``eventTime``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from .base import (
    CACHE_KEY_MAX,
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
    if value is True or value is False or value is None:
        return value
    if value == "true" or value == "false":  # what AWS writes (mfaAuthenticated)
        return value == "true"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


_fromiso = datetime.fromisoformat
_dumps = orjson.dumps


def _params_json(value: Any) -> str:
    """``compact_json(value)``; an object of text values only (S3 data events:
    bucketName, key, Host) by orjson straight away: it writes text as json does (the
    exceptions, lone surrogates, raise TypeError and go to compact_json)."""
    if value.__class__ is dict:
        for v in value.values():
            if v.__class__ is not str:
                return compact_json(value)
        try:
            return _dumps(value).decode()
        except TypeError:
            pass
    return compact_json(value)


_EMPTY: dict[str, Any] = {}  # read only: what a missing nested object reads as
# eventTime -> TimeGenerated for the times not in the usual shape (below), seen recently.
# Bounded (entries and key length); a plain dict is safe to share between the worker's threads
_STAMPS: dict[str, str] = {}
_STAMPS_MAX = 8192


def _stamp(value: Any) -> str:
    """``iso_from_text(eventTime)``, remembered (its ValueError/TypeError reject the record)."""
    stamp = iso_from_text(value)
    if len(value) <= CACHE_KEY_MAX:
        if len(_STAMPS) >= _STAMPS_MAX:
            _STAMPS.clear()
        _STAMPS[value] = stamp
    return stamp


def map_event(ev: dict[str, Any]) -> dict[str, Any]:
    """One CloudTrail event -> its AWSCloudTrail row (columns without a value are left out).

    The hot loop of the biggest log type, so written column by column: each value is read
    once and put in the row only when it is not None (no row of 45 Nones filtered afterwards,
    no helper call where a column is a straight copy). The columns come in the table's order:
    TimeGenerated ... ClientProvidedHostHeader, EC2RoleDelivery, then the security-group rule
    columns; ``tests/test_cloudtrail_mapper.py`` holds it to the plain mapping it replaced
    (the same rows, key order included, on the fixtures and on thousands of odd events).
    """
    get = ev.get
    ui = get("userIdentity") or _EMPTY
    uget = ui.get
    ctx = uget("sessionContext") or _EMPTY
    issuer = ctx.get("sessionIssuer") or _EMPTY
    attrs = ctx.get("attributes") or _EMPTY
    tls = get("tlsDetails") or _EMPTY
    created = attrs.get("creationDate")
    # Insights events name the API they are about in insightDetails; the table has no insight
    # columns, so the details go where additional data goes rather than being lost
    insight = get("insightDetails")
    if insight is not None and insight.__class__ is not dict and not isinstance(insight, dict):
        insight = None

    # eventTime as CloudTrail writes it, YYYY-MM-DDTHH:MM:SSZ, is its own TimeGenerated once
    # its punctuation is in place and fromisoformat (ASCII digits only, a real date and time)
    # accepts it: iso_from_text's first branch, without a call or a cache (each second of a
    # file would be a new entry). Anything else, a failure included, goes the full way.
    t = ev["eventTime"]
    stamp = None
    if t.__class__ is str:
        if len(t) == 20 and t[4::3] == "--T::Z":
            try:
                _fromiso(t)
                stamp = t
            except ValueError:
                pass
        else:
            stamp = _STAMPS.get(t)
    row: dict[str, Any] = {"TimeGenerated": stamp or _stamp(t),
                           "OperationName": "CloudTrail"}  # the table's documented constant
    if (v := get("eventVersion")) is not None:
        row["EventVersion"] = v
    if (v := uget("type")) is not None:
        row["UserIdentityType"] = v
    if (v := uget("principalId")) is not None:
        row["UserIdentityPrincipalid"] = v
    if (v := uget("arn")) is not None:
        row["UserIdentityArn"] = v
    if (v := uget("accountId")) is not None:
        row["UserIdentityAccountId"] = v
    if (v := uget("accessKeyId")) is not None:
        row["UserIdentityAccessKeyId"] = v
    if (v := uget("userName")) is not None:
        row["UserIdentityUserName"] = v
    if (v := uget("invokedBy")) is not None:
        row["UserIdentityInvokedBy"] = v
    if (v := attrs.get("mfaAuthenticated")) is not None:  # _bool, its usual answers inline
        if v == "true" or v is True:
            row["SessionMfaAuthenticated"] = True
        elif v == "false" or v is False:
            row["SessionMfaAuthenticated"] = False
        elif (v := _bool(v)) is not None:
            row["SessionMfaAuthenticated"] = v
    if created is not None:  # the same fast path as eventTime's (when() on anything else)
        if created.__class__ is str and len(created) == 20 and created[4::3] == "--T::Z":
            try:
                _fromiso(created)
                row["SessionCreationDate"] = created
            except ValueError:
                if (v := when(created)) is not None:
                    row["SessionCreationDate"] = v
        elif (v := when(created)) is not None:
            row["SessionCreationDate"] = v
    if issuer:
        iget = issuer.get
        if (v := iget("type")) is not None:
            row["SessionIssuerType"] = v
        if (v := iget("principalId")) is not None:
            row["SessionIssuerPrincipalId"] = v
        if (v := iget("arn")) is not None:
            row["SessionIssuerArn"] = v
        if (v := iget("accountId")) is not None:
            row["SessionIssuerAccountId"] = v
        if (v := iget("userName")) is not None:
            row["SessionIssuerUserName"] = v
    v = get("eventSource")
    if insight is not None:
        v = v or insight.get("eventSource")
    if v is not None:
        row["EventSource"] = v
    v = get("eventName")
    if insight is not None:
        v = v or insight.get("eventName")
    if v is not None:
        row["EventName"] = v
    if (v := get("awsRegion")) is not None:
        row["AWSRegion"] = v
    if (v := get("sourceIPAddress")) is not None:
        row["SourceIpAddress"] = v
    if (v := get("userAgent")) is not None:
        row["UserAgent"] = v
    if (v := get("errorCode")) is not None:
        row["ErrorCode"] = v
    if (v := get("errorMessage")) is not None:
        row["ErrorMessage"] = v
    params = get("requestParameters")
    if params is not None:
        row["RequestParameters"] = params if isinstance(params, str) else _params_json(params)
    if (v := get("responseElements")) is not None:
        row["ResponseElements"] = v if isinstance(v, str) else compact_json(v)
    v = get("additionalEventData")
    if v is None and insight is not None:
        v = {"insightDetails": insight}
    if v is not None:
        row["AdditionalEventData"] = v if isinstance(v, str) else compact_json(v)
    if (v := get("requestID")) is not None:
        row["AwsRequestId_"] = v
    if (v := get("eventID")) is not None:
        row["AwsEventId"] = v
    if (v := get("eventType")) is not None:
        row["EventTypeName"] = v
    if (v := get("apiVersion")) is not None:
        row["APIVersion"] = v
    if (v := get("readOnly")) is True or v is False:  # _bool's usual answer inline
        row["ReadOnly"] = v
    elif v is not None and (v := _bool(v)) is not None:
        row["ReadOnly"] = v
    if (v := get("resources")) is not None:
        row["Resources"] = v if isinstance(v, str) else compact_json(v)
    if (v := get("recipientAccountId")) is not None:
        row["RecipientAccountId"] = v
    if (v := get("serviceEventDetails")) is not None:
        row["ServiceEventDetails"] = v if isinstance(v, str) else compact_json(v)
    if (v := get("sharedEventID")) is not None:
        row["SharedEventId"] = v
    if (v := get("vpcEndpointId")) is not None:
        row["VpcEndpointId"] = v
    if (v := get("managementEvent")) is True or v is False:
        row["ManagementEvent"] = v
    elif v is not None and (v := _bool(v)) is not None:
        row["ManagementEvent"] = v
    if (v := get("eventCategory")) is not None:
        row["Category"] = v
    if tls:
        tget = tls.get
        if (v := tget("tlsVersion")) is not None:
            row["TlsVersion"] = v
        if (v := tget("cipherSuite")) is not None:
            row["CipherSuite"] = v
        if (v := tget("clientProvidedHostHeader")) is not None:
            row["ClientProvidedHostHeader"] = v
    # IMDS version of instance-profile credentials: userIdentity.sessionContext.ec2RoleDelivery
    if (v := ctx.get("ec2RoleDelivery")) is not None:
        row["EC2RoleDelivery"] = v if isinstance(v, str) else compact_json(v)
    if (params.__class__ is dict or isinstance(params, dict)) and "ipPermissions" in params:
        row.update(_ip_permission(params))
    return row


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
            if ev.__class__ is not dict:  # (the usual case passes one test)
                if isinstance(ev, JsonGarbage):  # too deep to decode: this record alone
                    yield Rejected(i, f"CloudTrail record {ev.reason}", ev.raw)
                    continue
                if not isinstance(ev, dict):
                    yield Rejected(i, "CloudTrail record is not a JSON object",
                                   _text(ev) or "")
                    continue
            try:
                yield map_event(ev)
            # AttributeError: a part the mapper reads into is not an object (userIdentity: "x")
            except (KeyError, ValueError, TypeError, AttributeError) as err:
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
