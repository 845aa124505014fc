"""Security Hub findings (EventBridge events delivered by Firehose) -> AWSSecurityHubFindings.

The object holds EventBridge events ``{"detail-type": "Security Hub Findings - Imported",
"time": ..., "detail": {"findings": [ASFF, ...]}}``, back to back or one per line. Each
finding becomes one row. Also accepted: bare ASFF findings and ``{"Findings": [...]}`` (the
GetFindings / BatchImportFindings shape), whose rows take ``TimeGenerated`` from the finding's
``UpdatedAt``.

Mapping = Microsoft's ``AWSSecurityHubFindings_DCR.json`` transform, applied to every finding
(that transform reads ``findings[0]`` only, dropping the others of a multi-finding event).
``TimeGenerated`` = the event's ``time``. ``AwsSecurityFindingSeverity`` is
``FindingProviderFields.Severity`` as there, falling back to the finding's top-level
``Severity`` when a product sets no FindingProviderFields. The transform's ``RawData`` has no
column in the table's stream (system column) and is not sent. GuardDuty findings and CloudTrail
events in the same EventBridge stream are routed to their tables (``eventbridge``).
"""
from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from . import columns
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
)

STRINGS = {
    "AwsRegion": ("Region",),
    "AwsAccountId": ("AwsAccountId",),
    "ComplianceStatus": ("Compliance", "Status"),
    "ComplianceSecurityControlId": ("Compliance", "SecurityControlId"),
    "AwsSecurityFindingTitle": ("Title",),
    "AwsSecurityFindingId": ("Id",),
    "AwsSecurityFindingDescription": ("Description",),
    "AwsSecurityFindingGeneratorId": ("GeneratorId",),
    "AwsSecurityFindingProductArn": ("ProductArn",),
    "AwsSecurityFindingProductName": ("ProductName",),
    "SchemaVersion": ("SchemaVersion",),
    "RecordState": ("RecordState",),
    "WorkflowState": ("WorkflowState",),
}
DYNAMICS = {
    "ComplianceStatusReasons": ("Compliance", "StatusReasons"),
    "ComplianceSecurityControlParameters": ("Compliance", "SecurityControlParameters"),
    "ComplianceRelatedRequirements": ("Compliance", "RelatedRequirements"),
    "ComplianceAssociatedStandards": ("Compliance", "AssociatedStandards"),
    "AwsSecurityFindingTypes": ("Types",),
    "AwsSecurityFindingProductFields": ("ProductFields",),
    "Remediation": ("Remediation",),
    "Resources": ("Resources",),
}
TIMES = {
    "AwsSecurityFindingCreatedAt": "CreatedAt",
    "AwsSecurityFindingFirstObservedAt": "FirstObservedAt",
    "AwsSecurityFindingUpdatedAt": "UpdatedAt",
    "AwsSecurityFindingLastObservedAt": "LastObservedAt",
    "AwsSecurityFindingProcessedAt": "ProcessedAt",
}


def sniff(head: str) -> bool:
    if not head.lstrip().startswith("{"):
        return False
    if '"aws.securityhub"' in head or '"Security Hub Findings' in head:
        return True
    return all(k in head for k in ('"SchemaVersion"', '"ProductArn"', '"GeneratorId"',
                                   '"AwsAccountId"'))


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


# column by column (``columns``; the loops it replaced are the reference in
# tests/test_json_mappers.py): TimeGenerated = the event's time, else UpdatedAt; the severity
# of FindingProviderFields, else the finding's own
map_finding = columns.mapper("map_finding", ("f", "event_time"), (
    ("TimeGenerated", ("when", ("event_time",)), ("when", ("f", "UpdatedAt"))),
    *((column, ("str", ("f", *path))) for column, path in STRINGS.items()),
    *((column, ("raw", ("f", *path))) for column, path in DYNAMICS.items()),
    *((column, ("when", ("f", name))) for column, name in TIMES.items()),
    ("AwsSecurityFindingSeverity", ("raw", ("f", "FindingProviderFields", "Severity")),
     ("raw", ("f", "Severity"))),
))


def _findings(value: Any) -> tuple[list[Any], str | None, str | None]:
    """(findings, event time, why not) for one JSON value of the object."""
    if not isinstance(value, dict):
        return [], None, "not a JSON object"
    if "detail" in value:
        findings = _get(value, ("detail", "findings"))
        if not isinstance(findings, list):
            return [], None, "EventBridge event without detail.findings"
        return findings, value.get("time"), None
    for name in ("Findings", "findings"):
        if isinstance(value.get(name), list):
            return value[name], None, None
    if "SchemaVersion" in value and "Id" in value:
        return [value], None, None
    return [], None, "neither an EventBridge Security Hub event nor an ASFF finding"


def value_items(value: Any, position: int) -> Generator[Item, None, int]:
    """The rows (or why not) of one JSON value: an event's findings, one position each;
    returns the last position used."""
    findings, event_time, why = _findings(value)
    if why:
        position += 1
        yield Rejected(position, why, json_text(value))
        return position
    if not findings:
        position += 1
        yield Skipped(position, "Security Hub event with an empty findings list")
        return position
    for finding in findings:
        position += 1
        yield finding_item(position, finding, event_time)
    return position


def finding_item(position: int, finding: Any, event_time: str | None) -> Item:
    """The row of one finding, or why not."""
    if not isinstance(finding, dict):
        return Rejected(position, "ASFF finding is not a JSON object", json_text(finding))
    row = map_finding(finding, event_time)
    if "TimeGenerated" not in row:
        return Rejected(position, "Security Hub finding has no valid event time or UpdatedAt",
                        json_text(finding))
    return row


def bare_finding(value: Any) -> bool:
    """Whether ``value`` is one bare ASFF finding: what ``eventbridge.kind_of_value`` calls
    Security Hub and ``value_items`` reads as a single finding (no ``detail-type``, not a
    CloudTrail event, no ``detail``, no findings list). ``parse`` maps it without those two
    (most Firehose objects are nothing else); ``tests/test_formats_review.py`` holds this to
    them."""
    return (value.__class__ is dict and "SchemaVersion" in value and "Id" in value
            and "detail" not in value and "detail-type" not in value
            and "eventVersion" not in value and not isinstance(value.get("Findings"), list)
            and not isinstance(value.get("findings"), list))


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    from . import eventbridge  # (imports this module)

    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(eventbridge.sniff_any, text.head):
        raise FormatError("Security Hub object must hold EventBridge 'Security Hub Findings' "
                          "events (or ASFF findings)")
    position = 0
    for _, value in json_records(text, "Security Hub object"):
        if isinstance(value, JsonGarbage):
            position += 1
            yield garbage(position, value, "Security Hub event is not JSON")
            continue
        if bare_finding(value):  # what other_kind and value_items make of it, without them
            position += 1
            yield finding_item(position, value, None)
            continue
        other = eventbridge.other_kind(value, "securityhub")
        if other is not None:  # an EventBridge stream of several kinds
            position = yield from eventbridge.route(other, value, position)
            continue
        position = yield from value_items(value, position)


SECURITYHUB = Format(
    name="securityhub", table="AWSSecurityHubFindings", parse=parse, sniff=sniff,
    description="Security Hub findings (EventBridge events via Firehose; ASFF findings; other "
                "kinds of an EventBridge stream routed to their tables)",
    tables=("AWSGuardDuty", "AWSCloudTrail"), envelope="eventbridge")
