"""GuardDuty findings exported to S3 (JSON lines, one finding per line) -> AWSGuardDuty.

S3 export key: ``[prefix/]AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<uuid>.jsonl.gz``.
Findings are the API's camelCase shape. The mapping follows Microsoft's sample rows of the
table (``reference/expected/AWSGuardDuty__*.csv``): ``ActivityType`` = ``type``,
``ResourceDetails`` = ``resource``, ``ServiceDetails`` = ``service`` (dynamic), ``Severity`` =
``severity`` truncated to int as KQL ``toint`` does (8.9 -> 8, so the band Low/Medium/High is
kept), ``TimeCreated`` = ``createdAt`` and ``TimeGenerated`` = ``updatedAt`` (the sample rows
have TimeGenerated after TimeCreated; the table doc: "the last time this finding was updated").
The same finding wrapped in an EventBridge "GuardDuty Finding" event (EventBridge -> Firehose)
is unwrapped; the other kinds such a stream may carry (Security Hub findings, CloudTrail
events) are routed to their tables (``eventbridge``).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from . import columns
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    garbage,
    json_records,
    json_text,
    tolerant_sniff,
)

KEY = re.compile(r"(^|/)AWSLogs/(o-[a-z0-9]+/)?\d{12}/GuardDuty/[a-z0-9-]+/")
_FINDING = re.compile(r'"schemaVersion"\s*:|"GuardDuty Finding"')


def sniff(head: str) -> bool:
    start = head.lstrip()
    if not start.startswith(("{", "[")):
        return False
    if '"detail-type"' in head:
        return '"GuardDuty Finding"' in head
    return bool(_FINDING.search(head)) and ('"accountId"' in head and '"severity"' in head
                                            and '"type"' in head)


def _finding(value: Any) -> Any:
    if isinstance(value, dict) and value.get("detail-type") == "GuardDuty Finding" \
            and isinstance(value.get("detail"), dict):
        return value["detail"]
    return value


# the mapping, column by column (``columns``; the plain dict it replaced is the reference in
# tests/test_json_mappers.py): TimeGenerated = updatedAt, else createdAt
map_finding = columns.mapper("map_finding", ("f",), (
    ("TimeGenerated", ("when", ("f", "updatedAt")), ("when", ("f", "createdAt"))),
    ("AccountId", ("str", ("f", "accountId"))),
    ("ActivityType", ("str", ("f", "type"))),
    ("Arn", ("str", ("f", "arn"))),
    ("Description", ("str", ("f", "description"))),
    ("Id", ("str", ("f", "id"))),
    ("Partition", ("str", ("f", "partition"))),
    ("Region", ("str", ("f", "region"))),
    ("ResourceDetails", ("raw", ("f", "resource"))),
    ("SchemaVersion", ("str", ("f", "schemaVersion"))),
    ("ServiceDetails", ("raw", ("f", "service"))),
    ("Severity", ("trunc32", ("f", "severity"))),
    ("TimeCreated", ("when", ("f", "createdAt"))),
    ("Title", ("str", ("f", "title"))),
))


def finding_item(item: Any, position: int) -> Item:
    """One finding (bare, or in its EventBridge event) as a row, or why not."""
    finding = _finding(item)
    if not isinstance(finding, dict) or "id" not in finding and "type" not in finding:
        return Rejected(position, "not a GuardDuty finding (no id/type)", json_text(item))
    row = map_finding(finding)
    if "TimeGenerated" not in row:
        return Rejected(position, "GuardDuty finding has no valid updatedAt/createdAt",
                        json_text(item))
    return row


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    from . import eventbridge  # (imports this module)

    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(eventbridge.sniff_any, text.head):
        raise FormatError("GuardDuty export must be JSON lines of findings "
                          "(schemaVersion, accountId, type, severity, ...)")
    position = 0
    for _, value in json_records(text, "GuardDuty export"):
        if value.__class__ is dict and "schemaVersion" in value and "detail-type" not in value:
            # a bare finding (the export's every line): what other_kind (None) and
            # finding_item make of it, without them
            position += 1
            if "id" not in value and "type" not in value:
                yield Rejected(position, "not a GuardDuty finding (no id/type)",
                               json_text(value))
                continue
            row = map_finding(value)
            if "TimeGenerated" not in row:
                yield Rejected(position, "GuardDuty finding has no valid updatedAt/createdAt",
                               json_text(value))
                continue
            yield row
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, JsonGarbage):
                position += 1
                yield garbage(position, item, "GuardDuty finding is not JSON")
                continue
            other = eventbridge.other_kind(item, "guardduty")
            if other is not None:  # an EventBridge stream of several kinds
                position = yield from eventbridge.route(other, item, position)
                continue
            position += 1
            yield finding_item(item, position)


GUARDDUTY = Format(
    name="guardduty", table="AWSGuardDuty", parse=parse, sniff=sniff, key_pattern=KEY,
    description="GuardDuty findings export (JSON lines; EventBridge-wrapped findings too; "
                "other kinds of an EventBridge stream routed to their tables)",
    tables=("AWSSecurityHubFindings", "AWSCloudTrail"), envelope="eventbridge")
