"""EventBridge streams of several kinds: route each event to its table.

An EventBridge rule delivering to Firehose (and so to S3) often matches more than one kind:
``"source": ["aws.guardduty", "aws.securityhub"]``, or CloudTrail API calls with them. Such an
object holds GuardDuty findings (``detail-type: "GuardDuty Finding"``), Security Hub findings
(``"Security Hub Findings - Imported"``, ...) and CloudTrail events (``"AWS API Call via
CloudTrail"``, ...) in any order. Whichever of ``guardduty``, ``securityhub`` and
``cloudtrail-events`` detection chose (by the object's head), its parser maps its own kind as
before and hands every event of the other kinds to ``route``, which maps it with that kind's
own function (the same row as in a single-kind object) and tags it ``Routed(table, row)``.

All three tables are security-sensitive: the pipeline sends a routed record only where its
kind is allowed for the object (``provenance.allowed_kinds``: a prefix declared with
``"kinds": {"firehose/findings/": ["guardduty", "securityhub"]}``); the others are
dead-lettered per record with the setting to add.
"""
from __future__ import annotations

from collections.abc import Generator
from typing import Any

from . import guardduty, securityhub
from .base import Item, Routed
from .envelopes import DETAIL_TYPES, _map, is_cloudtrail_event, sniff_events, unwrap

TABLES = {"cloudtrail": "AWSCloudTrail", "guardduty": "AWSGuardDuty",
          "securityhub": "AWSSecurityHubFindings"}


def sniff_any(head: str) -> bool:
    """The head holds events of one of the three kinds (each parser's first check)."""
    return guardduty.sniff(head) or securityhub.sniff(head) or sniff_events(head)


def kind_of_value(value: Any) -> str | None:
    """The kind of one JSON value of the stream: by its EventBridge ``detail-type``, else by
    the shape of a bare event (a CloudTrail event, an ASFF finding or ``{"Findings": [...]}``,
    a GuardDuty finding); None when it is none of them."""
    if not isinstance(value, dict):
        return None
    detail_type = value.get("detail-type")
    if isinstance(detail_type, str):
        if detail_type in DETAIL_TYPES:
            return "cloudtrail"
        if detail_type == "GuardDuty Finding":
            return "guardduty"
        if detail_type.startswith("Security Hub Findings"):
            return "securityhub"
        return None
    if is_cloudtrail_event(value):
        return "cloudtrail"
    if ("SchemaVersion" in value and "Id" in value) or isinstance(value.get("Findings"), list):
        return "securityhub"
    if "schemaVersion" in value and "accountId" in value and ("id" in value or "type" in value):
        return "guardduty"
    return None


def other_kind(value: Any, own: str) -> str | None:
    """The kind of ``value`` when it is one of the other two (None: the parser's own, or
    nothing known, which the parser rejects with its own reason as before)."""
    if own == "guardduty" and type(value) is dict and "schemaVersion" in value \
            and "detail-type" not in value:
        return None  # a bare GuardDuty finding (the export's every line): the fast path
    kind = kind_of_value(value)
    return kind if kind is not None and kind != own else None


def route(kind: str, value: Any, position: int) -> Generator[Item, None, int]:
    """``value``'s rows (one per record, positions after ``position``) as ``Routed`` to
    ``kind``'s table, mapped by that kind's own function; returns the last position used."""
    table = TABLES[kind]
    if kind == "securityhub":
        items = securityhub.value_items(value, position)
        while True:
            try:
                item = next(items)
            except StopIteration as end:
                return end.value
            yield Routed(table, item) if isinstance(item, dict) else item
    position += 1
    item = (guardduty.finding_item(value, position) if kind == "guardduty" else
            _map(position, unwrap(value), value))
    yield Routed(table, item) if isinstance(item, dict) else item
    return position
