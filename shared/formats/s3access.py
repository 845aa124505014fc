"""Amazon S3 server access logs -> AWSS3ServerAccess.

Space-separated lines; the time is ``[06/Feb/2019:00:00:38 +0000]``, the request URI, referrer
and user agent are quoted, ``-`` means "no value". S3 has added fields at the end over the
years, so the number of trailing fields varies (fewer: the columns stay empty; more, such as
the newer source region: ignored). Key: ``<TargetPrefix>YYYY-MM-DD-HH-MM-SS-<UniqueString>``.
Microsoft's connector uses the built-in stream without a transform; the columns follow the
live table. ``BytesSent``/``ObjectSize``/``TotalTime`` are int columns there: a value beyond
2^31-1 (objects over 2 GiB) has no place in the table and is dropped rather than refused.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from ..errors import FormatError
from ..reader import TextSource
from .base import (
    CACHE_KEY_MAX,
    Format,
    Item,
    ObjectContext,
    field_lines,
    iso,
    tolerant_sniff,
)
from .columns import fields_mapper

KEY = re.compile(r"(^|/)\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-Z]{16}$")
_LINE = re.compile(r"^\S+ \S+ \[\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] ")
_STAMP = re.compile(r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")
MONTHS = {m: i for i, m in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
COLUMNS = ("BucketOwner", "Bucket", None, "RemoteIp", "Requester", "RequestId", "Operation",
           "Key", "RequestUri", "HttpStatus", "ErrorCode", "BytesSent", "ObjectSize",
           "TotalTime", "TurnAroundTime", "Referer", "UserAgent", "VersionId", "HostId",
           "SignatureVersion", "CipherSuite", "AuthenticationType", "HostHeader", "TLSVersion",
           "AccessPointARN", "ACLRequired")
INTS = {"HttpStatus", "BytesSent", "ObjectSize", "TotalTime"}
MIN_FIELDS = 10


def sniff(head: str) -> bool:
    return bool(_LINE.match(head.lstrip()))


# recent answers of log_time: the lines of one log share their seconds (bounded; a plain dict
# is safe to share between the worker's threads)
_LOG_TIMES: dict[str, str | None] = {}


def log_time(value: str) -> str | None:
    try:
        return _LOG_TIMES[value]
    except KeyError:
        pass
    stamp = _log_time(value)
    if len(value) <= CACHE_KEY_MAX:
        if len(_LOG_TIMES) >= 8192:
            _LOG_TIMES.clear()
        _LOG_TIMES[value] = stamp
    return stamp


# "dd/Mon/yyyy:HH:MM" -> "yyyy-mm-ddTHH:MM:" (None: not a time); bounded like _LOG_TIMES
_MINUTES: dict[str, str | None] = {}


def _log_time(value: str) -> str | None:
    # what S3 writes, dd/Mon/yyyy:HH:MM:SS +0000: the minute parsed once (by the full path
    # below, seconds 00), the seconds checked and appended; any other shape: the full path
    if len(value) == 26 and value[20:] == " +0000" and value[17] == ":":
        second = value[18:20]
        if second.isascii() and second.isdigit() and second < "60":
            minute = value[:17]
            try:
                prefix = _MINUTES[minute]
            except KeyError:
                stamp = _parse_stamp(minute + ":00 +0000")
                prefix = stamp[:-3] if stamp is not None else None  # "...:MM:00Z" -> "...:MM:"
                if len(_MINUTES) >= 4096:
                    _MINUTES.clear()
                _MINUTES[minute] = prefix
            return None if prefix is None else prefix + second + "Z"
    return _parse_stamp(value)


def _parse_stamp(value: str) -> str | None:
    m = _STAMP.match(value.strip())
    if not m or m.group(2).title() not in MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    try:
        offset = timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
        dt = datetime(int(year), MONTHS[mon.title()], int(day), int(hh), int(mm), int(ss),
                      tzinfo=timezone(offset))
    except ValueError:
        return None
    return iso(dt)


map_fields = fields_mapper(
    "map_fields", len(COLUMNS), "_log_time(f[2]) if f[2] is not None else None",
    tuple((i, column, "int32" if column in INTS else "text")
          for i, column in enumerate(COLUMNS) if column is not None),
    scope={"_log_time": log_time})


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(sniff, text.head):
        raise FormatError("S3 server access log lines must start with "
                          "'<owner> <bucket> [dd/Mon/yyyy:HH:MM:SS +0000] '")
    yield from field_lines(text, "S3 access log", MIN_FIELDS, map_fields)


S3_ACCESS = Format(name="s3-access", table="AWSS3ServerAccess", parse=parse, sniff=sniff,
                   key_pattern=KEY, description="S3 server access logs")
