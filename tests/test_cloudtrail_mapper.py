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


# ---- eventTime / creationDate: the inline fast path gives what iso_from_text / when give ----

_CANONICAL_TIME = "2024-01-02T03:04:05Z"
_TIME_EDGES = [
    "2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2100-02-29T00:00:00Z",
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-00-10T00:00:00Z",
    "2024-13-01T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-32T00:00:00Z", "2024-01-01T24:00:00Z",
    "2024-01-01T23:60:00Z", "2024-01-01T23:59:60Z", "2024-01-02T03:04:05z", "2024-01-02 03:04:05Z",
    "2024-01-02T03:04:05", "2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.000000Z",
    "2024-01-02T03:04:05+02:00", "2024-01-02T03:04:05-00:00", " 2024-01-02T03:04:05Z",
    "2024-01-02T03:04:05Z ", "2024-01-02T03:04Z", "20240102T030405Z", "2024-W01-1T03:04:05Z",
    "\u0662024-01-02T03:04:05Z", "2024-01-02T03:04:0\uff15Z", "2024-01-02T03:04:0\u00b2Z",
    " " * 100 + _CANONICAL_TIME, _CANONICAL_TIME + "\n" * 70, "", "Z" * 20, None, 1704164645,
    1.5, True, [], {}, ["2024-01-02T03:04:05Z"]]
# what may stand in a digit's place: digits of other scripts, signs, spaces, the punctuation
_TIME_CHARS = "0123456789" * 3 + "\u0661\u0669\uff10\u00b2\u2070 \t+-:TZz.x\x00"


def _odd_time(rnd: random.Random) -> Any:
    if rnd.random() < 0.2:
        return rnd.choice(_TIME_EDGES)
    chars = list(rnd.choice([_CANONICAL_TIME, "2024-02-29T23:59:59Z", "1999-12-31T23:59:59Z"]))
    for _ in range(rnd.randint(0, 3)):
        i = rnd.randrange(len(chars))
        chars[i] = rnd.choice(_TIME_CHARS) if i not in (4, 7, 10, 13, 16, 19) or \
            rnd.random() < 0.3 else chars[i]
    return "".join(chars)


def test_event_and_session_times_give_the_reference_answer() -> None:
    """eventTime in CloudTrail's shape is kept after a punctuation test and fromisoformat,
    creationDate likewise: every other value, and every shaped value that is not a real date
    and time, must end as iso_from_text / when end it (the row, or the same error)."""
    rnd = random.Random(11)
    template = EVENTS[-1]  # the generated shape: both times present
    seen = {"row": 0, "error": 0, "created": 0}
    for i in range(20_000):
        value = _odd_time(rnd)
        ev = copy.deepcopy(template)
        if i % 2:
            ev["eventTime"] = value
        else:
            ev["userIdentity"]["sessionContext"]["attributes"]["creationDate"] = value
        base._WHEN.clear()
        cloudtrail._STAMPS.clear()
        ref = _outcome(reference_map_event, ev)
        assert _outcome(cloudtrail.map_event, ev) == ref, (i, value)
        assert _outcome(cloudtrail.map_event, ev) == ref, (i, value)  # remembered: the same
        seen[ref[0]] += 1
        seen["created"] += ref[0] == "row" and any(k == "SessionCreationDate" for k, _ in ref[1])
    # both ways out are exercised, and many shaped values are not valid times
    assert seen["error"] > 2000 and seen["row"] > 5000 and seen["created"] > 2000


def test_remembered_event_times_are_bounded() -> None:
    ev = copy.deepcopy(EVENTS[-1])
    cloudtrail._STAMPS.clear()
    ev["eventTime"] = " " * 1000 + _CANONICAL_TIME  # valid once stripped: a long key
    assert cloudtrail.map_event(ev)["TimeGenerated"] == _CANONICAL_TIME
    assert not cloudtrail._STAMPS
    for n in range(cloudtrail._STAMPS_MAX + 10):  # distinct values of another shape
        ev["eventTime"] = f"2024-01-02T03:{n // 60 % 60:02d}:{n % 60:02d}+0{n // 3600}:00"
        cloudtrail.map_event(ev)
        assert len(cloudtrail._STAMPS) <= cloudtrail._STAMPS_MAX
    ev["eventTime"] = _CANONICAL_TIME  # the usual shape is not remembered at all
    cloudtrail._STAMPS.clear()
    cloudtrail.map_event(ev)
    assert not cloudtrail._STAMPS


def test_text_only_request_parameters_are_the_json_text() -> None:
    """requestParameters of text values only are written by orjson straight away: the text
    compact_json writes, for any text (control characters, quotes, non-BMP, lone surrogates)."""
    rnd = random.Random(5)
    alphabet = [chr(c) for c in range(0x80)] + ["\u2028", "\u00e9", "\U0001f600", "\ud800",
                                                "\udfff", "\x7f", "\u0085", '\\"', "\\u0000"]
    for _ in range(5000):
        params = {"".join(rnd.choices(alphabet, k=rnd.randint(0, 4))):
                  "".join(rnd.choices(alphabet, k=rnd.randint(0, 8)))
                  for _ in range(rnd.randint(0, 3))}
        if rnd.random() < 0.2:
            params[rnd.choice(["n", "x"])] = rnd.choice([1, 1.5, 1e-7, None, True, [], {}])
        assert cloudtrail._params_json(params) == compact_json(params), params
