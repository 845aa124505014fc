"""AWS Network Firewall logs, JSON lines -> AWSNetworkFirewallAlert / Flow / Tls.

Each line is ``{"firewall_name", "availability_zone", "event_timestamp" (epoch seconds),
"event": {Suricata EVE JSON}}``. The log type is in the key
(``AWSLogs/<acct>/network-firewall/<alert|flow|tls>/<region>/<firewall>/...`` and
``<acct>_network-firewall_<type>_...``) and in ``event.event_type`` (alert / netflow; TLS log
events have none). One format per log type; an object of one type may still hold events of
the others (a netflow event in an alert object): each event goes to its own type's table
(``Routed``), so nothing valid is skipped.

Mapping = Microsoft's ``AWSNetworkFirewallLog_DCR.json`` transforms, with one deliberate
difference: those stamp ``TimeGenerated`` with the ingestion time (``now()``); here it is the
event's own time, ``event.timestamp``, falling back to ``event_timestamp``. The transforms'
row filters (``EventType == "alert"`` / ``"netflow"``) become routing: an event is mapped by
its type's transform and sent to its type's table. The
tables' ``Timestamp`` column (not set by the transforms) gets ``event.timestamp``. For TLS
revocation-check events, whose fingerprint/status/action sit under
``event.revocation_check`` in AWS's documented example, those values fill the columns the
transform reads from ``event.*`` when the latter are absent.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource
from . import columns
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    Routed,
    garbage,
    json_records,
    json_text,
    tolerant_sniff,
)


def _key(kind: str) -> re.Pattern[str]:
    return re.compile(rf"(^|/)AWSLogs/(o-[a-z0-9]+/)?\d{{12}}/network-firewall/{kind}/"
                      rf"|(^|/)\d{{12}}_network-firewall_{kind}_")


def _event_type(kind: str) -> re.Pattern[str]:
    return re.compile(r'"event_type"\s*:\s*"' + kind + '"')


_ALERT, _NETFLOW = _event_type("alert"), _event_type("netflow")


def _base(head: str) -> bool:
    return head.lstrip().startswith("{") and '"firewall_name"' in head and '"event"' in head


def alert_sniff(head: str) -> bool:
    return _base(head) and bool(_ALERT.search(head))


def flow_sniff(head: str) -> bool:
    return _base(head) and bool(_NETFLOW.search(head))


def tls_sniff(head: str) -> bool:
    return _base(head) and not _ALERT.search(head) and not _NETFLOW.search(head)


# The three mappings column by column (``columns``; the plain dicts they replaced are the
# reference in tests/test_json_mappers.py). ``r``: the log record, ``ev``: its event.
def _common(time: tuple[str, tuple[str, ...]]) -> tuple[tuple[Any, ...], ...]:
    return (
        ("TimeGenerated", ("when", ("ev", "timestamp")), time),
        ("FirewallName", ("str", ("r", "firewall_name"))),
        ("AvailabilityZone", ("str", ("r", "availability_zone"))),
        ("SrcIp", ("str", ("ev", "src_ip"))),
        ("SrcPort", ("str", ("ev", "src_port"))),
        ("DestIp", ("str", ("ev", "dest_ip"))),
        ("DestPort", ("str", ("ev", "dest_port"))),
    )


_EPOCH = ("epoch", ("r", "event_timestamp"))

alert_row = columns.mapper("alert_row", ("r", "ev"), (
    *_common(_EPOCH),
    ("EventTimestamp", _EPOCH),
    ("Timestamp", ("when", ("ev", "timestamp"))),
    ("TxId", ("str", ("ev", "tx_id"))),
    ("AppProto", ("str", ("ev", "app_proto"))),
    ("EventType", ("str", ("ev", "event_type"))),
    ("Severity", ("str", ("ev", "alert", "severity"))),
    ("SignatureId", ("str", ("ev", "alert", "signature_id"))),
    ("Rev", ("str", ("ev", "alert", "rev"))),
    ("Signature", ("str", ("ev", "alert", "signature"))),
    ("AlertAction", ("str", ("ev", "alert", "action"))),
    ("Category", ("str", ("ev", "alert", "category"))),
    ("FlowId", ("str", ("ev", "flow_id"))),
    ("Proto", ("str", ("ev", "proto"))),
    ("VerdictAction", ("str", ("ev", "verdict", "action"))),
    ("Sni", ("str", ("ev", "tls", "sni"))),
    ("Version", ("str", ("ev", "tls", "version"))),
    ("PktSrc", ("str", ("ev", "pkt_src"))),
    ("Direction", ("str", ("ev", "direction"))),
))

flow_row = columns.mapper("flow_row", ("r", "ev"), (
    *_common(_EPOCH),
    ("EventTimestamp", ("str", ("r", "event_timestamp"))),
    ("Timestamp", ("when", ("ev", "timestamp"))),
    ("TCPFlags", ("str", ("ev", "tcp", "tcp_flags"))),
    *((name.capitalize(), ("bool", ("ev", "tcp", name)))
      for name in ("syn", "fin", "psh", "ack", "ecn", "rst")),
    ("AppProto", ("str", ("ev", "app_proto"))),
    ("NetFlowPkts", ("str", ("ev", "netflow", "pkts"))),
    ("NetFlowBytes", ("str", ("ev", "netflow", "bytes"))),
    ("NetFlowStart", ("when", ("ev", "netflow", "start"))),
    ("NetFlowEnd", ("when", ("ev", "netflow", "end"))),
    ("NetFlowAge", ("str", ("ev", "netflow", "age"))),
    ("NetFlowMinttl", ("str", ("ev", "netflow", "min_ttl"))),
    ("NetFlowMaxttl", ("str", ("ev", "netflow", "max_ttl"))),
    ("EventType", ("str", ("ev", "event_type"))),
    ("FlowId", ("str", ("ev", "flow_id"))),
    ("Proto", ("str", ("ev", "proto"))),
))

# a TLS revocation-check event's fingerprint/status/action: under event, else under
# event.revocation_check
tls_row = columns.mapper("tls_row", ("r", "ev"), (
    *_common(_EPOCH),
    ("EventTimestamp", _EPOCH),
    ("Sni", ("str", ("ev", "sni"))),
    *((column, ("str", ("ev", name)), ("str", ("ev", "revocation_check", name)))
      for column, name in (("LeafCertificateFingerprint", "leaf_cert_fpr"),
                           ("Status", "status"), ("Action", "action"))),
    ("ErrorMessage", ("str", ("ev", "tls_error", "error_message"))),
))


TABLES = {"alert": "AWSNetworkFirewallAlert", "flow": "AWSNetworkFirewallFlow",
          "tls": "AWSNetworkFirewallTls"}
_MAPPERS = {"alert": alert_row, "flow": flow_row, "tls": tls_row}
# the event_type of each log type's events (TLS events have none: any other but these two)
_EVENT_TYPES = {"alert": "alert", "flow": "netflow", "tls": None}


def kind_of_event(ev: dict[str, Any]) -> str:
    """The log type an event belongs to, as detection tells them apart: ``alert`` and
    ``netflow`` events by their ``event_type``; anything else is a TLS log event (AWS writes
    those without an ``event_type``; the TLS transform keeps every event)."""
    event_type = ev.get("event_type")
    return "alert" if event_type == "alert" else "flow" if event_type == "netflow" else "tls"


def _parser(kind: str):
    def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
        if not text.head.strip():
            return  # an empty object holds no records
        if not tolerant_sniff(_base, text.head):  # any log type's events: each is routed
            raise FormatError(f"Network Firewall {kind} log must be JSON lines of "
                              "{firewall_name, availability_zone, event_timestamp, event}")
        own, own_type = _MAPPERS[kind], _EVENT_TYPES[kind]
        for position, value in json_records(text, f"Network Firewall {kind} log"):
            if value.__class__ is dict or isinstance(value, dict):
                ev = value.get("event")
            elif isinstance(value, JsonGarbage):
                yield garbage(position, value, f"Network Firewall {kind} line is not JSON")
                continue
            else:
                ev = None
            if ev.__class__ is not dict and not isinstance(ev, dict):
                yield Rejected(position, "not a Network Firewall log record (no event object)",
                               json_text(value))
                continue
            # each event goes to its own log type's table, whatever the object's type: a
            # netflow event in an alert object is a flow row, never skipped
            event_type = ev.get("event_type")
            if event_type == own_type or kind == "tls" and event_type != "alert" \
                    and event_type != "netflow":
                event_kind, row = kind, own(value, ev)
            else:
                event_kind = kind_of_event(ev)
                row = _MAPPERS[event_kind](value, ev)
            if "TimeGenerated" not in row:
                yield Rejected(position, "Network Firewall record has no valid "
                                         "event.timestamp or event_timestamp", json_text(value))
                continue
            yield row if event_kind == kind else Routed(TABLES[event_kind], row)
    return parse


def _others(kind: str) -> tuple[str, ...]:
    return tuple(t for k, t in TABLES.items() if k != kind)


NETFW_ALERT = Format(
    name="network-firewall-alert", table="AWSNetworkFirewallAlert",
    parse=_parser("alert"), sniff=alert_sniff,
    key_pattern=_key("alert"), description="Network Firewall alert logs (JSON lines)",
    tables=_others("alert"), envelope="network-firewall")
NETFW_FLOW = Format(
    name="network-firewall-flow", table="AWSNetworkFirewallFlow",
    parse=_parser("flow"), sniff=flow_sniff,
    key_pattern=_key("flow"), description="Network Firewall flow logs (JSON lines)",
    tables=_others("flow"), envelope="network-firewall")
NETFW_TLS = Format(
    name="network-firewall-tls", table="AWSNetworkFirewallTls",
    parse=_parser("tls"), sniff=tls_sniff,
    key_pattern=_key("tls"), description="Network Firewall TLS inspection logs (JSON lines)",
    tables=_others("tls"), envelope="network-firewall")
