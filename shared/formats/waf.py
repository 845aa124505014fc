"""AWS WAF (v2) logs, JSON lines -> AWSWAF.

S3 key: ``AWSLogs/<acct>/WAFLogs/<region|cloudfront>/<web-acl>/YYYY/MM/dd/HH/mm/
<acct>_waflogs_<region>_<web-acl>_<YYYYMMDDTHHmmZ>_<hash>.log.gz``; through Firehose
(``aws-waf-logs-*`` streams) the key is free, so the content is recognised too.
Microsoft sends WAF logs to the built-in stream without a published transform; the columns are
the log's keys in PascalCase (``httpRequest.clientIp`` -> ``ClientIp``, ...), nested objects
in the dynamic columns as they are, ``TimeGenerated`` = ``timestamp`` (epoch ms). For a
request terminated inside a rule group (``terminatingRuleType`` GROUP) the group that
terminated it gives ``RuleGroupId``, ``TerminatingRule`` and ``ExcludedRules``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    compact,
    garbage,
    int32,
    json_records,
    json_text,
    kql_string,
    tolerant_sniff,
    when_epoch,
)

KEY = re.compile(r"(^|/)AWSLogs/(o-[a-z0-9]+/)?\d{12}/WAFLogs/|(^|/)\d{12}_waflogs_")


def sniff(head: str) -> bool:
    return head.lstrip().startswith("{") and '"webaclId"' in head and \
        '"terminatingRuleId"' in head


def _terminating_group(groups: Any) -> dict[str, Any]:
    if isinstance(groups, list):
        for group in groups:
            if isinstance(group, dict) and group.get("terminatingRule"):
                return group
    return {}


def map_record(r: dict[str, Any]) -> dict[str, Any]:
    req = r.get("httpRequest") if isinstance(r.get("httpRequest"), dict) else {}
    group = _terminating_group(r.get("ruleGroupList"))
    return compact({
        "TimeGenerated": when_epoch(r.get("timestamp"), millis=True),
        "FormatVersion": kql_string(r.get("formatVersion")),
        "WebAclId": kql_string(r.get("webaclId")),
        "TerminatingRuleId": kql_string(r.get("terminatingRuleId")),
        "TerminatingRuleType": kql_string(r.get("terminatingRuleType")),
        "Action": kql_string(r.get("action")),
        "TerminatingRuleMatchDetails": r.get("terminatingRuleMatchDetails"),
        "HttpSourceName": kql_string(r.get("httpSourceName")),
        "HttpSourceId": kql_string(r.get("httpSourceId")),
        "RuleGroupList": r.get("ruleGroupList"),
        "RateBasedRuleList": r.get("rateBasedRuleList"),
        "NonTerminatingMatchingRules": r.get("nonTerminatingMatchingRules"),
        "RequestHeadersInserted": r.get("requestHeadersInserted"),
        "ResponseCodeSent": int32(r.get("responseCodeSent")),
        "HttpRequest": r.get("httpRequest"),
        "ClientIp": kql_string(req.get("clientIp")),
        "Country": kql_string(req.get("country")),
        "Headers": req.get("headers"),
        "Uri": kql_string(req.get("uri")),
        "Args": kql_string(req.get("args")),
        "HttpVersion": kql_string(req.get("httpVersion")),
        "HttpMethod": kql_string(req.get("httpMethod")),
        "RequestId": kql_string(req.get("requestId")),
        "Labels": r.get("labels"),
        "CaptchaResponse": r.get("captchaResponse"),
        "ChallengeResponse": r.get("challengeResponse"),
        "OversizeFields": r.get("oversizeFields"),
        "Ja3Fingerprint": kql_string(r.get("ja3Fingerprint")),
        "RuleGroupId": kql_string(group.get("ruleGroupId")),
        "TerminatingRule": group.get("terminatingRule"),
        "ExcludedRules": group.get("excludedRules"),
    })


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(sniff, text.head):
        raise FormatError("WAF log must be JSON lines with webaclId and terminatingRuleId")
    for position, value in json_records(text, "WAF log"):
        if isinstance(value, JsonGarbage):
            yield garbage(position, value, "WAF log line is not JSON")
            continue
        if not isinstance(value, dict) or "webaclId" not in value:
            yield Rejected(position, "not a WAF log record (no webaclId)", json_text(value))
            continue
        row = map_record(value)
        if "TimeGenerated" not in row:
            yield Rejected(position, "WAF log record has no valid timestamp (epoch ms)",
                           json_text(value))
            continue
        yield row


WAF = Format(name="waf", table="AWSWAF", parse=parse, sniff=sniff, key_pattern=KEY,
             description="AWS WAF web ACL logs (JSON lines)")
