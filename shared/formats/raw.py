"""Fallback: any text object into the custom table AWSS3Raw_CL, one row per line.

JSON lines keep their parsed object in ``Fields`` (dynamic) so analysts can query them with
KQL; ``TimeGenerated`` comes from a recognisable time field when there is one, otherwise
from the object's S3 event time (never the ingestion time).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..reader import TextSource
from .base import Format, Item, ObjectContext, iso_from_epoch, iso_from_epoch_ms, iso_from_text

TIME_FIELDS = ("eventTime", "timestamp", "time", "@timestamp", "Timestamp", "eventTimestamp",
               "event_timestamp", "date", "createdAt", "updatedAt")


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


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    fallback = ctx.event_time
    for n, line in enumerate(text.lines(), start=1):
        if not line.strip():
            continue
        fields = None
        stripped = line.lstrip()
        if stripped.startswith("{"):
            try:
                fields = json.loads(line)
            except ValueError:
                fields = None
        row: dict[str, Any] = {
            "TimeGenerated": event_time(fields) or fallback,
            "RawData": line,
            "Format": "raw",
            "LineNumber": n,
            "SourceName": ctx.source,
            "S3Bucket": ctx.bucket,
            "S3Key": ctx.key,
            "AccountId": ctx.account_id,
        }
        if fields is not None:
            row["Fields"] = fields
        yield {k: v for k, v in row.items() if v is not None}


RAW = Format(name="raw", table="AWSS3Raw_CL", parse=parse, sniff=lambda head: True,
             content_detectable=False,
             description="anything else: one row per line, JSON lines parsed into Fields")
