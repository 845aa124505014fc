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
from .base import (
    Format,
    Item,
    ObjectContext,
    Rejected,
    Routed,
    compact,
    garbage,
    json_records,
    json_text,
    kql_bool,
    kql_string,
    tolerant_sniff,
    when,
    when_epoch,
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


def _get(obj: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(name)
    return obj


def _common(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "TimeGenerated": when(ev.get("timestamp")) or when_epoch(r.get("event_timestamp")),
        "FirewallName": kql_string(r.get("firewall_name")),
        "AvailabilityZone": kql_string(r.get("availability_zone")),
        "SrcIp": kql_string(ev.get("src_ip")),
        "SrcPort": kql_string(ev.get("src_port")),
        "DestIp": kql_string(ev.get("dest_ip")),
        "DestPort": kql_string(ev.get("dest_port")),
    }


def alert_row(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    return compact({
        **_common(r, ev),
        "EventTimestamp": when_epoch(r.get("event_timestamp")),
        "Timestamp": when(ev.get("timestamp")),
        "TxId": kql_string(ev.get("tx_id")),
        "AppProto": kql_string(ev.get("app_proto")),
        "EventType": kql_string(ev.get("event_type")),
        "Severity": kql_string(_get(ev, "alert", "severity")),
        "SignatureId": kql_string(_get(ev, "alert", "signature_id")),
        "Rev": kql_string(_get(ev, "alert", "rev")),
        "Signature": kql_string(_get(ev, "alert", "signature")),
        "AlertAction": kql_string(_get(ev, "alert", "action")),
        "Category": kql_string(_get(ev, "alert", "category")),
        "FlowId": kql_string(ev.get("flow_id")),
        "Proto": kql_string(ev.get("proto")),
        "VerdictAction": kql_string(_get(ev, "verdict", "action")),
        "Sni": kql_string(_get(ev, "tls", "sni")),
        "Version": kql_string(_get(ev, "tls", "version")),
        "PktSrc": kql_string(ev.get("pkt_src")),
        "Direction": kql_string(ev.get("direction")),
    })


def flow_row(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    return compact({
        **_common(r, ev),
        "EventTimestamp": kql_string(r.get("event_timestamp")),
        "Timestamp": when(ev.get("timestamp")),
        "TCPFlags": kql_string(_get(ev, "tcp", "tcp_flags")),
        "Syn": kql_bool(_get(ev, "tcp", "syn")),
        "Fin": kql_bool(_get(ev, "tcp", "fin")),
        "Psh": kql_bool(_get(ev, "tcp", "psh")),
        "Ack": kql_bool(_get(ev, "tcp", "ack")),
        "Ecn": kql_bool(_get(ev, "tcp", "ecn")),
        "Rst": kql_bool(_get(ev, "tcp", "rst")),
        "AppProto": kql_string(ev.get("app_proto")),
        "NetFlowPkts": kql_string(_get(ev, "netflow", "pkts")),
        "NetFlowBytes": kql_string(_get(ev, "netflow", "bytes")),
        "NetFlowStart": when(_get(ev, "netflow", "start")),
        "NetFlowEnd": when(_get(ev, "netflow", "end")),
        "NetFlowAge": kql_string(_get(ev, "netflow", "age")),
        "NetFlowMinttl": kql_string(_get(ev, "netflow", "min_ttl")),
        "NetFlowMaxttl": kql_string(_get(ev, "netflow", "max_ttl")),
        "EventType": kql_string(ev.get("event_type")),
        "FlowId": kql_string(ev.get("flow_id")),
        "Proto": kql_string(ev.get("proto")),
    })


def tls_row(r: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    check = ev.get("revocation_check") if isinstance(ev.get("revocation_check"), dict) else {}

    def pick(name: str) -> str | None:
        return kql_string(ev.get(name)) or kql_string(check.get(name))

    return compact({
        **_common(r, ev),
        "EventTimestamp": when_epoch(r.get("event_timestamp")),
        "Sni": kql_string(ev.get("sni")),
        "LeafCertificateFingerprint": pick("leaf_cert_fpr"),
        "Status": pick("status"),
        "Action": pick("action"),
        "ErrorMessage": kql_string(_get(ev, "tls_error", "error_message")),
    })


TABLES = {"alert": "AWSNetworkFirewallAlert", "flow": "AWSNetworkFirewallFlow",
          "tls": "AWSNetworkFirewallTls"}
_MAPPERS = {"alert": alert_row, "flow": flow_row, "tls": tls_row}


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
        for position, value in json_records(text, f"Network Firewall {kind} log"):
            if isinstance(value, JsonGarbage):
                yield garbage(position, value, f"Network Firewall {kind} line is not JSON")
                continue
            ev = value.get("event") if isinstance(value, dict) else None
            if not isinstance(ev, dict):
                yield Rejected(position, "not a Network Firewall log record (no event object)",
                               json_text(value))
                continue
            # each event goes to its own log type's table, whatever the object's type: a
            # netflow event in an alert object is a flow row, never skipped
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
