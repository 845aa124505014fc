"""``s3sentinel`` (also ``python -m shared``): the operator's command line.

Each command parses its arguments, calls one function of the module that owns the work
(``backfill.run``, ``poison.replay``/``peek``/``purge``, ``cli_check.run_checks``,
``cli_status.gather``, ``cli_inspect``) and prints. Settings are read like the app reads
them: the environment first, else the ``Values`` of ``./local.settings.json`` (as ``func start``
does), or of ``--settings FILE``.

Exit status: 0 success, 1 a check failed (or items were kept, nothing found), 2 bad arguments
or settings, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

PROG = "s3sentinel"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad arguments or settings: printed as ``error: ...`` and exit 2."""


# ---- output ----------------------------------------------------------------------------

# C0, DEL, C1 and the bidirectional overrides: a key or a reason must not move the cursor,
# recolour the terminal or reorder what the operator reads
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe(value: Any) -> str:
    """Text for a terminal: control characters shown as escapes (``\\x1b``, ``\\u202e``)."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                   else f"\\u{ord(m[0]):04x}"), text)


def emit(line: str = "") -> None:
    print(line, flush=True)


def emit_json(data: Any) -> None:
    # ensure_ascii: every control character and non-ASCII character is a \u escape
    print(json.dumps(data, indent=1, ensure_ascii=True, default=str), flush=True)


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def interactive() -> bool:
    """Bars on a terminal; plain lines when stdout is not one, or in CI."""
    if os.environ.get("CI"):
        return False
    from rich.console import Console

    return Console().is_terminal and Console(stderr=True).is_terminal


def note(line: str) -> None:
    """Progress goes to stderr: stdout stays the result (and parseable with --json)."""
    print(line, file=sys.stderr, flush=True)


class PlainProgress:
    """Log lines every ``every`` seconds: count, bytes, rate, ETA."""

    def __init__(self, label: str, unit: str, every: float = 5.0):
        self.label, self.unit, self.every = label, unit, every
        self.total = self.total_bytes = self.done = self.bytes = 0
        self.started = self.last = time.monotonic()

    def start(self, total: int, total_bytes: int) -> None:
        self.total, self.total_bytes = total, total_bytes
        self.started = self.last = time.monotonic()
        note(f"{self.label}: {total} {self.unit} ({size(total_bytes)}) to go")

    def advance(self, count: int, nbytes: int) -> None:
        self.done += count
        self.bytes += nbytes
        if time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            note(self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.done / elapsed
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = (f", ETA {int((self.total - self.done) / rate)}s"
               if rate > 0 and self.total > self.done else "")
        return (f"{self.label}: {self.done}/{self.total} {self.unit}{pct}, {size(self.bytes)}, "
                f"{rate:.1f} {self.unit}/s{eta}")

    def note(self, text: str) -> None:
        note(text)

    def close(self) -> None:
        if self.done:
            note(self.line())


class RichProgress:
    """A rich bar: done/total, bytes, rate, ETA (fits 80 columns); notes print above it."""

    def __init__(self, label: str, unit: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed or 0:.1f} {unit}/s")

        self.unit = unit
        console = Console(stderr=True, highlight=False)
        verb, _, target = label.partition(" ")
        console.print(f"{verb} {safe(target)}", markup=False)
        self.progress = Progress(
            SpinnerColumn(), TextColumn(verb), BarColumn(bar_width=20), MofNCompleteColumn(),
            TextColumn("{task.fields[bytes]}"), Rate(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console, transient=False)
        self.task = self.progress.add_task(verb, total=None, bytes="0 B")
        self.bytes = 0
        self.progress.start()

    def start(self, total: int, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self.progress.update(self.task, total=total)

    def advance(self, count: int, nbytes: int) -> None:
        self.bytes += nbytes
        self.progress.update(self.task, advance=count, bytes=size(self.bytes))

    def note(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


@contextmanager
def progress(label: str, unit: str) -> Iterator[Any]:
    bar = RichProgress(label, unit) if interactive() else PlainProgress(label, unit)
    try:
        yield bar
    finally:
        bar.close()


# ---- settings ----------------------------------------------------------------------------

def load_settings_file(path: str | None) -> list[str]:
    """Put the ``Values`` of ``path`` (or ./local.settings.json) into the environment, under
    what the environment already has. Returns the names it added."""
    file = Path(path) if path else Path("local.settings.json")
    if not file.exists():
        if path:
            raise UsageError(f"--settings {path}: no such file")
        return []
    try:
        values = json.loads(file.read_text()).get("Values", {})
        if not isinstance(values, dict):
            raise ValueError("Values is not an object")
    except (OSError, ValueError, AttributeError) as err:
        raise UsageError(f"{file}: not a local.settings.json document ({err})") from err
    added = [str(k) for k in values if str(k) not in os.environ]
    for key in added:
        os.environ[key] = str(values[key])
    return added


def _connector() -> Any:
    from .errors import ConfigError
    from .pipeline import connector

    try:
        return connector()
    except ConfigError as err:
        raise UsageError(err.message) from err


def duration(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 36h, 7d, 2w")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m[2]]
    return timedelta(**{unit: float(m[1])})


def rate(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:/s)?", text.strip())
    if not m or float(m[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate like 50 or 50/s")
    return float(m[1])


def when(end: bool) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        from .backfill import parse_when

        try:
            return parse_when(text, end=end)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a date (2026-11-27, 2026-11-27T10:00Z) or an age (36h, "
                "7d)") from None
    return parse


def positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


# ---- commands ----------------------------------------------------------------------------

def cmd_backfill(args: argparse.Namespace) -> int:
    from . import backfill

    conn = _connector()
    try:
        source = conn.settings.source(args.source)
    except KeyError:
        names = ", ".join(s.name for s in conn.settings.sources)
        raise UsageError(f"--source {args.source}: no such source (AWS_SOURCES has: {names})") \
            from None
    if args.since and args.until and args.since >= args.until:
        raise UsageError("--since must be before --until")
    if args.format:
        from . import formats
        from .errors import FormatError

        try:
            formats.get(args.format)
        except FormatError as err:
            raise UsageError(f"--format: {err.message}") from None
    try:
        plans = backfill.plans(source, bucket=args.bucket, prefix=args.prefix,
                               since=args.since, until=args.until, fmt=args.format,
                               rate=args.rate, dry_run=args.dry_run, restart=args.restart)
    except backfill.BackfillError as err:
        raise UsageError(str(err)) from None
    summaries = []
    for plan in plans:
        label = f"backfill s3://{plan.bucket}/{plan.prefix}"
        with progress(label, "objects") as bar:
            summary = backfill.run(conn, plan, progress=bar)
        summaries.append(summary)
    if args.json:
        emit_json({"summaries": [s.as_dict() for s in summaries]})
        return EXIT_OK
    window = (f"since {args.since:%Y-%m-%d %H:%M}" if args.since else "all time") + \
        (f" until {args.until:%Y-%m-%d %H:%M}" if args.until else "")
    for s in summaries:
        emit(f"backfill {safe(s.source)} s3://{safe(s.bucket)}/{safe(s.prefix)} ({window})"
             + (" -- dry run, nothing enqueued" if s.dry_run else ""))
        if s.already_complete:
            emit("  already complete (an earlier run finished it): --restart to run it again")
            continue
        if s.resumed_after:
            emit(f"  resumed after {safe(s.resumed_after)}")
        emit(f"  listed {s.folders_listed} folder(s), {s.folders_pruned} skipped by date; "
             f"{s.listed} object(s) seen")
        emit(f"  {'would enqueue' if s.dry_run else 'enqueued'} {s.enqueued} object(s), "
             f"{size(s.bytes)}")
        skipped = [(s.skipped_delivered, "already delivered"),
                   (s.skipped_time, "outside the time window"),
                   (s.skipped_format, "not --format"),
                   (s.skipped_not_ingested, "not ingested (digests)"),
                   (s.skipped_allow_list, "outside the allow-list"),
                   (s.skipped_before_cursor, "before the cursor")]
        text = ", ".join(f"{n} {what}" for n, what in skipped if n)
        if text:
            emit(f"  skipped: {text}")
        for name, slot in sorted(s.by_format.items()):
            emit(f"    {safe(name):<22} {slot['objects']:>8} object(s) {size(slot['bytes']):>10}")
        if s.older_than_2_days:
            text = (f"note: {s.older_than_2_days} object(s) are older than 2 days. "
                    f"{backfill.TIME_RULE}.")
            emit(textwrap.fill(text, width=100, initial_indent="  ",
                               subsequent_indent="        "))
    return EXIT_OK


def _filter(args: argparse.Namespace) -> Any:
    from .poison import Filter

    return Filter(stage=args.stage, kind=args.kind, reason=args.reason)


def cmd_poison_list(args: argparse.Namespace) -> int:
    from . import poison

    conn = _connector()
    depth = conn.poison.depth()
    items = [i for i in poison.peek(conn.poison) if _filter(args)(i)]
    groups = poison.group(items)
    if args.json:
        emit_json({"queue": conn.poison.name, "depth": depth, "peeked": len(items),
                   "peek_limit": poison.PEEK_MAX, "groups": groups})
        return EXIT_OK
    more = (f"; the queue holds about {depth}: Azure Storage lets a tool peek at the first "
            f"{poison.PEEK_MAX} without receiving them" if depth > poison.PEEK_MAX else "")
    emit(f"poison queue {conn.poison.name}: {len(items)} item(s) shown, about {depth} in the "
         f"queue (peeked: nothing was received, hidden or removed{more})")
    for g in groups:
        emit(f"  {g['count']:>4} x {safe(g['stage'])}/{safe(g['kind'])}"
             + (f" (HTTP {g['status']})" if g["status"] else "")
             + f"   oldest {safe(g['oldest'])}   newest {safe(g['newest'])}")
        emit(f"         sample: {safe(g['sample'])}   (poison show {g['sample_id']})")
        emit(f"         reason: {safe((g['reason'] or '')[:300])}")
        emit(f"         action: {safe(g['action'])}")
    return EXIT_OK


def cmd_poison_show(args: argparse.Namespace) -> int:
    from . import poison

    conn = _connector()
    item = poison.find(conn.poison, args.id)
    if item is None:
        emit(f"no poison item {safe(args.id)} among the first {poison.PEEK_MAX} of "
             f"{conn.poison.name} (an id prefix must be unique)")
        return EXIT_FAILED
    env = item.envelope
    data = {"id": item.id, "inserted": item.inserted, "dequeue_count": item.dequeue_count,
            "envelope": None if env is None else {
                k: v for k, v in env.__dict__.items() if v is not None},
            "action": poison.action_for(env) if env else None, "error": item.error}
    if args.json:
        emit_json(data)
        return EXIT_OK
    emit(f"id:        {item.id}")
    emit(f"inserted:  {item.inserted}")
    if env is None:
        emit(f"error:     {safe(item.error)}")
        return EXIT_OK
    emit(f"kind:      {safe(env.stage)}/{safe(env.kind)}"
         + (f" (HTTP {env.status} {safe(env.code or '')})" if env.status else ""))
    emit(f"where:     {safe(item.where)}")
    for name in ("source", "table", "attempts", "first_failure", "last_failure"):
        value = getattr(env, name)
        if value is not None:
            emit(f"{name + ':':<10} {safe(value)}")
    emit(f"reason:    {safe(env.reason)}")
    if env.records:
        r = env.records
        lines = r.get("lines") or []
        emit(f"records:   {r.get('count')} (positions {r.get('first')}..{r.get('last')})"
             + (f"; lines {', '.join(map(str, lines[:20]))}" if lines else ""))
    for sample in env.samples or []:
        emit(f"sample:    {safe(sample[:500])}")
    if env.body:
        emit(f"body:      {safe(env.body[:500])}")
    emit(f"action:    {safe(poison.action_for(env))}")
    return EXIT_OK


def cmd_poison_replay(args: argparse.Namespace) -> int:
    from . import poison

    conn = _connector()
    depth = conn.poison.depth()
    with progress(f"replay {conn.poison.name}", "items") as bar:
        bar.start(min(depth, args.limit), 0)

        def on_item(action: str, item: Any, text: str) -> None:
            if not args.json:
                bar.note(f"{action:<16} {safe(text)}   (id {item.id})")

        result = poison.replay(conn, where=_filter(args), limit=args.limit,
                               dry_run=args.dry_run, visibility=args.visibility,
                               on_item=on_item, on_progress=bar.advance)
    if args.json:
        emit_json(result.as_dict())
    else:
        emit(f"{result.replayed} poison item(s) {'would be ' if args.dry_run else ''}replayed "
             f"({result.objects} object(s), {size(result.bytes)}), {result.kept} kept, "
             f"{result.skipped} not matching the filter")
    return EXIT_FAILED if result.kept else EXIT_OK


def cmd_poison_purge(args: argparse.Namespace) -> int:
    from . import poison

    conn = _connector()
    depth = conn.poison.depth()
    if not (args.yes or args.dry_run):
        if not sys.stdin.isatty():
            raise UsageError("purge deletes poison items: confirm with --yes (stdin is not a "
                             "terminal to ask on)")
        answer = input(f"Delete the items older than {args.older_than} from "
                       f"{conn.poison.name} (about {depth} in the queue)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            emit("nothing deleted")
            return EXIT_OK

    def on_item(action: str, item: Any, text: str) -> None:
        if not args.json:
            emit(f"{action:<13} {safe(text)}   (id {item.id})")

    result = poison.purge(conn, older_than=args.older_than, where=_filter(args),
                          dry_run=args.dry_run, on_item=on_item)
    if args.json:
        emit_json(result.as_dict())
    else:
        emit(f"{result.deleted} item(s) {'would be ' if args.dry_run else ''}deleted, "
             f"{result.kept} kept")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from .cli_check import run_checks, scrub

    try:
        conn = _connector()
    except UsageError:
        conn = None  # run_checks reports the settings as the failed component
    report = run_checks(conn, streams=not args.no_streams)
    if args.json:
        emit_json(report)
    else:
        for c in report["components"]:
            detail = " ".join(f"{k}={v}" for k, v in c["detail"].items())
            emit(f"{'pass' if c['ok'] else 'FAIL'}  {safe(c['name']):<34} {c['ms']:>8.1f} ms  "
                 f"{safe(scrub(detail if c['ok'] else c['error'] or ''))[:400]}")
            if c["hint"]:
                emit(f"      fix: {safe(c['hint'])}")
        failed = sum(not c["ok"] for c in report["components"])
        emit(f"{len(report['components']) - failed} passed, {failed} failed")
    return EXIT_OK if report["ok"] else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from .cli_status import gather

    conn = _connector()
    data = gather(conn, window=args.window)
    if args.json:
        emit_json(data)
    else:
        emit(f"status at {data['time']}")
        for s in data["sources"]:
            age = (f"{s['oldest_age_s']:.0f}s" if s["oldest_age_s"] is not None
                   else f"n/a ({s['oldest_age_note']})")
            backlog = (f"backlog {s['backlog']}, in flight {s['in_flight']}" if "backlog" in s
                       else f"SQS error: {safe(s['error'])}")
            emit(f"  source {safe(s['name'])}: {backlog}, oldest message {age}")
            beat = s["last_heartbeat"]
            if beat:
                emit(f"    last heartbeat {safe(beat['time'])}: {beat['outcome']}, "
                     f"{beat['messages']} message(s), {beat['enqueued']} enqueued"
                     + (f", error {safe(beat['error'])[:200]}" if beat.get("error") else ""))
            else:
                emit("    last heartbeat: none yet (the poller has not run against this "
                     "checkpoint table)")
        for name, q in data["queues"].items():
            emit(f"  {name} queue {safe(q['name'])}: "
                 + (f"{q['depth']} message(s)" if "depth" in q else f"error {safe(q['error'])}"))
        c = data["circuit"]
        emit(f"  circuit: {c['this_process']} in this process, "
             f"{c['last_poller_run'] or 'unknown'} at the last poller run")
        o = data["objects"]
        emit(f"  objects in the last {o['window_minutes']} min: {o['delivered']} delivered, "
             f"{o['partial']} partial, {o['running']} running, {o['retrying']} retrying, "
             f"{o['dead_lettered']} dead-lettered" + (" (counting stopped at "
                                                      "100000)" if o["truncated"] else ""))
    broken = any("error" in s for s in data["sources"]) or \
        any("error" in q for q in data["queues"].values())
    return EXIT_FAILED if broken else EXIT_OK


# ---- the parser ----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with the usage and what to type next
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n(see `{self.prog} --help`)\n")


HELP = argparse.RawDescriptionHelpFormatter

EXAMPLES = {
    "backfill": """examples:
  s3sentinel backfill --source prod --since 7d --dry-run
  s3sentinel backfill --source prod --bucket org-trail --prefix AWSLogs/o-abc123/ \\
      --since 2026-11-01 --until 2026-11-07 --format cloudtrail --rate 20/s
  s3sentinel backfill --source prod --since 30d --json   # summary for a script

