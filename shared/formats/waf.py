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
from . import cloudwatch, columns
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    garbage,
    json_records,
    json_text,
    tolerant_sniff,
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


# column by column (``columns``; the plain dict it replaced is the reference in
# tests/test_json_mappers.py); ``group``: the rule group that terminated the request, or {};
# ``stamp``: TimeGenerated, the epoch ms of ``timestamp`` as when_epoch(millis=True) gives it
# (``cloudwatch.stamp_ms``: every WAF record its own millisecond, when_epoch's cache missed on
# each: 2.1 -> 0.3 us per record)
map_record = columns.mapper("map_record", ("r",), (
    ('TimeGenerated', ('raw', ('stamp',))),
    ('FormatVersion', ('str', ('r', 'formatVersion'))),
    ('WebAclId', ('str', ('r', 'webaclId'))),
    ('TerminatingRuleId', ('str', ('r', 'terminatingRuleId'))),
    ('TerminatingRuleType', ('str', ('r', 'terminatingRuleType'))),
    ('Action', ('str', ('r', 'action'))),
    ('TerminatingRuleMatchDetails', ('raw', ('r', 'terminatingRuleMatchDetails'))),
    ('HttpSourceName', ('str', ('r', 'httpSourceName'))),
    ('HttpSourceId', ('str', ('r', 'httpSourceId'))),
    ('RuleGroupList', ('raw', ('r', 'ruleGroupList'))),
    ('RateBasedRuleList', ('raw', ('r', 'rateBasedRuleList'))),
    ('NonTerminatingMatchingRules', ('raw', ('r', 'nonTerminatingMatchingRules'))),
    ('RequestHeadersInserted', ('raw', ('r', 'requestHeadersInserted'))),
    ('ResponseCodeSent', ('int32', ('r', 'responseCodeSent'))),
    ('HttpRequest', ('raw', ('r', 'httpRequest'))),
    ('ClientIp', ('str', ('r', 'httpRequest', 'clientIp'))),
    ('Country', ('str', ('r', 'httpRequest', 'country'))),
    ('Headers', ('raw', ('r', 'httpRequest', 'headers'))),
    ('Uri', ('str', ('r', 'httpRequest', 'uri'))),
    ('Args', ('str', ('r', 'httpRequest', 'args'))),
    ('HttpVersion', ('str', ('r', 'httpRequest', 'httpVersion'))),
    ('HttpMethod', ('str', ('r', 'httpRequest', 'httpMethod'))),
    ('RequestId', ('str', ('r', 'httpRequest', 'requestId'))),
    ('Labels', ('raw', ('r', 'labels'))),
    ('CaptchaResponse', ('raw', ('r', 'captchaResponse'))),
    ('ChallengeResponse', ('raw', ('r', 'challengeResponse'))),
    ('OversizeFields', ('raw', ('r', 'oversizeFields'))),
    ('Ja3Fingerprint', ('str', ('r', 'ja3Fingerprint'))),
    ('RuleGroupId', ('str', ('group', 'ruleGroupId'))),
    ('TerminatingRule', ('raw', ('group', 'terminatingRule'))),
    ('ExcludedRules', ('raw', ('group', 'excludedRules'))),
), preludes=(("group", "_terminating_group(r.get('ruleGroupList'))"),
             ("stamp", "stamp_ms(r.get('timestamp'))")),
    env={"_terminating_group": _terminating_group, "stamp_ms": cloudwatch.stamp_ms})


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
