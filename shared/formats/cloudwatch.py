"""CloudWatch Logs subscription data delivered to S3 by Firehose -> AWSCloudWatch.

Each Firehose record is the gzip blob CloudWatch Logs produced; Firehose writes them back to
back, so the object is a run of gzip members (``reader.decompress`` inflates them all) whose
text is JSON objects with nothing between them. A ``DATA_MESSAGE`` gives one row per entry of
``logEvents`` (``Message`` = message, ``TimeGenerated`` = ``ExtractedTime`` = timestamp in
epoch milliseconds); a ``CONTROL_MESSAGE`` (the reachability check CloudWatch sends when a
subscription is created) is skipped and counted. Firehose keys have no fixed layout
(``<prefix>YYYY/MM/DD/HH/<stream>-...``), so this format is recognised by content only.
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
    garbage,
    json_records,
    json_text,
    tolerant_sniff,
    when_epoch,
)

_MARK = re.compile(r'"messageType"\s*:\s*"(DATA_MESSAGE|CONTROL_MESSAGE)"')


def sniff(head: str) -> bool:
    return head.lstrip().startswith("{") and bool(_MARK.search(head)) and \
        ('"logEvents"' in head or '"logGroup"' in head)


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(sniff, text.head):
        raise FormatError("CloudWatch Logs subscription data must be JSON objects with "
                          "messageType DATA_MESSAGE/CONTROL_MESSAGE and logEvents")
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
        for event in events:
            position += 1
            row = _row(event)
            if row is None:
                yield Rejected(position, "CloudWatch log event has no valid timestamp "
                                         "(epoch ms) or message", json_text(event))
            else:
                yield row


def _row(event: Any) -> dict[str, Any] | None:
    if not isinstance(event, dict):
        return None
    stamp = when_epoch(event.get("timestamp"), millis=True)
    message = event.get("message")
    if stamp is None or message is None:
        return None
    if not isinstance(message, str):
        message = json_text(message)
    return {"TimeGenerated": stamp, "ExtractedTime": stamp, "Message": message}


CLOUDWATCH = Format(
    name="cloudwatch", table="AWSCloudWatch", parse=parse, sniff=sniff,
    description="CloudWatch Logs subscription data via Firehose (DATA_MESSAGE log events; "
                "CONTROL_MESSAGE skipped)")
