"""The same events in the envelopes other AWS paths and common pipelines deliver them in.

* ``cloudtrail-events``: CloudTrail events one by one -- JSON lines or JSON objects back to
  back (CloudTrail Lake exports, Firehose, custom pipelines), bare or inside an EventBridge
  event whose ``detail-type`` is one of CloudTrail's (``AWS API Call via CloudTrail``, the
  console sign-in/action, service event and Insight types), ``detail`` being the CloudTrail
  event. -> AWSCloudTrail
* ``cloudwatch-cloudtrail``: CloudWatch Logs subscription payloads (via Firehose) of a log
  group a trail writes to: each log event's message is a CloudTrail event. -> AWSCloudTrail
* ``cloudwatch-vpcflow``: the same payloads of a log group VPC Flow Logs publish to: each
  message is a flow record in the default (v2) field order. -> AWSVPCFlow

Each event is mapped by the same function as in its native file (``cloudtrail.map_event``,
``vpcflow.map_record``), so a row is the same column by column however the event arrived
(``tests/test_envelopes.py``). An object of several log groups' payloads is routed payload by
payload, each by its first log event (``parse_cloudwatch_logs``: whichever of the three
formats detection chose, by the object's first event, reads them all); a log event of another
kind inside one payload is rejected with the reason (a log group holds one kind).
The CloudTrail envelopes have no AWS key layout: they become rows only under a prefix the
source declares (``"kinds"``, see ``provenance``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from . import cloudwatch
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    Routed,
    garbage,
    json_records,
    json_text,
    tolerant_sniff,
    when_epoch,
)
from .cloudtrail import map_event
from .vpcflow import DEFAULT_V2, _default_record, map_record

DETAIL_TYPES = frozenset({
    "AWS API Call via CloudTrail",
    "AWS Console Signin via CloudTrail",
    "AWS Console Sign In via CloudTrail",
    "AWS Console Action via CloudTrail",
    "AWS Service Event via CloudTrail",
    "AWS Insight via CloudTrail",
})
_DETAIL_TYPE = re.compile(r'"detail-type"\s*:\s*"([^"]*)"')
# top-level (unescaped) CloudTrail event keys, for a first event longer than the 64 KB head
_TOP = {name: re.compile(r'(?<!\\)"' + name + r'"\s*:') for name in
        ("eventVersion", "eventTime", "eventSource", "eventName")}
MAX_BATCH = 100_000  # events in one JSON array value (a bound on hostile input)
CLOUDTRAIL_TABLE, VPCFLOW_TABLE = "AWSCloudTrail", "AWSVPCFlow"


def is_cloudtrail_event(value: Any) -> bool:
    return (isinstance(value, dict) and "eventVersion" in value and "eventTime" in value
            and ("eventSource" in value or "insightDetails" in value))


def unwrap(value: Any) -> Any:
    """The CloudTrail event of an EventBridge CloudTrail event; anything else as it is."""
    if isinstance(value, dict) and value.get("detail-type") in DETAIL_TYPES:
        return value.get("detail")
    return value


def sniff_events(head: str) -> bool:
    start = head.lstrip()
    if not start.startswith(("{", "[")) or '"messageType"' in start[:2000] \
            or re.match(r'\{\s*"Records"\s*:', start):
        return False
    try:
        first, _ = json.JSONDecoder().raw_decode(start)
    except (ValueError, RecursionError):  # the first value is longer than the head (or
        # nested past the decoder's depth): look at its top-level keys
        m = _DETAIL_TYPE.search(start[:4000])
        if m:
            return m.group(1) in DETAIL_TYPES
        return all(p.search(start) for p in _TOP.values())
    if isinstance(first, list):
        first = first[0] if first else None
    return is_cloudtrail_event(unwrap(first))


def _map(position: int, event: Any, raw: Any) -> Item:
    if not is_cloudtrail_event(event):
        return Rejected(position, "not a CloudTrail event (nor an EventBridge 'AWS ... via "
                                  "CloudTrail' event whose detail is one)", json_text(raw))
    try:
        return map_event(event)
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        return Rejected(position, f"CloudTrail record unusable: {err!r}", json_text(raw))


def parse_events(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    from . import eventbridge  # (imports this module)

    if not text.head.strip():
        return  # an empty object holds no records
    if not sniff_events(text.head) and not tolerant_sniff(eventbridge.sniff_any, text.head):
        raise FormatError("CloudTrail events must be JSON objects (one per line or back to "
                          "back), each a CloudTrail event or an EventBridge 'AWS ... via "
                          "CloudTrail' event")
    position = 0
    for _, value in json_records(text, "CloudTrail events"):
        values = value[:MAX_BATCH] if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, JsonGarbage):
                position += 1
                yield garbage(position, item, "CloudTrail event is not JSON")
                continue
            other = eventbridge.other_kind(item, "cloudtrail")
            if other is not None:  # an EventBridge stream of several kinds
                position = yield from eventbridge.route(other, item, position)
                continue
            position += 1
            yield _map(position, unwrap(item), item)
        if isinstance(value, list) and len(value) > MAX_BATCH:
            position += 1
            yield Rejected(position, f"JSON array of {len(value)} events: only the first "
                                     f"{MAX_BATCH} are read", "")


def _unescaped(message: str) -> str:
    try:
        return json.loads(f'"{message}"')
    except ValueError:  # cut inside an escape by the end of the head
        return message.replace('\\"', '"')


def sniff_cloudwatch_cloudtrail(head: str) -> bool:
    if not cloudwatch.sniff(head):
        return False
    message = cloudwatch.first_message(head)
    if message is None:
        return False
    text = _unescaped(message).lstrip()
    return text.startswith("{") and '"eventVersion"' in text and '"eventTime"' in text


def _cloudtrail_log_event(item: cloudwatch.LogEvent) -> Item:
    message = item.event.get("message") if isinstance(item.event, dict) else None
    try:
        event = json.loads(message) if isinstance(message, str) else message
    except ValueError:
        event = None
    if not is_cloudtrail_event(event):
        return Rejected(item.position, f"log event of {item.log_group!r} is not a CloudTrail "
                                       "event (the payload was routed to AWSCloudTrail by its "
                                       "first log event)", json_text(item.event))
    return _map(item.position, event, item.event)


def _payload_table(item: cloudwatch.LogEvent) -> str:
    """The table of a payload (one log group's events), by its first log event."""
    event = item.event if isinstance(item.event, dict) else {}
    message = event.get("message")
    if isinstance(message, str):
        text = message.lstrip()
        if text.startswith("{") and '"eventVersion"' in text and '"eventTime"' in text:
            try:
                if is_cloudtrail_event(json.loads(text)):
                    return CLOUDTRAIL_TABLE
            except ValueError:
                pass
        elif _default_record(message):
            return VPCFLOW_TABLE
    elif is_cloudtrail_event(message):
        return CLOUDTRAIL_TABLE
    return cloudwatch.TABLE


def parse_cloudwatch_logs(own: str, text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    """CloudWatch Logs subscription payloads, each routed to its table by its first log
    event (a trail's log group -> AWSCloudTrail, a flow log group -> AWSVPCFlow, any other ->
    AWSCloudWatch); ``own`` is the table of the format detection chose (its rows are plain,
    the others ``Routed``). A log event unlike its payload's first is rejected with the reason
    (a log group holds one kind)."""
    mappers = {CLOUDTRAIL_TABLE: _cloudtrail_log_event, VPCFLOW_TABLE: _vpcflow_log_event,
               cloudwatch.TABLE: cloudwatch.plain_event}
    what = {CLOUDTRAIL_TABLE: "CloudWatch Logs subscription data of a trail",
            VPCFLOW_TABLE: "CloudWatch Logs subscription data of flow logs"}.get(
                own, "CloudWatch Logs subscription data")
    payload, log_event, plain_row = cloudwatch.Payload, cloudwatch.LogEvent, cloudwatch._row
    for item in cloudwatch.payloads(text, what):
        if type(item) is not payload:
            yield item
            continue
        events, position = item.events, item.position
        if not events:
            continue
        first = log_event(position + 1, events[0], item.log_group, item.log_stream)
        table = _payload_table(first)
        routed = table != own
        if table == cloudwatch.TABLE:  # the plain log events: no LogEvent each
            for event in events:
                position += 1
                row = plain_row(event)
                if row is None:
                    yield cloudwatch.plain_event(log_event(position, event))
                else:
                    yield Routed(table, row) if routed else row
            continue
        mapper = mappers[table]
        for index, event in enumerate(events):
            out = mapper(log_event(position + index + 1, event, item.log_group,
                                   item.log_stream) if index else first)
            yield Routed(table, out) if routed and type(out) is dict else out


def parse_cloudwatch_cloudtrail(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    return parse_cloudwatch_logs(CLOUDTRAIL_TABLE, text, ctx)


def sniff_cloudwatch_vpcflow(head: str) -> bool:
    if not cloudwatch.sniff(head):
        return False
    message = cloudwatch.first_message(head)
    return message is not None and _default_record(message)


def _vpcflow_log_event(item: cloudwatch.LogEvent) -> Item:
    event = item.event if isinstance(item.event, dict) else {}
    message = event.get("message")
    parts = message.split() if isinstance(message, str) else []
    if len(parts) != len(DEFAULT_V2) or not _default_record(message):
        return Rejected(item.position, f"log event of {item.log_group!r} is not a VPC flow "
                                       f"record in the default format ({len(DEFAULT_V2)} "
                                       "fields: version account-id interface-id ...)",
                        json_text(item.event))
    row = map_record(dict(zip(DEFAULT_V2, parts)))
    stamp = row.get("Start") or row.get("End") or when_epoch(
        event.get("timestamp"), millis=True)
    if stamp is None:
        return Rejected(item.position, "VPC flow record has no start/end time and the log "
                                       "event no timestamp", json_text(item.event))
    return {"TimeGenerated": stamp, **row}


def parse_cloudwatch_vpcflow(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    return parse_cloudwatch_logs(VPCFLOW_TABLE, text, ctx)


CLOUDTRAIL_EVENTS = Format(
    name="cloudtrail-events", table="AWSCloudTrail", parse=parse_events, sniff=sniff_events,
    description="CloudTrail events one by one (JSON lines / back to back; bare or in "
                "EventBridge 'AWS ... via CloudTrail' events; GuardDuty / Security Hub "
                "findings of the same EventBridge stream routed to their tables)",
    tables=("AWSGuardDuty", "AWSSecurityHubFindings"), envelope="eventbridge")

CLOUDWATCH_CLOUDTRAIL = Format(
    name="cloudwatch-cloudtrail", table=CLOUDTRAIL_TABLE, parse=parse_cloudwatch_cloudtrail,
    sniff=sniff_cloudwatch_cloudtrail,
    description="CloudWatch Logs subscription data (via Firehose) whose log events are "
                "CloudTrail events (payloads of other log groups routed to their tables)",
    tables=(VPCFLOW_TABLE, cloudwatch.TABLE), envelope="cloudwatch-logs")

CLOUDWATCH_VPCFLOW = Format(
    name="cloudwatch-vpcflow", table=VPCFLOW_TABLE, parse=parse_cloudwatch_vpcflow,
    sniff=sniff_cloudwatch_vpcflow,
    description="CloudWatch Logs subscription data (via Firehose) whose log events are VPC "
                "flow records (default format; payloads of other log groups routed to their "
                "tables)",
    tables=(CLOUDTRAIL_TABLE, cloudwatch.TABLE), envelope="cloudwatch-logs")
