"""The column-by-column CloudTrail mapper gives the rows of the plain mapping it replaced.

``cloudtrail.map_event`` is written for speed (each value read once, put in the row only when
it is not None). ``reference_map_event`` below is the mapping as it was first written (a dict
of all 45 columns, then the Nones dropped), kept verbatim as the specification: on every
CloudTrail fixture and on thousands of randomly altered events both give the same row, key
order included (the same request bodies byte for byte), or fail with the same error.
"""
from __future__ import annotations

import copy
import gzip
import json
import random
from typing import Any

import pytest
import sample_logs
from golden.support import CASES, plain

from shared.formats import base, cloudtrail
from shared.formats.base import compact_json, iso_from_text, when


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


def reference_map_event(ev: dict[str, Any]) -> dict[str, Any]:
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
        "OperationName": "CloudTrail",
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
    row["EC2RoleDelivery"] = _text(ctx.get("ec2RoleDelivery"))
    insight = get("insightDetails")
    if isinstance(insight, dict):
        row["EventSource"] = row["EventSource"] or insight.get("eventSource")
        row["EventName"] = row["EventName"] or insight.get("eventName")
        if row["AdditionalEventData"] is None:
            row["AdditionalEventData"] = _text({"insightDetails": insight})
    row.update(cloudtrail._ip_permission(get("requestParameters")))
    return {k: v for k, v in row.items() if v is not None}


def _outcome(fn: Any, ev: Any) -> Any:
    try:
        return ("row", list(fn(copy.deepcopy(ev)).items()))
    except Exception as err:  # noqa: BLE001 - the same failure is part of the contract
        return ("error", repr(err))


def _fixture_events() -> list[dict[str, Any]]:
    events = []
    for case in CASES:
        if case.fmt != "cloudtrail" or case.error:
            continue
        doc = json.loads(plain(case.file))
        events += [e for e in doc.get("Records", []) if isinstance(e, dict)]
    _, data, _ = sample_logs.cloudtrail(3)  # the benchmark's shape
    return events + json.loads(gzip.decompress(data))["Records"]


EVENTS = _fixture_events()
# values a field may hold in hostile or unusual input
ODD = [None, "", "-", "true", "FALSE", "True", True, False, 0, 1, 1.5, 1e-7, float("nan"),
       [], {}, [1, None], {"a": None}, {"k": [1, 2.0]}, "2024-01-02T03:04:05Z",
       "2024-01-02T03:04:05.123+02:00", "2024-13-01T00:00:00Z", "not a date", 2**70,
       "\u00e9\u4e2d", {"items": [{"ipProtocol": "tcp", "fromPort": 22}]}]
PATHS = [("eventTime",), ("eventVersion",), ("eventSource",), ("eventName",), ("readOnly",),
         ("managementEvent",), ("requestParameters",), ("responseElements",),
         ("additionalEventData",), ("resources",), ("serviceEventDetails",), ("errorCode",),
         ("insightDetails",), ("tlsDetails",), ("userIdentity",),
         ("userIdentity", "type"), ("userIdentity", "sessionContext"),
         ("userIdentity", "sessionContext", "attributes"),
         ("userIdentity", "sessionContext", "attributes", "mfaAuthenticated"),
         ("userIdentity", "sessionContext", "attributes", "creationDate"),
         ("userIdentity", "sessionContext", "sessionIssuer"),
         ("userIdentity", "sessionContext", "sessionIssuer", "arn"),
         ("userIdentity", "sessionContext", "ec2RoleDelivery"),
         ("requestParameters", "ipPermissions"), ("insightDetails", "eventName"),
         ("tlsDetails", "cipherSuite")]


def _some_path(ev: dict[str, Any], rnd: random.Random) -> tuple[str, ...]:
    """The path of a key the event has, at any depth."""
    path: tuple[str, ...] = ()
    node: Any = ev
    while isinstance(node, dict) and node:
        name = rnd.choice(sorted(node))
        path += (name,)
        node = node[name]
        if rnd.random() < 0.5:
            break
    return path or ("eventName",)


def _alter(ev: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    ev = copy.deepcopy(ev)
    for _ in range(rnd.randint(1, 4)):
        path = rnd.choice(PATHS) if rnd.random() < 0.6 else _some_path(ev, rnd)
        node: Any = ev
        for name in path[:-1]:
            nxt = node.get(name) if isinstance(node, dict) else None
            if not isinstance(nxt, dict):
                nxt = {}
                if isinstance(node, dict):
                    node[name] = nxt
            node = nxt
        if not isinstance(node, dict):
            continue
        if rnd.random() < 0.25:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = copy.deepcopy(rnd.choice(ODD))
    return ev


def test_there_are_fixture_events() -> None:
    assert len(EVENTS) >= 10  # 8 AWS samples, 3 generated
    assert any("insightDetails" in e for e in EVENTS)


@pytest.mark.parametrize("index", range(len(EVENTS)))
def test_fixture_event_gives_the_reference_row(index: int) -> None:
    ev = EVENTS[index]
    assert _outcome(cloudtrail.map_event, ev) == _outcome(reference_map_event, ev)


def test_altered_events_give_the_reference_rows_or_the_same_error() -> None:
    rnd = random.Random(7)
    outcomes = set()
    for i in range(4000):
        ev = _alter(rnd.choice(EVENTS), rnd)
        base._WHEN.clear()  # the caches must not hide a difference
        cloudtrail._STAMPS.clear()
        ref = _outcome(reference_map_event, ev)
        assert _outcome(cloudtrail.map_event, ev) == ref, (i, ev)
        assert _outcome(cloudtrail.map_event, ev) == ref, (i, ev)  # cached: the same again
        outcomes.add(ref[0] if ref[0] == "row" else ref[1].split("(")[0])
    # the alterations reach the rows and each kind of failure
    assert {"row", "KeyError", "ValueError", "TypeError", "AttributeError"} <= outcomes