Run the same command again after an interruption: it continues after the last key it
handled (the cursor is kept in the checkpoint table); --restart starts over.""",
    "poison list": """examples:
  s3sentinel poison list
  s3sentinel poison list --stage deliver --kind delivery_rejected
  s3sentinel poison list --reason 403 --json""",
    "poison show": """examples:
  s3sentinel poison show 3c8d0a5e-1f2b-4c3d-9e8f-001122334455
  s3sentinel poison show 3c8d0a5e --json""",
    "poison replay": """examples:
  s3sentinel poison replay --dry-run
  s3sentinel poison replay --kind delivery_rejected --limit 100
  s3sentinel replay                  # the same (alias)""",
    "poison purge": """examples:
  s3sentinel poison purge --older-than 14d            # asks first
  s3sentinel poison purge --older-than 1d --kind bad_notification --yes""",
    "check": """examples:
  s3sentinel check
  s3sentinel check --json | jq '.components[] | select(.ok | not)'
  s3sentinel check --settings prod.settings.json""",
    "status": """examples:
  s3sentinel status
  s3sentinel status --window 6h --json""",
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--settings", metavar="FILE", default=argparse.SUPPRESS,
                        help="a local.settings.json to read the Values of (under the "
                             "environment); default ./local.settings.json if present")
    parser = _Parser(prog=PROG, formatter_class=HELP, parents=[common],
                     description=__doc__.split("\n\n")[0].replace("``", "`"),
                     epilog="""examples:
  s3sentinel check
  s3sentinel backfill --source prod --since 7d --dry-run
  s3sentinel poison list
  s3sentinel inspect some-object.json.gz

exit status: 0 ok, 1 a check failed, 2 bad arguments or settings""")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, parent: Any = sub, **kw: Any) -> argparse.ArgumentParser:
        key = name if parent is sub else f"poison {name}"
        return parent.add_parser(name, parents=[common], formatter_class=HELP,
                                 epilog=EXAMPLES.get(key), **kw)

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", choices=["notification", "read", "parse", "deliver",
                                           "process"], help="only items of this stage")
        p.add_argument("--kind", metavar="K", help="only this error kind (e.g. "
                       "delivery_rejected, object_read, bad_format, bad_notification)")
        p.add_argument("--reason", metavar="TEXT", help="only items whose reason contains TEXT")

    b = add("backfill", help="enqueue objects already in S3, by date",
            description="List the S3 prefixes the dates need (AWS's dated layouts, fanning out "
                        "over accounts and regions), filter by LastModified, skip what is "
                        "already delivered, and enqueue at a bounded rate.")
    b.add_argument("--source", required=True, metavar="NAME", help="a source of AWS_SOURCES")
    b.add_argument("--bucket", metavar="B", help="default: every bucket of the source")
    b.add_argument("--prefix", metavar="P", help="default: the allow-list prefixes")
    b.add_argument("--since", type=when(False), metavar="DATE",
                   help="2026-11-01, 2026-11-01T06:00Z, or an age: 36h, 7d")
    b.add_argument("--until", type=when(True), metavar="DATE",
                   help="exclusive; a plain date includes that day")
    b.add_argument("--format", metavar="F", help="only objects whose key names this format")
    b.add_argument("--rate", type=rate, default=50.0, metavar="N/s",
                   help="work items per second (default 50)")
    b.add_argument("--dry-run", action="store_true", help="list and count, enqueue nothing")
    b.add_argument("--restart", action="store_true",
                   help="ignore the cursor of an earlier run of this same backfill")
    b.add_argument("--json", action="store_true", help="print the summary as JSON")
    b.set_defaults(func=cmd_backfill)

    p = add("poison", help="list / show / replay / purge dead-lettered items",
            description="Triage the poison queue.")
    psub = p.add_subparsers(dest="poison_command", metavar="ACTION", parser_class=_Parser)
    psub.required = True
    pl = add("list", psub, help="group items by kind and stage (peek: removes and hides "
                                "nothing)",
             description="Peek at the poison queue: items grouped by kind and stage with "
                         "count, oldest/newest, one sample, the reason and what to do.")
    filters(pl)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_poison_list)
    ps = add("show", psub, help="one item in full", description="Show one poison item.")
    ps.add_argument("id", help="message id (or a unique prefix), from `poison list`")
    ps.add_argument("--json", action="store_true")
    ps.set_defaults(func=cmd_poison_show)
    for parent, name in ((psub, "replay"), (sub, "replay")):
        pr = parent.add_parser(name, parents=[common], formatter_class=HELP,
                               epilog=EXAMPLES["poison replay"],
                               help="poison queue -> work queue, after the cause is fixed"
                                    + (" (alias)" if parent is sub else ""),
                               description="Send the objects of matching poison items back "
                                           "to the work queue, one work item per object.")
        filters(pr)
        pr.add_argument("--limit", type=positive, default=1000, metavar="N",
                        help="replay at most N items (default 1000)")
        pr.add_argument("--dry-run", action="store_true", help="say what would be replayed")
        pr.add_argument("--visibility", type=positive, default=60, metavar="S",
                        help="seconds an item looked at stays hidden should the run die "
                             "before it makes them visible again (default 60)")
        pr.add_argument("--json", action="store_true")
        pr.set_defaults(func=cmd_poison_replay)
    pp = add("purge", psub, help="delete old items (asks first; --yes for scripts)",
             description="Delete poison items older than a duration.")
    pp.add_argument("--older-than", type=duration, required=True, metavar="D",
                    help="e.g. 14d, 36h")
    filters(pp)
    pp.add_argument("--yes", action="store_true", help="do not ask")
    pp.add_argument("--dry-run", action="store_true")
    pp.add_argument("--json", action="store_true")
    pp.set_defaults(func=cmd_poison_purge)

    c = add("check", help="every component: pass/fail, time, what to fix",
            description="Run the app's health checks and probe every DCR stream; one line "
                        "per component with a hint for each failure.")
    c.add_argument("--no-streams", action="store_true", help="skip the DCR stream probes")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_check)

    s = add("status", help="backlog, queues, circuit, recent objects, last heartbeat",
            description="Where the work is now.")
    s.add_argument("--window", type=duration, default=timedelta(hours=1), metavar="D",
                   help="how far back to count objects (default 1h)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    add("inspect", help="detect, parse and map a local file (see `inspect --help`)",
        add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "inspect":  # its own parser, unchanged
        from .cli_inspect import main as inspect_main

        try:
            return inspect_main(argv[1:])
        except SystemExit as stop:  # --help, or argparse's exit 2 on bad arguments
            return int(stop.code or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    added: list[str] = []
    try:
        added = load_settings_file(getattr(args, "settings", None))
        return int(args.func(args))
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; run the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `s3sentinel status --json | head`: the reader has had enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:  # a caller in the same process (a test, a notebook) gets its environment back
        for key in added:
            os.environ.pop(key, None)


def entry() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
