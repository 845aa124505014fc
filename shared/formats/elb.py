"""Elastic Load Balancing access logs -> AWSALBAccessLogs / AWSNLBAccessLogs / custom table.

All three are space-separated lines with ``"quoted"`` fields and ``-`` for "no value"; AWS
appends new fields at the end over time, so a line may carry more fields than listed here
(ignored) or fewer (the missing columns stay empty). Microsoft's ELB connector sends these to
the built-in streams without a published transform, so the columns follow the table
documentation; ``TimeGenerated`` is the event's own time (ALB: ``request_creation_time``, when
the load balancer received the request, as the table reference defines it, else ``time``;
NLB: the line's ``time``, end of the TLS connection).

* ALB: ``..._elasticloadbalancing_<region>_app.<name>.<id>_<YYYYMMDDTHHmmZ>_<ip>_<rand>.log.gz``
* NLB (TLS listeners only): ``..._net.<name>.<id>_<time>_<rand>.log.gz``
* Classic ELB: ``..._<name>_<time>_<ip>_<rand>.log`` (not gzipped) -> ``AWSELBClassicAccessLogs_CL``
  (no standard table exists for it).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from ..errors import FormatError
from ..reader import TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    field_lines,
    split_fields,
    tolerant_sniff,
    when,
)
from .columns import fields_mapper

_ELB = r"(^|/)\d{12}_elasticloadbalancing_[a-z0-9-]+_"
ALB_KEY = re.compile(_ELB + r"app\.[^_/]+_\d{8}T\d{4}Z_")
NLB_KEY = re.compile(_ELB + r"net\.[^_/]+_\d{8}T\d{4}Z_")
CLASSIC_KEY = re.compile(_ELB + r"(?!app\.|net\.)[^_/]+_\d{8}T\d{4}Z_")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")
ALB_TYPES = {"http", "https", "h2", "grpcs", "ws", "wss"}
_fromiso = datetime.fromisoformat


def _first_line(head: str) -> list[str]:
    for line in head.split("\n")[:5]:
        if line.strip():
            return split_fields(line)
    return []


def _utc(value: str | None) -> str | None:
    """ELB times are UTC; NLB writes them without the Z."""
    # ALB / classic ELB: YYYY-MM-DDTHH:MM:SS.ffffffZ, NLB: YYYY-MM-DDTHH:MM:SS, a new value on
    # almost every line: told by its punctuation and fromisoformat (it reads ASCII digits
    # only, the fraction's too) instead of two regexes and the cache, the same answer as
    # below (what iso_from_text keeps as it is; a .000000 fraction it drops: told by the
    # microsecond fromisoformat read, not by a slice of the text)
    if value.__class__ is str:
        size = len(value)
        if size == 27:
            if value[26] == "Z" and value[4:20:3] == "--T::.":
                try:  # 6 ASCII digits of fraction: microsecond 0 is ".000000"
                    if _fromiso(value).microsecond:
                        return value
                except ValueError:
                    pass
        elif size == 19:
            if value[4::3] == "--T::":
                stamp = value + "Z"
                try:
                    _fromiso(stamp)
                    return stamp
                except ValueError:
                    pass
    if value is None or not _TIME.match(value):
        return None
    return when(value if value.endswith("Z") else value + "Z")


# ---- ALB -----------------------------------------------------------------------------------

def alb_sniff(head: str) -> bool:
    f = _first_line(head)
    return len(f) >= 12 and f[0] in ALB_TYPES and bool(_TIME.match(f[1]))


ALB_COLUMNS = (
    (0, "ALBType", "text"), (2, "Alb", "text"), (3, ("ClientIp", "ClientPort"), "hostport"),
    (4, ("TargetIp", "TargetPort"), "hostport"), (5, "RequestProcessingTime", "text"),
    (6, "TargetProcessingTime", "text"), (7, "ResponseProcessingTime", "text"),
    (8, "ElbStatusCode", "int32"), (9, "TargetStatusCode", "text"),
    (10, "ReceivedBytes", "int64"), (11, "SentBytes", "int64"),
    *((i, column, "text") for i, column in enumerate((
        "RequestRaw", "UserAgent", "SslCipher", "SslProtocol", "TargetGroupArn", "TraceId",
        "DomainName", "ChosenCertArn", "MatchedRulePriority", "RequestCreationTime",
        "ActionsExecuted", "RedirectUrl", "LambdaErrorReason", "TargetPortList",
        "TargetStatusCodeList", "Classification", "ClassificationReason", "ConnTraceId"),
        start=12)))
# the table: "the time when the load balancer received the request", which AWS logs as
# request_creation_time; `time` (response sent) when that field is absent
alb_row = fields_mapper("alb_row", 30, "_utc(f[21]) or _utc(f[1])", ALB_COLUMNS,
                        scope={"_utc": _utc})


def alb_parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(alb_sniff, text.head):
        raise FormatError("ALB access log lines must start with the request type "
                          "(http/https/h2/grpcs/ws/wss) and an ISO time")
    yield from field_lines(text, "ALB access log", 12, alb_row)


# ---- NLB -----------------------------------------------------------------------------------

def nlb_sniff(head: str) -> bool:
    f = _first_line(head)
    return len(f) >= 11 and f[0] == "tls" and bool(re.fullmatch(r"\d+\.\d+", f[1])) \
        and bool(_TIME.match(f[2]))


NLB_COLUMNS = tuple((i, column, "text") for i, column in (
    (0, "NLBType"), (1, "Version"), (3, "Nlb"), (4, "Listener"), (5, "ClientIPPort"),
    (6, "TargetIPPort"), (7, "ConnectionTime"), (8, "TlsHandshakeTime"), (9, "ReceivedBytes"),
    (10, "SentBytes"), (11, "IncomingTLSAlert"), (12, "ChosenCertArn"),
    (13, "ChosenCertSerial"), (14, "TLSCipher"), (15, "TLSProtocolVersion"),
    (16, "TLSNamedGroup"), (17, "DomainName"), (18, "ALPNFEProtocol"), (19, "ALPNBEProtocol"),
    (20, "ALPNClientPrefList"), (21, "TLSConnectionCreationTime")))
nlb_row = fields_mapper("nlb_row", 22, "_utc(f[2])", NLB_COLUMNS, scope={"_utc": _utc})


def nlb_parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(nlb_sniff, text.head):
        raise FormatError("NLB access log lines must start with 'tls <version> <time>'")
    yield from field_lines(text, "NLB access log", 11, nlb_row)


# ---- Classic ELB ---------------------------------------------------------------------------

def classic_sniff(head: str) -> bool:
    f = _first_line(head)
    return len(f) >= 13 and bool(_TIME.match(f[0])) and f[0].endswith("Z") \
        and ":" in f[2]


CLASSIC_COLUMNS = (
    (1, "Elb", "text"), (2, ("ClientIp", "ClientPort"), "hostport"),
    (3, ("BackendIp", "BackendPort"), "hostport"), (4, "RequestProcessingTime", "real"),
    (5, "BackendProcessingTime", "real"), (6, "ResponseProcessingTime", "real"),
    (7, "ElbStatusCode", "int32"), (8, "BackendStatusCode", "int32"),
    (9, "ReceivedBytes", "int64"), (10, "SentBytes", "int64"))
# the request line (kept as written unless it is "-" / "- - -") and its three parts (by
# partition), the user agent and TLS fields, then the columns of the
# object the row came from (``origin``: one dict per object, see _origin)
_CLASSIC_REQUEST = """v = f[11]
if v is not None and v.strip() not in ('-', '- - -'):
    row['RequestRaw'] = v
    method, _, rest = v.partition(' ')
    if method and method != '-':
        row['RequestMethod'] = method
    url, _, protocol = rest.partition(' ')
    if url and url != '-':
        row['RequestUrl'] = url
    protocol = protocol.strip()
    if protocol and protocol != '-':
        row['RequestProtocol'] = protocol"""
_classic_map = fields_mapper("classic_map", 15, "_utc(f[0])", (
    *CLASSIC_COLUMNS, _CLASSIC_REQUEST, (12, "UserAgent", "text"), (13, "SslCipher", "text"),
    (14, "SslProtocol", "text"), "if origin:\n    row.update(origin)"),
    args="origin, f", scope={"_utc": _utc})


def _origin(ctx: ObjectContext | None) -> dict[str, str]:
    """SourceName, S3Bucket, S3Key of the object (those that are not None)."""
    if ctx is None:
        return {}
    return {column: value for column, value in (
        ("SourceName", ctx.source), ("S3Bucket", ctx.bucket), ("S3Key", ctx.key))
        if value is not None}


def classic_row(f: list[str], ctx: ObjectContext | None = None) -> dict[str, object]:
    return _classic_map(_origin(ctx), f)


def classic_parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    """``field_lines(text, "classic ELB access log", 13, ...)`` with the usual classic line
    split inline: plain fields, the quoted request, one space, the quoted user agent, plain
    fields (four quotes; a space before the first, one space between the two quoted texts,
    the end of the line or a space after the last; no backslash; no "[", without which no
    field is bracketed). ``split_fields`` gives exactly these fields for such a line (its
    unspaced-quotes path, tried first when the request holds no space, gives the same);
    every other line is split by ``split_fields`` itself. The loop is here, not in a
    generator of its own (``yield from`` cost 0.15-0.25 us a line)."""
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(classic_sniff, text.head):
        raise FormatError("classic ELB access log lines must start with an ISO time, the "
                          "load balancer name and client:port")
    origin = _origin(ctx)
    split, mapper = split_fields, _classic_map
    for n, line in enumerate(text.lines(), start=1):
        segs = line.split('"')
        if (len(segs) == 5 and segs[2] == " " and segs[0][-1:] == " "
                and (not (tail := segs[4]) or tail[0] == " ")
                and "\\" not in line and "[" not in line):
            fields = segs[0].split()
            fields += (segs[1], segs[3])
            if tail:
                fields += tail.split()
        elif not line or line.isspace():  # (a line with quotes is not blank)
            continue
        else:
            fields = split(line)
        if len(fields) < 13:
            yield Rejected(n, f"classic ELB access log line has {len(fields)} fields, "
                              "expected at least 13", line)
            continue
        row = mapper(origin, fields)
        if "TimeGenerated" not in row:
            yield Rejected(n, "classic ELB access log line has no valid time", line)
            continue
        yield row


ALB = Format(name="alb", table="AWSALBAccessLogs", parse=alb_parse, sniff=alb_sniff,
             key_pattern=ALB_KEY, description="Application Load Balancer access logs")
NLB = Format(name="nlb", table="AWSNLBAccessLogs", parse=nlb_parse, sniff=nlb_sniff,
             key_pattern=NLB_KEY, description="Network Load Balancer access logs (TLS)")
ELB_CLASSIC = Format(
    name="elb-classic", table="AWSELBClassicAccessLogs_CL", parse=classic_parse,
    sniff=classic_sniff, key_pattern=CLASSIC_KEY,
    description="Classic Load Balancer access logs (custom table: no standard one exists)")
