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
from typing import Any

from ..errors import FormatError
from ..reader import TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    compact,
    dash,
    field_lines,
    int32,
    int64,
    real,
    split_fields,
    tolerant_sniff,
    when,
)

_ELB = r"(^|/)\d{12}_elasticloadbalancing_[a-z0-9-]+_"
ALB_KEY = re.compile(_ELB + r"app\.[^_/]+_\d{8}T\d{4}Z_")
NLB_KEY = re.compile(_ELB + r"net\.[^_/]+_\d{8}T\d{4}Z_")
CLASSIC_KEY = re.compile(_ELB + r"(?!app\.|net\.)[^_/]+_\d{8}T\d{4}Z_")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")
ALB_TYPES = {"http", "https", "h2", "grpcs", "ws", "wss"}


def _first_line(head: str) -> list[str]:
    for line in head.split("\n")[:5]:
        if line.strip():
            return split_fields(line)
    return []


def _ip_port(value: str | None) -> tuple[str | None, int | None]:
    value = dash(value)
    if value is None:
        return None, None
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or None, int32(port)


def _utc(value: str | None) -> str | None:
    """ELB times are UTC; NLB writes them without the Z."""
    if value is None or not _TIME.match(value):
        return None
    return when(value if value.endswith("Z") else value + "Z")


# ---- ALB -----------------------------------------------------------------------------------

def alb_sniff(head: str) -> bool:
    f = _first_line(head)
    return len(f) >= 12 and f[0] in ALB_TYPES and bool(_TIME.match(f[1]))


def alb_row(f: list[str]) -> dict[str, Any]:
    g = f + [None] * (30 - len(f))  # type: ignore[list-item]
    client_ip, client_port = _ip_port(g[3])
    target_ip, target_port = _ip_port(g[4])
    return compact({
        # the table: "the time when the load balancer received the request", which AWS logs
        # as request_creation_time; `time` (response sent) when that field is absent
        "TimeGenerated": _utc(g[21]) or _utc(g[1]),
        "ALBType": dash(g[0]),
        "Alb": dash(g[2]),
        "ClientIp": client_ip,
        "ClientPort": client_port,
        "TargetIp": target_ip,
        "TargetPort": target_port,
        "RequestProcessingTime": dash(g[5]),
        "TargetProcessingTime": dash(g[6]),
        "ResponseProcessingTime": dash(g[7]),
        "ElbStatusCode": int32(g[8]),
        "TargetStatusCode": dash(g[9]),
        "ReceivedBytes": int64(g[10]),
        "SentBytes": int64(g[11]),
        "RequestRaw": dash(g[12]),
        "UserAgent": dash(g[13]),
        "SslCipher": dash(g[14]),
        "SslProtocol": dash(g[15]),
        "TargetGroupArn": dash(g[16]),
        "TraceId": dash(g[17]),
        "DomainName": dash(g[18]),
        "ChosenCertArn": dash(g[19]),
        "MatchedRulePriority": dash(g[20]),
        "RequestCreationTime": dash(g[21]),
        "ActionsExecuted": dash(g[22]),
        "RedirectUrl": dash(g[23]),
        "LambdaErrorReason": dash(g[24]),
        "TargetPortList": dash(g[25]),
        "TargetStatusCodeList": dash(g[26]),
        "Classification": dash(g[27]),
        "ClassificationReason": dash(g[28]),
        "ConnTraceId": dash(g[29]),
    })


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


def nlb_row(f: list[str]) -> dict[str, Any]:
    g = f + [None] * (22 - len(f))  # type: ignore[list-item]
    return compact({
        "TimeGenerated": _utc(g[2]),
        "NLBType": dash(g[0]),
        "Version": dash(g[1]),
        "Nlb": dash(g[3]),
        "Listener": dash(g[4]),
        "ClientIPPort": dash(g[5]),
        "TargetIPPort": dash(g[6]),
        "ConnectionTime": dash(g[7]),
        "TlsHandshakeTime": dash(g[8]),
        "ReceivedBytes": dash(g[9]),
        "SentBytes": dash(g[10]),
        "IncomingTLSAlert": dash(g[11]),
        "ChosenCertArn": dash(g[12]),
        "ChosenCertSerial": dash(g[13]),
        "TLSCipher": dash(g[14]),
        "TLSProtocolVersion": dash(g[15]),
        "TLSNamedGroup": dash(g[16]),
        "DomainName": dash(g[17]),
        "ALPNFEProtocol": dash(g[18]),
        "ALPNBEProtocol": dash(g[19]),
        "ALPNClientPrefList": dash(g[20]),
        "TLSConnectionCreationTime": dash(g[21]),
    })


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


def _request_parts(request: str | None) -> tuple[str | None, str | None, str | None]:
    parts = (request or "").split(" ")
    parts += [""] * (3 - len(parts))
    return dash(parts[0]), dash(parts[1]), dash(" ".join(parts[2:]).strip())


def classic_row(f: list[str], ctx: ObjectContext | None = None) -> dict[str, Any]:
    g = f + [None] * (15 - len(f))  # type: ignore[list-item]
    client_ip, client_port = _ip_port(g[2])
    backend_ip, backend_port = _ip_port(g[3])
    request = g[11] if g[11] is not None and g[11].strip() not in ("-", "- - -") else None
    method, url, protocol = _request_parts(request)
    return compact({
        "TimeGenerated": _utc(g[0]),
        "Elb": dash(g[1]),
        "ClientIp": client_ip,
        "ClientPort": client_port,
        "BackendIp": backend_ip,
        "BackendPort": backend_port,
        "RequestProcessingTime": real(g[4]),
        "BackendProcessingTime": real(g[5]),
        "ResponseProcessingTime": real(g[6]),
        "ElbStatusCode": int32(g[7]),
        "BackendStatusCode": int32(g[8]),
        "ReceivedBytes": int64(g[9]),
        "SentBytes": int64(g[10]),
        "RequestRaw": request,
        "RequestMethod": method,
        "RequestUrl": url,
        "RequestProtocol": protocol,
        "UserAgent": dash(g[12]),
        "SslCipher": dash(g[13]),
        "SslProtocol": dash(g[14]),
        "SourceName": ctx.source if ctx else None,
        "S3Bucket": ctx.bucket if ctx else None,
        "S3Key": ctx.key if ctx else None,
    })


def classic_parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(classic_sniff, text.head):
        raise FormatError("classic ELB access log lines must start with an ISO time, the "
                          "load balancer name and client:port")
    yield from field_lines(text, "classic ELB access log", 13, lambda f: classic_row(f, ctx))


ALB = Format(name="alb", table="AWSALBAccessLogs", parse=alb_parse, sniff=alb_sniff,
             key_pattern=ALB_KEY, description="Application Load Balancer access logs")
NLB = Format(name="nlb", table="AWSNLBAccessLogs", parse=nlb_parse, sniff=nlb_sniff,
             key_pattern=NLB_KEY, description="Network Load Balancer access logs (TLS)")
ELB_CLASSIC = Format(
    name="elb-classic", table="AWSELBClassicAccessLogs_CL", parse=classic_parse,
    sniff=classic_sniff, key_pattern=CLASSIC_KEY,
    description="Classic Load Balancer access logs (custom table: no standard one exists)")
