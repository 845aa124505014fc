"""CloudFront standard (access) logs -> custom table ``AWSCloudFront_AccessLog_CL``.

Key: ``[prefix/]<distribution-id>.YYYY-MM-DD-HH.<unique-id>.gz``. Content: ``#Version:`` and
``#Fields:`` header lines, then one tab-separated line per request. There is no standard
table; Microsoft's CloudFront connector writes the custom table ``AWSCloudFront_AccessLog_CL``
(``AWSCloudFrontLog_DCR.json``), and this format fills the same table with the same column
names and the same values: every field verbatim as text (``tostring(FieldN)``: ``-`` stays
``-``, the user agent stays URL-encoded), so Microsoft's workbooks and rules keep working.
Differences, on purpose: ``TimeGenerated`` is the request time (``date`` + ``time``, as the
legacy transform did; the current one uses the ingestion time), columns follow the
``#Fields:`` header (any field order; positional as in the transform when there is none), the
transform's ``Distributionid`` (a case-only duplicate of ``DistributionId``, Field42) is not
created, and ``SourceName``/``S3Bucket``/``S3Key`` trace each row to its object.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError
from ..reader import TextSource
from .base import Format, Item, ObjectContext, Rejected, when, when_epoch

KEY = re.compile(r"(^|/)E[A-Z0-9]{6,20}\.\d{4}-\d{2}-\d{2}-\d{2}\.[A-Za-z0-9]+(\.gz)?$")
TABLE = "AWSCloudFront_AccessLog_CL"
# (field name in the #Fields header, column); the order is the transform's Field1..Field43
FIELDS: tuple[tuple[str, str | None], ...] = (
    ("date", "Date"), ("time", "Time"), ("x-edge-location", "XEdgeLocation"),
    ("sc-bytes", "ScBytes"), ("c-ip", "CIp"), ("cs-method", "CsMethod"),
    ("cs(Host)", "CsHost"), ("cs-uri-stem", "CsUriStem"), ("sc-status", "ScStatus"),
    ("cs(Referer)", "CsReferer"), ("cs(User-Agent)", "CsUserAgent"),
    ("cs-uri-query", "CsUriQuery"), ("cs(Cookie)", "CsCookie"),
    ("x-edge-result-type", "XEdgeResultType"), ("x-edge-request-id", "XEdgeRequestId"),
    ("x-host-header", "XHostHeader"), ("cs-protocol", "CsProtocol"),
    ("cs-bytes", "CsBytes"), ("time-taken", "TimeTaken"),
    ("x-forwarded-for", "XForwardedFor"), ("ssl-protocol", "SslProtocol"),
    ("ssl-cipher", "SslCipher"), ("x-edge-response-result-type", "XEdgeResponseResultType"),
    ("cs-protocol-version", "CsProtocolVersion"), ("fle-status", "FleStatus"),
    ("fle-encrypted-fields", "FleEncryptedFields"), ("c-port", "CPort"),
    ("time-to-first-byte", "TimeToFirstByte"),
    ("x-edge-detailed-result-type", "XEdgeDetailedResultType"),
    ("sc-content-type", "ScContentType"), ("sc-content-len", "ScContentLen"),
    ("sc-range-start", "ScRangeStart"), ("sc-range-end", "ScRangeEnd"),
    ("timestamp", "Timestamp"), ("DistributionId", "DistributionId"),
    ("timestamp(ms)", "TimestampMs"), ("origin-fbl", "OriginFbl"),
    ("origin-lbl", "OriginLbl"), ("asn", "Asn"), ("c-country", "CCountry"),
    ("cache-behavior-path-pattern", "CacheBehaviorPathPattern"),
    ("distributionid", None),  # Field42 "Distributionid": see module docstring
    ("distribution-tenant-id", "DistributionTenantId"),
)
BY_NAME = {name.lower(): column for name, column in FIELDS}
POSITIONAL = [column for _, column in FIELDS]


def sniff(head: str) -> bool:
    start = head.lstrip()
    if not start.startswith("#"):
        return False
    m = re.search(r"^#Fields:(.*)$", head, re.MULTILINE)
    return bool(m) and ("x-edge-location" in m.group(1) or "x-edge-request-id" in m.group(1))


def _header(line: str) -> list[str | None]:
    return [BY_NAME.get(name.lower()) for name in line.split(":", 1)[1].split()]


def map_values(columns: list[str | None], values: list[str],
               ctx: ObjectContext | None = None, plain: bool = False) -> dict[str, Any]:
    """The row of one line: ``TimeGenerated`` first, each named field's text that is not
    empty, then where the row came from. ``plain``: ``columns`` holds no None (every field of
    the header is a column), so a line without an empty field is copied by one dict update."""
    row: dict[str, Any] = {"TimeGenerated": None}
    if plain and "" not in values:
        row.update(zip(columns, values))  # type: ignore[arg-type]
    else:
        for column, value in zip(columns, values):
            if column is not None and value != "":
                row[column] = value
    get = row.get
    stamp = None
    date, clock = get("Date"), get("Time")
    if date is not None and clock is not None:
        stamp = when(f"{date}T{clock}Z")
    if stamp is None:
        ms = get("TimestampMs")
        if ms is not None:
            stamp = when_epoch(ms, millis=True)
        if stamp is None:
            seconds = get("Timestamp")
            if seconds is not None:
                stamp = when_epoch(seconds)
    if stamp is None:
        del row["TimeGenerated"]
    else:
        row["TimeGenerated"] = stamp
    if ctx is not None:
        if ctx.source is not None:
            row["SourceName"] = ctx.source
        if ctx.bucket is not None:
            row["S3Bucket"] = ctx.bucket
        if ctx.key is not None:
            row["S3Key"] = ctx.key
    return row


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not sniff(text.head):
        raise FormatError("CloudFront standard log must start with '#Version:' / '#Fields:' "
                          "header lines naming the CloudFront fields")
    columns: list[str | None] = POSITIONAL
    plain = None not in columns
    for n, line in enumerate(text.lines(), start=1):
        if line[:1] == "#":
            if line.startswith("#Fields:"):
                columns = _header(line)
                plain = None not in columns
            continue
        if not line or line.isspace():
            continue
        values = line.split("\t")
        if len(values) < 2:
            yield Rejected(n, "CloudFront log line is not tab-separated", line)
            continue
        row = map_values(columns, values, ctx, plain)
        if "TimeGenerated" not in row:
            yield Rejected(n, "CloudFront log line has no valid date/time", line)
            continue
        yield row


CLOUDFRONT = Format(
    name="cloudfront", table=TABLE, parse=parse, sniff=sniff, key_pattern=KEY,
    description="CloudFront standard access logs (#Fields header, tab-separated)")
