"""Provenance: which objects may become rows of the security-sensitive tables.

An AWSCloudTrail, AWSGuardDuty or AWSSecurityHubFindings row is evidence: an analyst trusts
that AWS wrote it. Anyone who can write to *some* prefix of a bucket the connector reads could
otherwise forge one by writing an object that merely looks right. So an object becomes rows of
these tables only when

* its key is in the layout AWS itself writes for that kind (``AWSLogs/<acct>/CloudTrail/...``,
  ``AWSLogs/<acct>/GuardDuty/...``, Security Lake's ``aws/<SOURCE>/...``): the format was
  chosen by its ``key_pattern``; or
* the source's settings say so: a ``formatRules`` entry naming the format, or a ``kinds``
  entry declaring that the object's key prefix carries that kind
  (``"kinds": {"firehose/cloudtrail/": "cloudtrail"}``).

Content alone never promotes an object into them: ``detect`` raises ``UndeclaredKindError``
(dead-lettered with the setting to add) instead.

The same holds for every record of an object that holds several kinds (``Format.tables``): a
record routed to a sensitive table is sent only when that table's kind is allowed for the
object (``allowed_kinds``: the format's own kind when AWS's key layout or a ``formatRules``
entry chose it, plus the kinds the source declares for the prefix). The others are
dead-lettered per record with ``undeclared_records``' reason, never promoted and never
silently dropped.
"""
from __future__ import annotations

import re

from ..errors import UndeclaredKindError
from .base import Format

# table -> the kind a source declares for it in "kinds"
SENSITIVE: dict[str, str] = {
    "AWSCloudTrail": "cloudtrail",
    "AWSGuardDuty": "guardduty",
    "AWSSecurityHubFindings": "securityhub",
}
KINDS: frozenset[str] = frozenset(SENSITIVE.values())

_DATED = re.compile(r"^(.*?)(?:\d{4}/\d{2}/\d{2}/|year=\d{4}/)")


def kind_of(fmt: Format) -> str | None:
    """The sensitive kind ``fmt`` produces rows of, or None for the other tables."""
    return SENSITIVE.get(fmt.table or "")


def suggested_prefix(key: str) -> str:
    """The prefix to declare for ``key``: what comes before the date folders Firehose and
    most pipelines add (``firehose/ct/2025/07/28/02/x.gz`` -> ``firehose/ct/``), else the
    object's folder."""
    m = _DATED.match(key)
    if m:
        return m.group(1)
    return key.rsplit("/", 1)[0] + "/" if "/" in key else ""


def allowed_kinds(fmt: Format, key: str, *, override: str | None,
                  declared: frozenset[str]) -> frozenset[str]:
    """The sensitive kinds whose records an object of ``fmt`` at ``key`` may deliver: those
    the source declares for the prefix, and ``fmt``'s own when the key's AWS layout or a
    ``formatRules`` entry (not the content) chose it."""
    own = kind_of(fmt)
    if own is not None and (override is not None or (
            fmt.key_pattern is not None and fmt.key_pattern.search(key))):
        return declared | {own}
    return declared


def undeclared_records(table: str, count: int, key: str,
                       declared: frozenset[str]) -> UndeclaredKindError:
    """The reason for ``count`` records routed to the sensitive ``table`` from an object whose
    prefix is not declared for that kind (the object's other records are delivered)."""
    kind = SENSITIVE[table]
    prefix = suggested_prefix(key)
    found = (f"its prefix is declared as {', '.join(sorted(declared))}, not {kind!r}"
             if declared else "no \"kinds\" entry of the source declares its prefix")
    wanted = sorted(declared | {kind})
    value = f'"{wanted[0]}"' if len(wanted) == 1 else "[" + ", ".join(
        f'"{k}"' for k in wanted) + "]"
    return UndeclaredKindError(
        f"{count} record(s) of the object look like {table} records but {found}; content "
        f"alone never makes {table} rows (anyone able to write to the bucket could forge "
        f"them); the object's other records were delivered. If this prefix does carry {kind} "
        f"(e.g. an EventBridge -> Firehose stream of several kinds), add "
        f"\"kinds\": {{\"{prefix}\": {value}}} to the source in AWS_SOURCES, then replay")


def undeclared(fmt: Format, key: str,
               declared: str | frozenset[str] | None) -> UndeclaredKindError:
    kind = kind_of(fmt)
    if isinstance(declared, frozenset):
        declared = ", ".join(sorted(declared)) or None
    prefix = suggested_prefix(key)
    found = (f"its prefix is declared as {declared!r}, not {kind!r}" if declared else
             "its key is not in AWS's own layout for that kind and no \"kinds\" entry of the "
             "source declares its prefix")
    return UndeclaredKindError(
        f"content looks like {fmt.name} ({fmt.table}) but {found}; content alone never makes "
        f"{fmt.table} rows (anyone able to write to the bucket could forge them). If this "
        f"prefix does carry {kind} (e.g. a Firehose delivery stream), add "
        f"\"kinds\": {{\"{prefix}\": \"{kind}\"}} to the source in AWS_SOURCES, then replay")
