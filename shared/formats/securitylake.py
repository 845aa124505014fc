"""Amazon Security Lake: OCSF events in Parquet -> the Sentinel table of each OCSF class.

Security Lake writes ``aws/<SOURCE>/<version>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/
<file>.parquet`` for AWS sources (``ext/<source>/...`` for custom ones) and announces each
object to the subscriber's SQS queue (EventBridge ``Object Created`` events, read by
``notifications``). The source folder is AWS's own key layout, so it decides the table and, for
CloudTrail and Security Hub, vouches for the rows (``provenance``); the OCSF ``class_uid`` of
every event is checked against it:

===============================  ==================  ============================  ==========
source folder                    OCSF classes        table                         format
===============================  ==================  ============================  ==========
CLOUD_TRAIL_MGMT, S3_DATA,       6003 API Activity   AWSCloudTrail                 ocsf-api
LAMBDA_EXECUTION (CLOUD_TRAIL)   (3001, 3002, 3005)
VPC_FLOW                         4001 Network Act.   AWSVPCFlow                    ocsf-network
ROUTE53                          4003 DNS Activity   AWSRoute53Resolver            ocsf-dns
SH_FINDINGS                      2001, 2003, 2004    AWSSecurityHubFindings        ocsf-finding
anything else (EKS_AUDIT, WAF,   any                 AWSSecurityLakeOCSF_CL (the   ocsf
ext/...)                                             OCSF fields kept)
===============================  ==================  ============================  ==========

An event of another class in a folder is rejected with the reason (route such a custom source
with ``formatRules`` to ``ocsf``). The OCSF field names of 1.1 (Security Lake 2.0) and of
1.0.0-rc.2 (Security Lake 1.0, where ``actor.user.uid`` was the principal id and
``actor.user.uuid`` the ARN) are both read.

The Parquet object is streamed, never a row group whole (Security Lake writes row groups of
~128 MB): pages of the columns the class's mapper reads (``COLUMNS``; every column for ``ocsf``,
which keeps the whole event) are read in ``READ_BUFFER`` pieces without pyarrow's pre-buffering,
and ``ROW_BATCH`` rows at a time become Python objects (benchmarks/RESULTS.md, "Security Lake").
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..errors import FormatError
from ..parquet_source import parquet_rows
from ..reader import TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    compact,
    int32,
    int64,
    iso,
    json_text,
    kql_string,
    when,
    when_epoch,
)

_LAYOUT = (r"/(?:\d+(?:\.\d+)*/)?region=[a-z0-9-]+/accountId=\d{12}/eventDay=\d{8}/"
           r"[^/]+$")
CLOUDTRAIL_SOURCES = ("CLOUD_TRAIL_MGMT", "CLOUD_TRAIL", "S3_DATA", "LAMBDA_EXECUTION")


def _key(sources: str) -> re.Pattern[str]:
    return re.compile(r"(^|/)aws/(" + sources + r")" + _LAYOUT)


KEY_ANY = re.compile(r"(^|/)(aws|ext)/[A-Za-z0-9_.-]+" + _LAYOUT)
_SOURCE = re.compile(r"(?:^|/)(aws|ext)/([A-Za-z0-9_.-]+)/")

API_CLASSES = {6003: "API Activity", 3005: "API Activity (OCSF 1.0.0-rc.2)",
               3001: "Account Change", 3002: "Authentication"}
FINDING_CLASSES = {2001: "Security Finding", 2003: "Compliance Finding",
                   2004: "Detection Finding"}
ROW_BATCH = 1_000  # rows converted to Python at a time
READ_BUFFER = 256 << 10  # a column chunk is read in pieces of this size, not whole (per column)

# the top-level OCSF fields each mapper reads (besides class_uid/class_name/time for every
# class): only these columns are read and decoded. A field missing here is a column left empty:
# tests/test_security_lake.py maps every fixture with and without the projection.
_COMMON = ("class_uid", "class_name", "time", "metadata", "cloud", "unmapped")
COLUMNS: dict[str, tuple[str, ...]] = {
    "api": _COMMON + ("time_dt", "actor", "api", "src_endpoint", "http_request", "resources",
                      "tls"),
    "network": _COMMON + ("start_time", "end_time", "src_endpoint", "dst_endpoint",
                          "connection_info", "traffic", "disposition", "activity_name",
                          "status_code"),
    "dns": _COMMON + ("src_endpoint", "dst_endpoint", "answers", "query", "rcode",
                      "connection_info"),
    "finding": _COMMON + ("finding_info", "finding", "compliance", "severity", "state",
                          "remediation", "resources"),
}


def sniff(head: str) -> bool:
    return head.startswith("PAR1")


def source_name(key: str) -> str | None:
    m = _SOURCE.search(key)
    return f"{m.group(1)}/{m.group(2)}" if m else None


# ---- reading ---------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A Parquet value as JSON-ready Python (timestamps ISO, maps as objects)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):
            return {str(k): _plain(v) for k, v in value}  # a Parquet map
        return [_plain(v) for v in value]
    return value


def records(data: bytes | Any, columns: tuple[str, ...] | None = None
            ) -> Iterator[dict[str, Any]]:
    """Every row of a Parquet object as a dict, streamed a few pages at a time
    (``parquet_source.parquet_rows``). ``data`` is the object's bytes or a seekable binary file;
    ``columns``: the top-level fields to read (None: all of them)."""
    for rows in parquet_rows(data, "Security Lake object", batch_rows=ROW_BATCH,
                             read_buffer=READ_BUFFER, columns=columns):
        for row in rows:
            yield _plain(row)


# ---- field access ------------------------------------------------------------------------

def get(obj: Any, path: str) -> Any:
    for name in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def first(obj: Any, *paths: str) -> Any:
    for path in paths:
        value = get(obj, path)
        if value not in (None, "", "-"):
            return value
    return None


def ocsf_time(value: Any) -> str | None:
    """OCSF timestamps: epoch milliseconds (numbers) or a Parquet timestamp (ISO text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return when_epoch(value, millis=True)
    return when(value)


def _legacy(ev: dict[str, Any]) -> bool:
    """OCSF before 1.0 GA (Security Lake 1.0): actor.user.uid was the principal id."""
    version = str(get(ev, "metadata.version") or "")
    return version.startswith(("0.", "1.0.0-rc"))


def _unmapped(ev: dict[str, Any]) -> dict[str, Any]:
    value = ev.get("unmapped")
    if isinstance(value, list):  # a map written as [[key, value], ...]
        value = {str(p[0]): p[1] for p in value if isinstance(p, (list, tuple)) and len(p) == 2}
    return value if isinstance(value, dict) else {}


def _json_or_text(value: Any) -> str | None:
    """A CloudTrail JSON column: OCSF carries objects, or the JSON text in unmapped."""
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json_text(value)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _account(ev: dict[str, Any]) -> Any:
    return first(ev, "cloud.account.uid", "cloud.account_uid")


# ---- class mappers -----------------------------------------------------------------------

def map_api_activity(ev: dict[str, Any]) -> dict[str, Any]:
    """OCSF API Activity (CloudTrail) -> AWSCloudTrail: the inverse of Security Lake's mapping
    of a CloudTrail event, so the columns Sentinel's analytic rules read are filled."""
    um = _unmapped(ev)
    legacy = _legacy(ev)
    user = get(ev, "actor.user") or {}
    arn = user.get("uuid") if legacy else user.get("uid")
    principal = user.get("uid") if legacy else user.get("uid_alt")
    resources = ev.get("resources")
    row = {
        "TimeGenerated": ocsf_time(ev.get("time")) or ocsf_time(ev.get("time_dt")),
        "OperationName": "CloudTrail",
        "EventVersion": kql_string(get(ev, "metadata.product.version")),
        "AwsEventId": kql_string(get(ev, "metadata.uid")),
        "Category": kql_string(get(ev, "metadata.product.feature.name")),
        "EventName": kql_string(get(ev, "api.operation")),
        "EventSource": kql_string(get(ev, "api.service.name")),
        "APIVersion": kql_string(get(ev, "api.version")),
        "AwsRequestId_": kql_string(get(ev, "api.request.uid")),
        "ErrorCode": kql_string(first(ev, "api.response.error") or um.get("errorCode")),
        "ErrorMessage": kql_string(first(ev, "api.response.message") or um.get("errorMessage")),
        "RequestParameters": _json_or_text(get(ev, "api.request.data")
                                           or um.get("requestParameters")),
        "ResponseElements": _json_or_text(get(ev, "api.response.data")
                                          or um.get("responseElements")),
        "AdditionalEventData": _json_or_text(um.get("additionalEventData")),
        "ServiceEventDetails": _json_or_text(um.get("serviceEventDetails")),
        "AWSRegion": kql_string(get(ev, "cloud.region")),
        "RecipientAccountId": kql_string(_account(ev) or um.get("recipientAccountId")),
        "SourceIpAddress": kql_string(first(ev, "src_endpoint.ip", "src_endpoint.domain")),
        "VpcEndpointId": kql_string(get(ev, "src_endpoint.uid")),
        "UserAgent": kql_string(get(ev, "http_request.user_agent")),
        "UserIdentityType": kql_string(user.get("type")),
        "UserIdentityUserName": kql_string(user.get("name")),
        "UserIdentityArn": kql_string(arn),
        "UserIdentityPrincipalid": kql_string(principal),
        "UserIdentityAccountId": kql_string(first(ev, "actor.user.account.uid",
                                                  "actor.user.account_uid")),
        "UserIdentityAccessKeyId": kql_string(user.get("credential_uid")),
        "UserIdentityInvokedBy": kql_string(first(ev, "actor.invoked_by",
                                                  "actor.app_name")),
        "SessionMfaAuthenticated": _bool(first(ev, "actor.session.is_mfa",
                                               "actor.session.mfa")),
        "SessionCreationDate": ocsf_time(first(ev, "actor.session.created_time",
                                               "actor.session.created_time_dt")),
        "SessionIssuerArn": kql_string(get(ev, "actor.session.issuer")),
        "EventTypeName": kql_string(um.get("eventType")),
        "ReadOnly": _bool(um.get("readOnly")),
        "ManagementEvent": _bool(um.get("managementEvent")),
        "SharedEventId": kql_string(um.get("sharedEventID")),
        "TlsVersion": kql_string(get(ev, "tls.version")),
        "CipherSuite": kql_string(get(ev, "tls.cipher")),
        "ClientProvidedHostHeader": kql_string(get(ev, "http_request.url.hostname")),
        "Resources": json_text([compact({"ARN": r.get("uid"),
                                         "accountId": first(r, "account_uid", "owner.account.uid"),
                                         "type": r.get("type")})
                                for r in resources if isinstance(r, dict)])
        if isinstance(resources, list) and resources else None,
    }
    return compact(row)


_DIRECTION = {"Inbound": "ingress", "Outbound": "egress"}
_ACTION = {"Allowed": "ACCEPT", "Blocked": "REJECT", "Accept": "ACCEPT", "Refuse": "REJECT"}


def map_network_activity(ev: dict[str, Any]) -> dict[str, Any]:
    """OCSF Network Activity (VPC Flow Logs) -> AWSVPCFlow."""
    um = _unmapped(ev)
    src, dst = ev.get("src_endpoint") or {}, ev.get("dst_endpoint") or {}
    conn = ev.get("connection_info") or {}

    def either(name: str) -> Any:  # the ENI's side: the source, else the destination
        return first(src, name) or first(dst, name)

    pkt_src = src.get("intermediate_ips")
    pkt_dst = dst.get("intermediate_ips")
    start = ocsf_time(ev.get("start_time"))
    row = {
        "TimeGenerated": start or ocsf_time(ev.get("time")) or ocsf_time(ev.get("end_time")),
        "Start": start,
        "End": ocsf_time(ev.get("end_time")),
        "Version": int32(get(ev, "metadata.product.version")),
        "AccountId": kql_string(_account(ev)),
        "Region": kql_string(get(ev, "cloud.region")),
        "AzId": kql_string(get(ev, "cloud.zone")),
        "InterfaceId": kql_string(either("interface_uid")),
        "VpcId": kql_string(either("vpc_uid")),
        "SubnetId": kql_string(either("subnet_uid")),
        "InstanceId": kql_string(either("instance_uid")),
        "SrcAddr": kql_string(src.get("ip")),
        "DstAddr": kql_string(dst.get("ip")),
        "SrcPort": int32(src.get("port")),
        "DstPort": int32(dst.get("port")),
        "Protocol": int32(conn.get("protocol_num")),
        "TcpFlags": int32(conn.get("tcp_flags")),
        "TrafficType": kql_string(conn.get("protocol_ver")),
        "FlowDirection": kql_string(um.get("flow_direction")
                                    or _DIRECTION.get(conn.get("direction"))),
        "Packets": int32(get(ev, "traffic.packets")),
        "Bytes": int64(get(ev, "traffic.bytes")),
        "Action": _ACTION.get(ev.get("disposition")) or _ACTION.get(ev.get("activity_name")),
        "LogStatus": kql_string(ev.get("status_code")),
        "PktSrcAddr": kql_string(pkt_src[0]) if isinstance(pkt_src, list) and pkt_src else None,
        "PktDstAddr": kql_string(pkt_dst[0]) if isinstance(pkt_dst, list) and pkt_dst else None,
        "PktSrcAwsService": kql_string(first(src, "svc_name")),
        "PktDstAwsService": kql_string(first(dst, "svc_name")),
        "SublocationType": kql_string(um.get("sublocation_type")
                                      if um.get("sublocation_type") != "-" else None),
        "SublocationId": kql_string(um.get("sublocation_id")
                                    if um.get("sublocation_id") != "-" else None),
    }
    return compact(row)


def map_dns_activity(ev: dict[str, Any]) -> dict[str, Any]:
    """OCSF DNS Activity (Route 53 Resolver query logs) -> AWSRoute53Resolver."""
    um = _unmapped(ev)
    src, dst = ev.get("src_endpoint") or {}, ev.get("dst_endpoint") or {}
    answers = ev.get("answers")
    row = {
        "TimeGenerated": ocsf_time(ev.get("time")),
        "Version": kql_string(get(ev, "metadata.product.version")),
        "AccountId": kql_string(_account(ev)),
        "Region": kql_string(get(ev, "cloud.region")),
        "VpcId": kql_string(src.get("vpc_uid")),
        "QueryName": kql_string(get(ev, "query.hostname")),
        "QueryType": kql_string(get(ev, "query.type")),
        "QueryClass": kql_string(get(ev, "query.class")),
        "Rcode": kql_string(ev.get("rcode")),
        "Answers": [compact({"Rdata": a.get("rdata"), "Type": a.get("type"),
                             "Class": a.get("class")}) for a in answers
                    if isinstance(a, dict)] if isinstance(answers, list) else None,
        "SrcAddr": kql_string(src.get("ip")),
        "SrcPort": kql_string(src.get("port")),
        "Transport": kql_string(get(ev, "connection_info.protocol_name")),
        "SrcIds": compact({"instance": src.get("instance_uid"),
                           "resolver_endpoint": dst.get("instance_uid"),
                           "resolver_network_interface": dst.get("interface_uid")}) or None,
        "FirewallRuleAction": kql_string(um.get("firewall_rule_action")),
        "FirewallRuleGroupId": kql_string(um.get("firewall_rule_group_id")),
        "FirewallDomainListId": kql_string(um.get("firewall_domain_list_id")),
    }
    return compact(row)


def map_finding(ev: dict[str, Any]) -> dict[str, Any]:
    """OCSF Security/Compliance/Detection Finding (Security Hub) -> AWSSecurityHubFindings."""
    um = _unmapped(ev)
    info = ev.get("finding_info") or ev.get("finding") or {}
    compliance = ev.get("compliance") or {}
    severity = ev.get("severity")
    row = {
        "TimeGenerated": ocsf_time(ev.get("time")) or _info_time(info, "modified_time"),
        "AwsAccountId": kql_string(_account(ev)),
        "AwsRegion": kql_string(get(ev, "cloud.region")),
        "AwsSecurityFindingId": kql_string(info.get("uid")),
        "AwsSecurityFindingTitle": kql_string(info.get("title")),
        "AwsSecurityFindingDescription": kql_string(info.get("desc")),
        "AwsSecurityFindingTypes": info.get("types"),
        "AwsSecurityFindingCreatedAt": _info_time(info, "created_time"),
        "AwsSecurityFindingUpdatedAt": _info_time(info, "modified_time"),
        "AwsSecurityFindingFirstObservedAt": _info_time(info, "first_seen_time"),
        "AwsSecurityFindingLastObservedAt": _info_time(info, "last_seen_time"),
        "AwsSecurityFindingProductArn": kql_string(first(ev, "metadata.product.uid",
                                                         "finding_info.product_uid")),
        "AwsSecurityFindingProductName": kql_string(get(ev, "metadata.product.name")),
        "AwsSecurityFindingGeneratorId": kql_string(first(ev, "metadata.product.feature.uid",
                                                          "finding_info.analytic.uid")),
        "AwsSecurityFindingSeverity": compact({
            "Label": um.get("FindingProviderFields.Severity.Label") or severity.upper(),
            "Normalized": int32(um.get("Severity.Normalized") or um.get("Severity_Normalized")),
        }) if isinstance(severity, str) else None,
        "AwsSecurityFindingProductFields": _loads(um.get("ProductFields")),
        "ComplianceStatus": kql_string(compliance.get("status")),
        "ComplianceSecurityControlId": kql_string(compliance.get("control")),
        "ComplianceRelatedRequirements": compliance.get("requirements"),
        "ComplianceStatusReasons": _loads(um.get("Compliance_StatusReasons")),
        "ComplianceAssociatedStandards": _loads(um.get("Compliance_AssociatedStandards"))
        or compliance.get("standards"),
        "RecordState": kql_string(um.get("RecordState")),
        "WorkflowState": kql_string(um.get("WorkflowState") or ev.get("state")),
        "Remediation": info.get("remediation") or ev.get("remediation"),
        "Resources": ev.get("resources"),
        "SchemaVersion": kql_string(get(ev, "metadata.version")),
    }
    return compact(row)


def _info_time(info: dict[str, Any], name: str) -> str | None:
    return ocsf_time(info.get(name)) or ocsf_time(info.get(f"{name}_dt"))


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def map_other(ev: dict[str, Any], ctx: ObjectContext) -> dict[str, Any]:
    """Any OCSF class -> AWSSecurityLakeOCSF_CL: the common fields as columns, every field in
    ``Event``."""
    row = {
        "TimeGenerated": ocsf_time(ev.get("time")) or ocsf_time(ev.get("time_dt")),
        "ClassUid": int32(ev.get("class_uid")),
        "ClassName": kql_string(ev.get("class_name")),
        "CategoryUid": int32(ev.get("category_uid")),
        "CategoryName": kql_string(ev.get("category_name")),
        "ActivityId": int32(ev.get("activity_id")),
        "ActivityName": kql_string(ev.get("activity_name")),
        "TypeUid": int64(ev.get("type_uid")),
        "TypeName": kql_string(ev.get("type_name")),
        "SeverityId": int32(ev.get("severity_id")),
        "Severity": kql_string(ev.get("severity")),
        "StatusId": int32(ev.get("status_id")),
        "Status": kql_string(ev.get("status")),
        "Message": kql_string(ev.get("message")),
        "OcsfVersion": kql_string(get(ev, "metadata.version")),
        "ProductName": kql_string(get(ev, "metadata.product.name")),
        "VendorName": kql_string(get(ev, "metadata.product.vendor_name")),
        "AccountId": kql_string(_account(ev)),
        "Region": kql_string(get(ev, "cloud.region")),
        "Actor": ev.get("actor"),
        "SrcEndpoint": ev.get("src_endpoint"),
        "DstEndpoint": ev.get("dst_endpoint"),
        "Resources": ev.get("resources"),
        "Event": ev,
        "SourceName": source_name(ctx.key),
        "S3Bucket": ctx.bucket,
        "S3Key": ctx.key,
    }
    return compact(row)


# ---- formats -----------------------------------------------------------------------------

def _parse_text(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return iter(())  # an empty object holds no records
    raise FormatError("Security Lake objects are Parquet (OCSF); this one starts with "
                      f"{text.head.lstrip()[:40]!r}")


def _parser(classes: dict[int, str] | None, mapper: Any, what: str,
            columns: tuple[str, ...] | None = None):
    def parse_bytes(data: bytes | Any, ctx: ObjectContext) -> Iterator[Item]:
        for position, ev in enumerate(records(data, columns), start=1):
            cls = int64(ev.get("class_uid"))
            if classes is not None and cls not in classes:
                yield Rejected(position, f"OCSF class {cls} ({ev.get('class_name')}) in a "
                                         f"{source_name(ctx.key)} object, which holds "
                                         f"{what} ({', '.join(map(str, classes))}); route it "
                                         "with formatRules to 'ocsf' to keep it",
                               json_text(ev))
                continue
            row = mapper(ev, ctx) if classes is None else mapper(ev)
            if "TimeGenerated" not in row:
                yield Rejected(position, "OCSF event has no valid time", json_text(ev))
                continue
            yield row
    return parse_bytes


def _format(name: str, table: str, key: re.Pattern[str], parse_bytes: Any,
            description: str) -> Format:
    return Format(name=name, table=table, parse=_parse_text, sniff=sniff, key_pattern=key,
                  content_detectable=False, parse_bytes=parse_bytes, description=description)


OCSF_API = _format("ocsf-api", "AWSCloudTrail", _key("|".join(CLOUDTRAIL_SOURCES)),
                   _parser(API_CLASSES, map_api_activity, "API Activity", COLUMNS["api"]),
                   "Security Lake CloudTrail (OCSF API Activity, Parquet)")
OCSF_NETWORK = _format("ocsf-network", "AWSVPCFlow", _key("VPC_FLOW"),
                       _parser({4001: "Network Activity"}, map_network_activity,
                               "Network Activity", COLUMNS["network"]),
                       "Security Lake VPC Flow Logs (OCSF Network Activity, Parquet)")
OCSF_DNS = _format("ocsf-dns", "AWSRoute53Resolver", _key("ROUTE53"),
                   _parser({4003: "DNS Activity"}, map_dns_activity, "DNS Activity",
                           COLUMNS["dns"]),
                   "Security Lake Route 53 Resolver (OCSF DNS Activity, Parquet)")
OCSF_FINDING = _format("ocsf-finding", "AWSSecurityHubFindings", _key("SH_FINDINGS"),
                       _parser(FINDING_CLASSES, map_finding, "findings", COLUMNS["finding"]),
                       "Security Lake Security Hub findings (OCSF findings, Parquet)")
OCSF_OTHER = _format("ocsf", "AWSSecurityLakeOCSF_CL", KEY_ANY,
                     _parser(None, map_other, "any class"),
                     "Security Lake, any other source or class (OCSF fields kept, Parquet)")
SECURITY_LAKE = (OCSF_API, OCSF_NETWORK, OCSF_DNS, OCSF_FINDING, OCSF_OTHER)
