"""Route 53 Resolver query logs, JSON lines -> AWSRoute53Resolver.

S3 key: ``AWSLogs/<acct>/vpcdnsquerylogs/<vpc-id>/YYYY/MM/DD/
<acct>_vpcdnsquerylogs_<vpc-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz``.
Mapping = Microsoft's ``AWSRoute53ResolverLogs_DCR.json`` transform: every key to its
PascalCase column with ``tostring`` (``answers``/``srcids`` dynamic), ``TimeGenerated`` =
``query_timestamp``, ``LogType`` = "ResolverQueryLogs".
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from . import columns
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

KEY = re.compile(r"(^|/)AWSLogs/(o-[a-z0-9]+/)?\d{12}/vpcdnsquerylogs/"
                 r"|(^|/)\d{12}_vpcdnsquerylogs_")
STRINGS = {
    "version": "Version", "account_id": "AccountId", "region": "Region", "vpc_id": "VpcId",
    "query_name": "QueryName", "query_type": "QueryType", "query_class": "QueryClass",
    "rcode": "Rcode", "srcaddr": "SrcAddr", "srcport": "SrcPort", "transport": "Transport",
    "firewall_rule_action": "FirewallRuleAction",
    "firewall_rule_group_id": "FirewallRuleGroupId",
    "firewall_domain_list_id": "FirewallDomainListId",
}


def sniff(head: str) -> bool:
    return head.lstrip().startswith("{") and '"query_name"' in head and \
        '"query_timestamp"' in head


# column by column (``columns``; the loop over STRINGS it replaced is the reference in
# tests/test_json_mappers.py)
map_record = columns.mapper("map_record", ("r",), (
    ("TimeGenerated", ("when", ("r", "query_timestamp"))),
    *((column, ("str", ("r", key))) for key, column in STRINGS.items()),
    ("Answers", ("raw", ("r", "answers"))),
    ("SrcIds", ("raw", ("r", "srcids"))),
    ("LogType", ("const", "ResolverQueryLogs")),
))


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if not tolerant_sniff(sniff, text.head):
        raise FormatError("Route 53 Resolver query log must be JSON lines with query_name "
                          "and query_timestamp")
    for position, value in json_records(text, "Resolver query log"):
        if isinstance(value, JsonGarbage):
            yield garbage(position, value, "Resolver query log line is not JSON")
            continue
        if not isinstance(value, dict) or "query_name" not in value:
            yield Rejected(position, "not a Resolver query log record (no query_name)",
                           json_text(value))
            continue
        row = map_record(value)
        if "TimeGenerated" not in row:
            yield Rejected(position, "Resolver query record has no valid query_timestamp",
                           json_text(value))
            continue
        yield row


ROUTE53 = Format(name="route53-resolver", table="AWSRoute53Resolver", parse=parse,
                 sniff=sniff, key_pattern=KEY,
                 description="Route 53 Resolver query logs (JSON lines)")
