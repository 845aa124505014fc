"""CloudWatch Logs subscription data delivered to S3 by Firehose -> AWSCloudWatch.

Each Firehose record is the gzip blob CloudWatch Logs produced; Firehose writes them back to
back, so the object is a run of gzip members (``reader.decompress`` inflates them all) whose
text is JSON objects with nothing between them. A ``DATA_MESSAGE`` gives one row per entry of
``logEvents`` (``Message`` = message, ``TimeGenerated`` = ``ExtractedTime`` = timestamp in
epoch milliseconds); a ``CONTROL_MESSAGE`` (the reachability check CloudWatch sends when a
subscription is created) is skipped and counted. Firehose keys have no fixed layout
(``<prefix>YYYY/MM/DD/HH/<stream>-...``), so this format is recognised by content only.

One Firehose object can hold the payloads of several log groups (a subscription per group into
one stream): each payload is routed by its first log event (``envelopes``): a trail's log
group to AWSCloudTrail (where the prefix is declared for cloudtrail), a flow log group to
AWSVPCFlow, any other to AWSCloudWatch.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    Skipped,
    garbage,
    iso_from_epoch,
    json_records,
    json_text,
    tolerant_sniff,
    when_epoch,
)

_FIRST_MESSAGE = re.compile(r'"logEvents"\s*:\s*\[\s*\{[^{}]*?"message"\s*:\s*"((?:[^"\\]|\\.)*)')
_MARK = re.compile(r'"messageType"\s*:\s*"(DATA_MESSAGE|CONTROL_MESSAGE)"')


def sniff(head: str) -> bool:
    return head.lstrip().startswith("{") and bool(_MARK.search(head)) and \
        ('"logEvents"' in head or '"logGroup"' in head)


class LogEvent(NamedTuple):  # a tuple: one per log event, made cheaply
    """One entry of a DATA_MESSAGE's ``logEvents``, with the payload's log group/stream."""

    position: int
    event: Any
    log_group: str | None = None
    log_stream: str | None = None


class Payload(NamedTuple):
    """One DATA_MESSAGE: its log events and log group/stream; ``position`` is the one before
    its first log event's."""

    position: int
    events: list[Any]
    log_group: str | None
    log_stream: str | None


def payloads(text: TextSource, what: str = "CloudWatch Logs subscription data"
             ) -> Iterator[Item | Payload]:
    """Every DATA_MESSAGE of a run of subscription payloads, in order; payload-level problems
    (not JSON, not a DATA_MESSAGE) as ``Rejected``, CONTROL_MESSAGEs as ``Skipped``. Each
    log event takes one position."""
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(sniff, text.head):
        raise FormatError(f"{what} must be JSON objects with messageType "
                          "DATA_MESSAGE/CONTROL_MESSAGE and logEvents")
    position = 0
    for _, value in json_records(text, "CloudWatch Logs data"):
        if isinstance(value, JsonGarbage):
            position += 1
            yield garbage(position, value, "CloudWatch Logs message is not JSON")
            continue
        kind = value.get("messageType") if isinstance(value, dict) else None
        if kind == "CONTROL_MESSAGE":
            position += 1
            yield Skipped(position, "CloudWatch Logs CONTROL_MESSAGE (subscription check)")
            continue
        events = value.get("logEvents") if isinstance(value, dict) else None
        if kind != "DATA_MESSAGE" or not isinstance(events, list):
            position += 1
            yield Rejected(position, "not a CloudWatch Logs DATA_MESSAGE with logEvents",
                           json_text(value))
            continue
        yield Payload(position, events, value.get("logGroup"), value.get("logStream"))
        position += len(events)


def first_message(head: str) -> str | None:
    """The (JSON-escaped, possibly cut) text of the first log event's message in ``head``:
    what routes a whole payload when its log events are CloudTrail events or flow records."""
    m = _FIRST_MESSAGE.search(head)
    return m.group(1) if m else None


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    # each payload (one log group's events) goes to its own table: trail log groups to
    # AWSCloudTrail, flow log groups to AWSVPCFlow (envelopes.parse_cloudwatch_logs)
    from .envelopes import parse_cloudwatch_logs  # (envelopes imports this module)
    return parse_cloudwatch_logs(TABLE, text, ctx)


def plain_event(item: LogEvent) -> Item:
    """One log event as an AWSCloudWatch row (or why not)."""
    row = _row(item.event)
    if row is None:
        return Rejected(item.position, "CloudWatch log event has no valid timestamp "
                                       "(epoch ms) or message", json_text(item.event))
    return row


def _row(event: Any) -> dict[str, Any] | None:
    if event.__class__ is not dict and not isinstance(event, dict):
        return None
    # epoch milliseconds as an int, 1970 to 2100: the ISO text of its minute (remembered),
    # its second and its milliseconds (from tables), what when_epoch(millis=True) gives
    # (tests/test_json_mappers.py compares them on 200,000 values); anything else the
    # general way
    stamp = stamp_ms(event.get("timestamp"))
    message = event.get("message")
    if stamp is None or message is None:
        return None
    if message.__class__ is not str and not isinstance(message, str):
        message = json_text(message)
    return {"TimeGenerated": stamp, "ExtractedTime": stamp, "Message": message}


def stamp_ms(stamp: Any) -> str | None:
    """``when_epoch(stamp, millis=True)``, sooner for an int of 1970 to 2100 (log events' and
    WAF's ``timestamp``): every stamp its own millisecond, the cache of ``when_epoch`` missed
    on all of them."""
    if stamp.__class__ is int and 0 <= stamp < _MS_MAX:
        minute, rest = divmod(stamp, 60_000)
        prefix = _MINUTES.get(minute)
        if prefix is None:
            if len(_MINUTES) >= 4096:
                _MINUTES.clear()
            prefix = _MINUTES[minute] = iso_from_epoch(minute * 60)[:17]  # YYYY-MM-DDTHH:MM:
        second, ms = divmod(rest, 1000)
        return prefix + _SS[second] + _MS[ms]
    return when_epoch(stamp, millis=True)


_MS_MAX = 4_102_444_800_000  # 2100-01-01 in epoch ms
_MINUTES: dict[int, str] = {}  # epoch minute -> "YYYY-MM-DDTHH:MM:" (bounded)
_SS = tuple(f"{n:02d}" for n in range(60))
_MS = ("Z", *(f".{n:03d}000Z" for n in range(1, 1000)))  # whole seconds have no fraction


TABLE = "AWSCloudWatch"
CLOUDWATCH = Format(
    name="cloudwatch", table=TABLE, parse=parse, sniff=sniff,
    description="CloudWatch Logs subscription data via Firehose (DATA_MESSAGE log events; "
                "CONTROL_MESSAGE skipped); payloads of trail / flow log groups routed to "
                "AWSCloudTrail / AWSVPCFlow",
    tables=("AWSCloudTrail", "AWSVPCFlow"), envelope="cloudwatch-logs")
