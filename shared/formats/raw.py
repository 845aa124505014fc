"""Fallback: any text object into the custom table AWSS3Raw_CL, raw text + S3 metadata.

* JSON (one document, a JSON array, JSON lines or back-to-back objects): one row per JSON value
  (array elements one by one), the parsed value in ``Fields`` (dynamic) so analysts can query
  it with KQL, ``RawData`` the compact JSON text, ``LineNumber`` the value's ordinal.
* CSV with a header line (``.csv`` key, or a header of plain names whose next line has as many
  fields): one row per data line, ``Fields`` = {header: value}.
* Anything else: one row per non-empty line.

``TimeGenerated`` comes from a recognisable time field when there is one, else from the
timestamp AWS puts in the file name, else the object's S3 event time (never the ingestion
time). ``Format`` says which of json / csv / text the object was read as.
"""
from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from typing import Any

from ..errors import ObjectReadError
from ..reader import HEAD_BYTES, JsonGarbage, TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    iso_from_epoch,
    iso_from_epoch_ms,
    iso_from_text,
    key_time,
)

TIME_FIELDS = ("eventTime", "timestamp", "time", "@timestamp", "Timestamp", "Time",
               "eventTimestamp", "event_timestamp", "date", "createdAt", "updatedAt")
MAX_RAW_CHARS = 32 * 1024  # RawData is also in Fields for JSON; keep the row under 64 KB/field
_CSV_NAME = re.compile(r"^[A-Za-z_@][\w .()/@-]{0,127}$")
_REGION = re.compile(r"(?:^|/)(?:aws-region=)?([a-z]{2}(?:-gov)?-[a-z]+-\d)(?:/|_)")


def event_time(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    for name in TIME_FIELDS:
        value = obj.get(name)
        if value is None or isinstance(value, bool):
            continue
        try:
            if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
                number = float(value)
                return iso_from_epoch_ms(number) if number > 1e11 else iso_from_epoch(number)
            if isinstance(value, str):
                return iso_from_text(value)
        except (ValueError, OverflowError, OSError):
            continue
    return None


def _csv_header(head: str, key: str) -> list[str] | None:
    lines = [ln.rstrip("\r") for ln in head.split("\n", 2)[:2]]
    if len(lines) < 2 or "," not in lines[0]:
        return None
    try:
        header, first = list(csv.reader(lines))[:2]
    except (csv.Error, ValueError):
        return None
    names = [h.strip() for h in header]
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        return None
    by_key = key.lower().rstrip("/").removesuffix(".gz").endswith(".csv")
    if by_key or (all(_CSV_NAME.match(n) for n in names) and len(first) == len(names)):
        return names
    return None


def _is_json(head: str) -> bool:
    start = head.lstrip()
    if not start.startswith(("{", "[")):
        return False
    try:
        json.JSONDecoder().raw_decode(start)
        return True
    except ValueError:
        # a first value longer than the head cannot be checked here: read it as JSON (what
        # does not parse still becomes rows, as text); a shorter broken one is read as text
        return len(head) >= HEAD_BYTES - 4


def _base(ctx: ObjectContext, fallback: str | None, kind: str) -> dict[str, Any]:
    region = _REGION.search(ctx.key)
    return {"TimeGenerated": fallback, "Format": kind, "SourceName": ctx.source,
            "S3Bucket": ctx.bucket, "S3Key": ctx.key, "AccountId": ctx.account_id,
            "Region": region.group(1) if region else None}


def _emit(row: dict[str, Any]) -> Item:
    if not row.get("TimeGenerated"):
        return Rejected(row["LineNumber"], "no time field in the record, no timestamp in the "
                        "key and no S3 event time for the object", row.get("RawData", ""))
    return {k: v for k, v in row.items() if v is not None}


def _clip(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "..."


def _json_rows(text: TextSource, base: dict[str, Any]) -> Iterator[Item]:
    n = 0
    for value in text.json_values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            n += 1
            row = dict(base, LineNumber=n)
            if isinstance(item, JsonGarbage):
                row["RawData"] = _clip(item.raw.rstrip("\n"))
            else:
                row["RawData"] = _clip(json.dumps(item, separators=(",", ":"),
                                                  ensure_ascii=False))
                row["Fields"] = item
                row["TimeGenerated"] = event_time(item) or base["TimeGenerated"]
            yield _emit(row)


def _csv_rows(text: TextSource, base: dict[str, Any], names: list[str]) -> Iterator[Item]:
    lines = text.lines()
    next(lines, None)  # the header
    for n, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            values = next(csv.reader([line]))
        except csv.Error:
            values = []
        fields = dict(zip(names, values))
        row = dict(base, LineNumber=n, RawData=_clip(line), Fields=fields or None)
        row["TimeGenerated"] = event_time(fields) or base["TimeGenerated"]
        yield _emit(row)


# control characters no text log has, and U+FFFD (bytes that are not UTF-8)
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\ufffd]")


def binary_reason(sample: str) -> str | None:
    """Why ``sample`` is binary rather than text, or None: NUL characters, or more than 30 %
    control characters / invalid UTF-8 (a Latin-1 log line with a few accents stays text)."""
    if not sample:
        return None
    if "\x00" in sample:
        return "it holds NUL bytes"
    if "\ufffd" not in sample and not _NOT_TEXT.search(sample):
        return None
    bad = len(_NOT_TEXT.findall(sample))
    if bad * 10 > len(sample) * 3:
        return f"{bad} of {len(sample)} characters are control characters or not UTF-8"
    return None


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    why = binary_reason(text.head[:8192])
    if why is not None:
        # binary bytes never become rows: an unknown compression, an archive or a binary
        # format that no parser claimed
        what = "Parquet outside a VPC Flow Logs key" if text.head.startswith("PAR1") else \
            "unknown binary content"
        raise ObjectReadError(f"s3://{ctx.bucket}/{ctx.key}: unsupported compression/container: "
                              f"{what} (starts with "
                              f"{text.head[:16]!r}; {why}); not ingested as raw text")
    fallback = key_time(ctx.key) or ctx.event_time
    if _is_json(text.head):
        yield from _json_rows(text, _base(ctx, fallback, "json"))
        return
    names = _csv_header(text.head, ctx.key)
    if names is not None:
        yield from _csv_rows(text, _base(ctx, fallback, "csv"), names)
        return
    base = _base(ctx, fallback, "text")
    for n, line in enumerate(text.lines(), start=1):
        if not line.strip():
            continue
        why = binary_reason(line) if "\x00" in line or "\ufffd" in line else None
        if why is not None:
            yield Rejected(n, f"binary data in a text object ({why})", line[:200])
            continue
        fields = None
        if line.lstrip().startswith("{"):
            try:
                fields = json.loads(line)
            except ValueError:
                fields = None
        row = dict(base, LineNumber=n, RawData=_clip(line), Fields=fields)
        row["TimeGenerated"] = event_time(fields) or fallback
        yield _emit(row)


RAW = Format(name="raw", table="AWSS3Raw_CL", parse=parse, sniff=lambda head: True,
             content_detectable=False,
             description="anything else: JSON values, CSV rows or text lines with S3 metadata")
