"""Log formats: registry and detection.

Detection order: a per-source override rule (key regex -> format) wins; then the S3 key layout
AWS uses, confirmed by the content; then the content alone; then the raw fallback table.
When the key says one format and the content disagrees, that is a ``FormatError`` with the
reason, never a silent row of empty columns. An empty object is its key's format (or raw) and
gives no records.

==========================  ===============================  ===================================
format                      table                            recognised by
==========================  ===============================  ===================================
cloudtrail                  AWSCloudTrail                    ``_CloudTrail_`` name / folder
cloudtrail-digest           (none: skipped, counted)         ``CloudTrail-Digest`` (key only)
vpcflow                     AWSVPCFlow                       ``vpcflowlogs`` (also Hive keys)
alb / nlb / elb-classic     AWSALBAccessLogs /               ``_elasticloadbalancing_`` name
                            AWSNLBAccessLogs /               (``app.`` / ``net.`` / other)
                            AWSELBClassicAccessLogs_CL
cloudfront                  AWSCloudFront_AccessLog_CL       ``<dist-id>.YYYY-MM-DD-HH.<id>``
s3-access                   AWSS3ServerAccess                ``YYYY-MM-DD-HH-MM-SS-<16 chars>``
waf                         AWSWAF                           ``WAFLogs`` / ``_waflogs_``
route53-resolver            AWSRoute53Resolver               ``vpcdnsquerylogs``
network-firewall-{alert,    AWSNetworkFirewallAlert / Flow   ``network-firewall/<type>/``
flow,tls}                   / Tls
cloudwatch-cloudtrail       AWSCloudTrail                    content + declared prefix
cloudwatch-vpcflow          AWSVPCFlow                       content (first log event)
cloudwatch                  AWSCloudWatch                    content (Firehose keys are free)
cloudtrail-events           AWSCloudTrail                    content + declared prefix
securityhub                 AWSSecurityHubFindings           content + declared prefix
guardduty                   AWSGuardDuty                     ``AWSLogs/<acct>/GuardDuty/``
ocsf-api / -network / -dns  AWSCloudTrail / AWSVPCFlow /     Security Lake ``aws/<SOURCE>/``
/ -finding / ocsf           AWSRoute53Resolver / AWSSecurity (Parquet; ``securitylake``)
                            HubFindings / AWSSecurityLakeOCSF_CL
raw                         AWSS3Raw_CL                      anything else
==========================  ===============================  ===================================

AWSCloudTrail, AWSGuardDuty and AWSSecurityHubFindings rows come only from AWS's key layout
or a prefix the source declares (``provenance``): content alone raises
``UndeclaredKindError``.

Formats with ``tables`` (Network Firewall, the CloudWatch Logs formats, the EventBridge ones:
``cloudtrail-events``, ``securityhub``, ``guardduty``) read objects that may hold records of
several tables and yield the other tables' rows as ``Routed(table, row)``; formats sharing an
``envelope`` read each other's objects, so detection may pick one of them for an object
whose head is of another (its key's format holding only other types' events; a sensitive kind
not declared, when a format of the envelope may be chosen: its records are then refused per
record by the pipeline, the others delivered).

Binary objects (VPC Flow Logs in Parquet) cannot be parsed from decoded text: when
``wants_bytes(fmt, head)`` the caller passes the whole decompressed object to
``fmt.parse_bytes(data, ctx)`` instead of ``fmt.parse(text, ctx)``.
"""
from __future__ import annotations

from ..errors import FormatError
from .base import Format, ObjectContext, Rejected, Routed, Skipped, tolerant_sniff  # noqa: F401
from .provenance import KINDS, kind_of, undeclared
from .registry import FORMATS, RAW

__all__ = ["FORMATS", "KINDS", "RAW", "Format", "ObjectContext", "Rejected", "Routed", "Skipped",
           "detect", "get", "wants_bytes"]


def get(name: str) -> Format:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise FormatError(f"unknown format {name!r}; known: {', '.join(f.name for f in FORMATS)}")


def detect(key: str, head: str, *, override: str | None = None,
           kind: str | frozenset[str] | None = None) -> Format:
    """Choose the format of an object from its key and the first 64 KB of its text.

    ``override`` is the source's ``formatRules`` choice; ``kind`` the sensitive kind(s) the
    source's ``kinds`` setting declares for the key's prefix (``provenance``). Content that
    looks like a sensitive kind without either, or without AWS's key layout, raises
    ``UndeclaredKindError`` -- unless a format of the same envelope that may be chosen
    routes such records (``Format.tables``): an object of several kinds is then read, and
    its undeclared records alone are refused, per record, by the pipeline.
    """
    kinds = (frozenset() if not kind else frozenset((kind,)) if isinstance(kind, str)
             else frozenset(kind))
    if override:
        return get(override)
    by_key = [f for f in FORMATS if f.key_pattern is not None and f.key_pattern.search(key)]
    if by_key and not head.strip():
        return by_key[0]  # an empty object: nothing to confirm, and nothing will be sent
    for fmt in by_key:
        if tolerant_sniff(fmt.sniff, head):  # a broken first line does not hide the format
            return fmt
    for fmt in by_key:  # the key's format, holding (in its head) records of its envelope's
        # other kinds only (an alert object of netflow events): they are routed
        if fmt.envelope and any(f.envelope == fmt.envelope and tolerant_sniff(f.sniff, head)
                                for f in FORMATS if f is not fmt):
            return fmt
    if by_key:
        names = ", ".join(f.name for f in by_key)
        first = head.lstrip()[:120].replace("\n", "\\n")
        raise FormatError(f"key looks like {names} but the content does not match "
                          f"(starts with {first!r}); add a formatRules override if this is "
                          "intended")
    if kinds:  # the declared kind's envelopes first (their content tests may overlap others')
        for fmt in FORMATS:
            if fmt.content_detectable and kind_of(fmt) in kinds \
                    and tolerant_sniff(fmt.sniff, head):
                return fmt
    for fmt in FORMATS:
        if fmt.content_detectable and tolerant_sniff(fmt.sniff, head):
            if kind_of(fmt) is not None:
                router = _router_for(fmt, kinds, head)
                if router is None:
                    raise undeclared(fmt, key, kinds)
                return router
            return fmt
    return RAW


def _router_for(fmt: Format, kinds: frozenset[str], head: str) -> Format | None:
    """A format that may be chosen (of a declared kind, or not sensitive and matching the
    head) whose parser routes ``fmt``'s records (the same envelope: CloudWatch Logs payloads,
    an EventBridge stream)."""
    if not fmt.envelope:
        return None
    family = [f for f in FORMATS if f.envelope == fmt.envelope and f.content_detectable
              and fmt.table in f.tables]
    for other in family:
        if kind_of(other) in kinds:
            return other
    for other in family:
        if kind_of(other) is None and tolerant_sniff(other.sniff, head):
            return other
    return None


def wants_bytes(fmt: Format, head: str) -> bool:
    """True when the object is binary and must go to ``fmt.parse_bytes`` (the whole
    decompressed object as bytes) instead of ``fmt.parse`` (VPC Flow Logs in Parquet)."""
    return fmt.parse_bytes is not None and head.startswith("PAR1")
