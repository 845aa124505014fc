"""``python -m shared inspect FILE``: what the connector would do with one log object.

Reads a local file (gzip or plain, detected from the magic bytes like S3 objects are), detects
its format from the file name (or ``--key``, the S3 key it would have) and its content, parses
it and checks every mapped row against the table's stream schema -- no cloud access. The S3
event time of a local file is taken as its modification time (the fallback some formats use
when a record carries no time of its own).

Exit status: 0 all rows fit, 1 some records were rejected or rows break the schema, 2 the file
could not be read as the format (or not at all).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import formats
from .config import Source, load_sources
from .errors import ConfigError, ConnectorError, FormatError
from .formats.base import iso
from .formats.provenance import SENSITIVE, allowed_kinds
from .reader import TextSource, decompress
from .schemas import all_schemas, violations

CHUNK = 1 << 20


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return
            yield chunk


def inspect_file(path: str, fmt: str | None = None, *, key: str | None = None,
                 rows: int = 3, kind: str | None = None,
                 source: Source | None = None) -> dict[str, Any]:
    """Detect, parse and check ``path``; a dict a person or a test can read.

    Keys: file, key, format, table, stream, records (rows mapped), rejected
    ([{position, reason}]), skipped (count), skipped_reasons, schema_errors
    ([{position, problems}]), rows (the first ``rows`` mapped rows), error (None, or why the
    object as a whole could not be read), routed ({table: n} records of other tables than
    ``table`` in the object, sent to their own), undeclared ({table: n} records the
    provenance rules refuse: their kind is not declared for the prefix).
    """
    file = Path(path)
    key = key or file.name
    result: dict[str, Any] = {
        "file": str(file), "key": key, "format": None, "table": None, "stream": None,
        "records": 0, "rejected": [], "skipped": 0, "skipped_reasons": [],
        "schema_errors": [], "rows": [], "error": None,
        "filtered": 0, "filtered_by_rule": {}, "bytes_sent": 0, "bytes_filtered": 0,
        "routed": {}, "undeclared": {},
    }
    if source is not None:  # the source's formatRules and kinds, as the pipeline applies them
        fmt = fmt or source.format_for(key)
        kind = kind or source.kinds_for(key) or None
    try:
        mtime = iso(datetime.fromtimestamp(file.stat().st_mtime, tz=UTC))
        text = TextSource(decompress(_chunks(file), where=str(file)), where=str(file))
        chosen = formats.detect(key, text.head, override=fmt, kind=kind)
    except (OSError, ConnectorError) as err:
        result["error"] = getattr(err, "message", None) or str(err)
        return result
    result["format"], result["table"] = chosen.name, chosen.table
    if chosen.table is not None:
        result["stream"] = all_schemas().get(chosen.table, {}).get("stream")
    ctx = formats.ObjectContext(source="local", bucket="(local)", key=key, event_time=mtime)
    if formats.wants_bytes(chosen, text.head):
        items = chosen.parse_bytes(b"".join(decompress(_chunks(file))), ctx)
    else:
        items = chosen.parse(text, ctx)
    skipped_reasons: set[str] = set()
    declared = (frozenset() if not kind else frozenset((kind,)) if isinstance(kind, str)
                else frozenset(kind))
    allowed = allowed_kinds(chosen, key, override=fmt, declared=declared)
    try:
        for item in items:
            table = chosen.table
            if isinstance(item, formats.Routed):  # a record of another table (Format.tables)
                table, item = item
                if SENSITIVE.get(table, None) not in (None, *allowed):
                    result["undeclared"][table] = result["undeclared"].get(table, 0) + 1
                    continue  # the pipeline dead-letters it (provenance.undeclared_records)
                result["routed"][table] = result["routed"].get(table, 0) + 1
            if isinstance(item, formats.Rejected):
                result["rejected"].append({"position": item.position, "reason": item.reason})
            elif isinstance(item, formats.Skipped):
                result["skipped"] += 1
                skipped_reasons.add(item.reason)
            else:
                result["records"] += 1
                size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
                rule = source.filters.rule_for(table, item) if source else None
                if rule is not None:
                    result["filtered"] += 1
                    by_rule = result["filtered_by_rule"]
                    by_rule[rule] = by_rule.get(rule, 0) + 1
                    result["bytes_filtered"] += size
                    continue
                result["bytes_sent"] += size
                problems = violations(table, item) if table else []
                if problems:
                    result["schema_errors"].append({"position": result["records"],
                                                    "problems": problems})
                if len(result["rows"]) < rows:
                    result["rows"].append(item)
    except (FormatError, ConnectorError) as err:
        result["error"] = err.message
    result["skipped_reasons"] = sorted(skipped_reasons)
    return result


def exit_code(result: dict[str, Any]) -> int:
    if result["error"]:
        return 2
    return 1 if result["rejected"] or result["schema_errors"] or result["undeclared"] else 0


def render(result: dict[str, Any]) -> str:
    fmt = result["format"]
    lines = [f"file:     {result['file']}", f"key:      {result['key']}"]
    if fmt:
        desc = formats.get(fmt).description
        lines.append(f"format:   {fmt} ({desc})")
        table = result["table"] or "(not ingested)"
        stream = f" via stream {result['stream']}" if result["stream"] else ""
        lines.append(f"table:    {table}{stream}")
    lines.append(f"records:  {result['records']} mapped, {len(result['rejected'])} rejected, "
                 f"{result['skipped']} skipped, {len(result['schema_errors'])} with schema "
                 "errors")
    for table, n in sorted(result["routed"].items()):
        lines.append(f"routed:   {n} record(s) of the object to {table} (their own table)")
    for table, n in sorted(result["undeclared"].items()):
        lines.append(f"refused:  {n} record(s) look like {table} records, a kind not declared "
                     "for this prefix (the source's \"kinds\" setting): dead-lettered")
    if result["filtered"]:
        total = result["bytes_sent"] + result["bytes_filtered"]
        share = 100.0 * result["bytes_filtered"] / total if total else 0.0
        rules = ", ".join(f"{r}: {n}" for r, n in sorted(result["filtered_by_rule"].items()))
        lines.append(f"filtered: {result['filtered']} of {result['records']} records by the "
                     f"source's filters ({rules}); {result['bytes_filtered']:,} of {total:,} "
                     f"row bytes ({share:.1f} %) not sent")
    for reason in result["skipped_reasons"]:
        lines.append(f"skipped:  {reason}")
    for rej in result["rejected"][:20]:
        lines.append(f"rejected: #{rej['position']}: {rej['reason']}")
    if len(result["rejected"]) > 20:
        lines.append(f"rejected: ... {len(result['rejected']) - 20} more")
    for err in result["schema_errors"][:20]:
        lines.append(f"schema:   row {err['position']}: {'; '.join(err['problems'])}")
    if result["error"]:
        lines.append(f"error:    {result['error']}")
    if result["rows"]:
        lines.append(f"first {len(result['rows'])} row(s):")
        for row in result["rows"]:
            lines.append("  " + json.dumps(row, ensure_ascii=False, sort_keys=False))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared inspect",
        description="Detect, parse and map a local log file the way the connector would.")
    parser.add_argument("file", help="log file (gzip or plain)")
    parser.add_argument("--format", dest="fmt", metavar="F",
                        help="force a format: " + ", ".join(f.name for f in formats.FORMATS))
    parser.add_argument("--key", help="the S3 key to detect from (default: the file name)")
    parser.add_argument("--kind", choices=sorted(formats.KINDS),
                        help="treat the key's prefix as declared to carry this kind (the "
                             "source's \"kinds\" setting)")
    parser.add_argument("--source", metavar="NAME",
                        help="apply this AWS_SOURCES source's formatRules, kinds and filters "
                             "(AWS_SOURCES from the environment): shows what would be dropped")
    parser.add_argument("--rows", type=int, default=3, metavar="N",
                        help="how many mapped rows to show (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    source = None
    if args.source:
        try:
            source = next((s for s in load_sources() if s.name == args.source), None)
        except ConfigError as err:
            print(err.message, file=sys.stderr)
            return 2
        if source is None:
            print(f"no source named {args.source!r} in AWS_SOURCES", file=sys.stderr)
            return 2
    result = inspect_file(args.file, args.fmt, key=args.key, rows=max(args.rows, 0),
                          kind=args.kind, source=source)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(render(result))
    return exit_code(result)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
