"""VPC Flow Logs delivered to S3 -> AWSVPCFlow.

Text objects start with a header line naming the fields in the order the flow log was
configured with (default or custom format, versions 2-8); every record is one line of
space-separated values, ``-`` meaning "no value". The header drives the mapping, so any field
order works. Parquet objects use the same field names with underscores; they need the optional
``pyarrow`` package and are read from bytes (``Format.parse_bytes``).

The column mapping is Microsoft's own (``AWSVPCFlowLogs_DCR.json``, stream
``Custom-VPCFlowLogsParquet``): hyphen and underscore spellings are both accepted,
``TimeGenerated`` is ``start`` (epoch seconds), ``End`` is ``end``. Two additions where that
transform leaves a column empty: ``Start`` (a live-table column the transform does not fill)
is ``start``, and a record without ``start`` takes its time from ``end``, then from the
timestamp in the file name, then from the S3 event time (custom formats may omit both times,
e.g. the documented Transit Gateway example) instead of the ingestion time.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
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
    key_time,
    when_epoch,
)
from .columns import fields_mapper

KEY = re.compile(
    r"(^|/)\d{12}_vpcflowlogs_[a-z0-9-]+_fl-[0-9a-z]+_\d{8}T\d{4}Z_[0-9A-Za-z]+"
    r"\.log(\.gz|\.parquet)?$"
    r"|(^|/)\d{12}_vpcflowlogs_[a-z0-9-]+_fl-[0-9a-z]+_\d{8}T\d{4}Z_[0-9A-Za-z]+\.parquet$"
    r"|/vpcflowlogs/[a-z0-9-]+/\d{4}/\d{2}/\d{2}/"
    r"|(^|/)aws-service=vpcflowlogs/")

# field name (hyphen spelling) -> (column, kind of columns.FIELD_CODE)
_STR = "text"
FIELDS: dict[str, tuple[str, str]] = {
    "version": ("Version", "int32"),
    "account-id": ("AccountId", _STR),
    "interface-id": ("InterfaceId", _STR),
    "srcaddr": ("SrcAddr", _STR),
    "dstaddr": ("DstAddr", _STR),
    "srcport": ("SrcPort", "int32"),
    "dstport": ("DstPort", "int32"),
    "protocol": ("Protocol", "int32"),
    "packets": ("Packets", "int32"),
    "bytes": ("Bytes", "int64"),
    "start": ("Start", "time"),  # TimeGenerated: start, else end
    "end": ("End", "time_else"),
    "action": ("Action", _STR),
    "log-status": ("LogStatus", _STR),
    "vpc-id": ("VpcId", _STR),
    "subnet-id": ("SubnetId", _STR),
    "instance-id": ("InstanceId", _STR),
    "tcp-flags": ("TcpFlags", "int32"),
    "type": ("TrafficType", _STR),
    "pkt-srcaddr": ("PktSrcAddr", _STR),
    "pkt-dstaddr": ("PktDstAddr", _STR),
    "region": ("Region", _STR),
    "az-id": ("AzId", _STR),
    "sublocation-type": ("SublocationType", _STR),
    "sublocation-id": ("SublocationId", _STR),
    "pkt-src-aws-service": ("PktSrcAwsService", _STR),
    "pkt-dst-aws-service": ("PktDstAwsService", _STR),
    "flow-direction": ("FlowDirection", _STR),
    "traffic-path": ("TrafficPath", _STR),
    "ecs-cluster-arn": ("EcsClusterArn", _STR),
    "ecs-cluster-name": ("EcsClusterName", _STR),
    "ecs-container-instance-arn": ("EcsContainerInstanceArn", _STR),
    "ecs-container-instance-id": ("EcsContainerInstanceId", _STR),
    "ecs-container-id": ("EcsContainerId", _STR),
    "ecs-second-container-id": ("EcsSecondContainerId", _STR),
    "ecs-service-name": ("EcsServiceName", _STR),
    "ecs-task-definition-arn": ("EcsTaskDefinitionArn", _STR),
    "ecs-task-arn": ("EcsTaskArn", _STR),
    "ecs-task-id": ("EcsTaskId", _STR),
}
# AWS fields with no column in AWSVPCFlow: accepted in a header, not mapped.
UNMAPPED = {"reject-reason", "resource-id", "encryption-status"}
DEFAULT_V2 = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol "
              "packets bytes start end action log-status").split()


_KNOWN = set(FIELDS) | UNMAPPED | {f.replace("-", "_") for f in FIELDS}  # a header's first word


def _name(field: str) -> str:
    return field.strip().lower().replace("_", "-")


_FIELD_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
CORE = {"srcaddr", "dstaddr", "interface-id", "action", "log-status"}


def _header(line: str) -> list[str] | None:
    """The field names of a header line, or None if the line is not a VPC flow header.

    Names AWS may add in later versions are accepted (and not mapped) as long as the line is
    made of field names, most of them known, including at least one core field.
    """
    names = [_name(t) for t in line.split()]
    if len(names) < 3 or not all(_FIELD_NAME.match(n) for n in names):
        return None
    known = [n for n in names if n in FIELDS or n in UNMAPPED]
    if len(known) * 2 < len(names) or not CORE & set(names):
        return None
    return names


def _default_record(line: str) -> bool:
    parts = line.split()
    return len(parts) == len(DEFAULT_V2) and parts[0].isdigit() and parts[1].isdigit()


def sniff(head: str) -> bool:
    first = head.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    return _header(first) is not None or _default_record(first) or head.startswith("PAR1")


def map_record(values: dict[str, Any]) -> dict[str, Any]:
    """Map one record ({hyphen-name: value}) to AWSVPCFlow columns; '-' and junk are dropped."""
    row: dict[str, Any] = {}
    for name, value in values.items():
        spec = FIELDS.get(name)
        if spec is None or value is None:
            continue
        column, kind = spec
        if isinstance(value, str):
            value = value.strip()
            if value in ("-", ""):
                continue
        if kind == _STR:
            row[column] = value if isinstance(value, str) else str(value)
        elif kind == "int32":
            row[column] = int32(value)
        elif kind == "int64":
            row[column] = int64(value)
        else:  # epoch seconds
            row[column] = when_epoch(int64(value)) if int64(value) is not None else None
    return compact(row)


def map_named(record: dict[str, Any]) -> dict[str, Any]:
    """Map a record keyed by field names in either spelling (Parquet: ``account_id``)."""
    return map_record({_name(k): v for k, v in record.items()})


def _time(row: dict[str, Any], fallback: str | None) -> str | None:
    return row.get("Start") or row.get("End") or fallback


# ---- text records: one compiled field table per header (the hot loop) ------------------------

def field_table(names: list[str]) -> tuple[tuple[int, str, str], ...]:
    """(index in the line, column, kind) for the mapped fields of a header, in the order
    ``map_record(dict(zip(names, parts)))`` gives them (a name given twice keeps its first
    place and its last value, as the dict did)."""
    last = {name: i for i, name in enumerate(names)}
    table = []
    for name in dict.fromkeys(names):
        spec = FIELDS.get(name)
        if spec is not None:
            table.append((last[name], spec[0], spec[1]))
    return tuple(table)


_LINE_MAPPERS: dict[tuple[str, ...], Callable[[list[str]], dict[str, Any]]] = {}


def line_mapper(names: list[str]) -> Callable[[list[str]], dict[str, Any]]:
    """The function that maps the split fields of one record line of this header to its row
    (``TimeGenerated`` first: ``Start``, else ``End``, else still None; '-' and junk
    dropped): the same columns as ``map_record(dict(zip(names, parts)))``, written out field
    by field once per header (the hot loop of the biggest log type: no per-field lookups,
    calls or dicts)."""
    key = tuple(names)
    mapper = _LINE_MAPPERS.get(key)
    if mapper is None:  # str.split(): no field is empty; the parser checks the width
        mapper = fields_mapper("map_line", 0, None, field_table(names), blank=False)
        if len(_LINE_MAPPERS) < 64:  # headers repeat: a few formats per account
            _LINE_MAPPERS[key] = mapper
    return mapper


def parse(text: TextSource, ctx: ObjectContext) -> Iterator[Item]:
    if not text.head.strip():
        return  # an empty object holds no records
    if text.head.startswith("PAR1"):
        raise FormatError("VPC flow log object is Parquet: it must be read as bytes "
                          "(Format.parse_bytes); install pyarrow to read Parquet")
    fallback = key_time(ctx.key) or ctx.event_time
    names: list[str] | None = None
    mapper: Callable[[list[str]], dict[str, Any]] = dict
    width = 0
    n = 0
    for n, line in enumerate(text.lines(), start=1):
        if names is None:
            names = _header(line)
            if names is None:
                if _default_record(line):
                    names = DEFAULT_V2  # no header line: the documented default format
                else:
                    raise FormatError("VPC flow log must start with a header line of field "
                                      f"names (version account-id ...); line 1 is {line[:120]!r}")
                mapper, width = line_mapper(names), len(names)
            else:
                mapper, width = line_mapper(names), len(names)
                continue
        parts = line.split()
        if parts and parts[0] in _KNOWN and (again := _header(line)) is not None:
            # another header (objects concatenated): it rules the lines after it
            names = again
            mapper, width = line_mapper(names), len(names)
            continue
        if len(parts) != width:
            if not parts:
                continue
            yield Rejected(n, f"VPC flow record has {len(parts)} fields, the header names "
                              f"{width}", line)
            continue
        row = mapper(parts)
        if row["TimeGenerated"] is None:  # neither start nor end
            if fallback is None:
                yield Rejected(n, "VPC flow record has no start/end time and the object no "
                                  "timestamp", line)
                continue
            row["TimeGenerated"] = fallback
        yield row
    if names is None:
        raise FormatError("VPC flow log object is empty (not even a header line)")


PARQUET_BATCH_ROWS = 2_000
PARQUET_READ_BUFFER = 1 << 20


def parse_parquet(data: Any, ctx: ObjectContext) -> Iterator[Item]:
    """Parquet flow logs (column names with underscores), a few pages and 2,000 rows at a time
    (``parquet_source.parquet_rows``) from bytes or a seekable binary file
    (``parquet_source.spooled``). Needs the optional ``pyarrow``."""
    fallback = key_time(ctx.key) or ctx.event_time
    position = 0
    # a corrupt page further on ends the object there (FormatError), the records before it sent
    for records in parquet_rows(data, "VPC flow Parquet object", batch_rows=PARQUET_BATCH_ROWS,
                                read_buffer=PARQUET_READ_BUFFER):
        for record in records:
            position += 1
            row = map_named(record)
            stamp = _time(row, fallback)
            if stamp is None:
                yield Rejected(position, "VPC flow record has no start/end time",
                               repr(record))
                continue
            yield {"TimeGenerated": stamp, **row}


VPCFLOW = Format(
    name="vpcflow", table="AWSVPCFlow", parse=parse, sniff=sniff, key_pattern=KEY,
    parse_bytes=parse_parquet,
    description="VPC Flow Logs (text with header line, any v2-v8 field order; Parquet "
                "with optional pyarrow)")
