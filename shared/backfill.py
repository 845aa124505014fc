"""Backfill: put objects already in S3 on the work queue, listing only what the dates need.

AWS writes logs under dated folders, after a few levels that fan out by account, service and
region::

    AWSLogs/<account>/<Service>/<region>/YYYY/MM/DD/...             CloudTrail, VPC Flow, ALB/ELB,
                                                                    GuardDuty, WAF, Network Firewall
    AWSLogs/o-<org>/<account>/CloudTrail/<region>/YYYY/MM/DD/...    organization trails
    o-<org>/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/...    Control Tower log archive
    AWSLogs/aws-account-id=<a>/aws-service=vpcflowlogs/aws-region=<r>/year=YYYY/month=MM/day=DD/
    <prefix>/YYYY/MM/DD/HH/...                                      Firehose (CloudWatch, WAF)

``walk`` lists one level at a time with ``Delimiter="/"``: a folder that reads as the next
date part (``YYYY`` / ``year=YYYY``, then ``MM``, ``DD``) is entered only when its period meets
``--since``/``--until``; any other folder (an account, org, service, region) is entered in turn
(the fan-out); below a day, and below ``MAX_DEPTH`` levels, the listing is flat. Objects are
filtered by LastModified too: an object written before ``since`` cannot hold a later event.

Every object passes the source's bucket/prefix allow-list before it is enqueued; one the
checkpoint table has as delivered is skipped. Enqueueing is paced (``rate`` per second), and a
cursor (the last key handled) is saved in the checkpoint table, so the same command run again
after an interruption continues after that key instead of starting over.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from . import checkpoints as cp
from . import formats
from .config import Source
from .notifications import ObjectRef

log = logging.getLogger(__name__)

MAX_DEPTH = 10            # folder levels walked one by one before listing flat
LATE_DELIVERY = timedelta(days=1)   # a day's logs are written up to this long after it ends
OLD_AFTER = timedelta(days=2)       # Azure Monitor's TimeGenerated rule
CURSOR_EVERY = 200        # objects between two cursor saves (and at most 5 s)
TIME_RULE = ("Azure Monitor replaces a TimeGenerated more than 2 days old (or more than 1 day in "
             "the future) with the time it receives the row: these rows land with today's "
             "TimeGenerated; the event's own time stays in the tables' second time column "
             "(e.g. VPC Flow Start/End, GuardDuty TimeCreated) and in the health rows' "
             "EventTimeMin/EventTimeMax")

_DATE_PARTS = (  # (pattern, lowest, highest) for year, month, day
    (re.compile(r"^(?:year=)?(\d{4})$"), 1990, 2100),
    (re.compile(r"^(?:month=)?(\d{2})$"), 1, 12),
    (re.compile(r"^(?:day=)?(\d{2})$"), 1, 31),
)


class BackfillError(ValueError):
    """The request cannot be run as given (unknown bucket, prefix outside the allow-list)."""


@dataclass(frozen=True)
class Plan:
    source: Source
    bucket: str
    prefix: str = ""
    since: datetime | None = None
    until: datetime | None = None     # exclusive
    fmt: str | None = None
    rate: float = 50.0                # work items per second
    dry_run: bool = False
    restart: bool = False

    @property
    def job(self) -> str:
        """What names the cursor: the same command resumes the same job."""
        parts = (self.source.name, self.bucket, self.prefix,
                 self.since.isoformat() if self.since else "",
                 self.until.isoformat() if self.until else "", self.fmt or "")
        return "\x1f".join(parts)


@dataclass
class Summary:
    source: str
    bucket: str
    prefix: str
    dry_run: bool = False
    listed: int = 0                   # objects the listing returned below the dated folders
    enqueued: int = 0
    bytes: int = 0                    # of the enqueued objects
    skipped_delivered: int = 0
    skipped_time: int = 0             # LastModified outside the window
    skipped_format: int = 0           # not the --format asked for
    skipped_not_ingested: int = 0     # e.g. CloudTrail digest files
    skipped_allow_list: int = 0
    skipped_before_cursor: int = 0
    folders_listed: int = 0
    folders_pruned: int = 0           # dated folders outside the window, never listed
    older_than_2_days: int = 0
    by_format: dict[str, dict[str, int]] = field(default_factory=dict)
    resumed_after: str | None = None
    complete: bool = False
    already_complete: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["time_rule"] = TIME_RULE if self.older_than_2_days else None
        return out


class Progress(Protocol):
    def start(self, total: int, total_bytes: int) -> None: ...
    def advance(self, count: int, nbytes: int) -> None: ...


class _NoProgress:
    def start(self, total: int, total_bytes: int) -> None:
        pass

    def advance(self, count: int, nbytes: int) -> None:
        pass


def parse_when(text: str, *, end: bool = False, now: datetime | None = None) -> datetime:
    """``2026-11-27`` (a day; as ``end`` the day after, so --until includes it),
    ``2026-11-27T10:00[Z]``, or an age: ``36h``, ``7d``, ``2w``. Raises ValueError."""
    now = now or datetime.now(UTC)
    m = re.fullmatch(r"(\d+)([mhdw])", text.strip())
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m[2]]
        return now - timedelta(**{unit: int(m[1])})
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        day = datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
        return day + timedelta(days=1) if end else day
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def plans(source: Source, *, bucket: str | None, prefix: str | None,
          **options: Any) -> list[Plan]:
    """One plan per (bucket, prefix) the request covers, inside the source's allow-list."""
    if bucket is None:
        if not source.buckets:
            raise BackfillError(f"source {source.name} has no buckets in AWS_SOURCES: give "
                                "--bucket")
        pairs = [(b, p) for b, ps in sorted(source.buckets.items()) for p in ps]
    else:
        allowed = source.buckets.get(bucket) if source.buckets else ("",)
        if allowed is None:
            raise BackfillError(f"bucket {bucket} is not in source {source.name}'s allow-list "
                                f"(buckets: {', '.join(sorted(source.buckets))})")
        pairs = [(bucket, p) for p in allowed]
    if prefix is not None:
        inside = [(b, prefix) for b, p in pairs if prefix.startswith(p)]
        # a prefix wider than an allowed one (AWSLogs/ allowed, "" asked): list the allowed one
        narrower = [(b, p) for b, p in pairs if p.startswith(prefix) and not prefix.startswith(p)]
        pairs = inside or narrower
        if not pairs:
            raise BackfillError(f"prefix {prefix!r} is outside source {source.name}'s "
                                "allow-list")
    pairs = sorted(set(pairs))
    # a prefix inside another one would list the same objects twice
    pairs = [(b, p) for b, p in pairs
             if not any(b == b2 and p != p2 and p.startswith(p2) for b2, p2 in pairs)]
    return [Plan(source, b, p, **options) for b, p in pairs]


def guess_format(source: Source, key: str) -> formats.Format | None:
    """The format the key names (a source's formatRules first), without reading the object."""
    override = source.format_for(key)
    if override:
        return formats.get(override)
    for fmt in formats.FORMATS:
        if fmt.key_pattern is not None and fmt.key_pattern.search(key):
            return fmt
    return None


def _period(parts: tuple[int, ...]) -> tuple[datetime, datetime]:
    y = parts[0]
    if len(parts) == 1:
        return datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC)
    m = parts[1]
    start = datetime(y, m, 1, tzinfo=UTC)
    if len(parts) == 2:
        return start, datetime(y + m // 12, m % 12 + 1, 1, tzinfo=UTC)
    day = start.replace(day=parts[2])
    return day, day + timedelta(days=1)


def _date_part(segment: str, parts: tuple[int, ...]) -> tuple[int, ...] | None:
    if len(parts) >= len(_DATE_PARTS):
        return None
    pattern, lo, hi = _DATE_PARTS[len(parts)]
    m = pattern.match(segment)
    if not m or not lo <= int(m[1]) <= hi:
        return None
    new = (*parts, int(m[1]))
    try:
        _period(new)
    except ValueError:  # 2026/02/30
        return None
    return new


@dataclass
class _Listed:
    obj: dict[str, Any]
    day_end: datetime | None    # end of the dated folder's period (its events are before it)

    @property
    def dated(self) -> bool:
        return self.day_end is not None

    @property
    def events_before(self) -> datetime:
        """A bound on the object's event times: its folder's date, else its write time."""
        modified = self.obj["LastModified"]
        return min(self.day_end, modified) if self.day_end else modified


class Lister:
    """The pruned listing of one plan, in key order; ``after`` skips keys up to a cursor."""

    def __init__(self, s3: Callable[[Callable[[Any], Any]], Any], plan: Plan,
                 summary: Summary, *, after: str | None = None):
        self.s3, self.plan, self.summary, self.after = s3, plan, summary, after

    def _pages(self, prefix: str, delimiter: bool) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.plan.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = "/"
        elif self.after and self.after.startswith(prefix):
            # flat listings only: folders rolled up by a delimiter are skipped by name
            kwargs["StartAfter"] = self.after
        self.summary.folders_listed += 1
        while True:
            page = self.s3(lambda c, kw=dict(kwargs): c.list_objects_v2(**kw))
            yield page
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    def __iter__(self) -> Iterator[_Listed]:
        yield from self._walk(self.plan.prefix, (), 0)

    def _walk(self, prefix: str, parts: tuple[int, ...], depth: int) -> Iterator[_Listed]:
        flat = len(parts) >= 3 or depth >= MAX_DEPTH
        for page in self._pages(prefix, delimiter=not flat):
            entries = [(o["Key"], o) for o in page.get("Contents", [])]
            entries += [(p["Prefix"], None) for p in page.get("CommonPrefixes", [])]
            for name, obj in sorted(entries, key=lambda e: e[0]):
                if obj is not None:
                    if self.after is not None and name <= self.after:
                        self.summary.skipped_before_cursor += 1
                        continue
                    yield _Listed(obj, _period(parts)[1] if parts else None)
                    continue
                if self.after is not None and name < self.after \
                        and not self.after.startswith(name):
                    continue  # every key below it is before the cursor: done on an earlier run
                segment = name[len(prefix):].rstrip("/")
                dated = _date_part(segment, parts)
                if dated is not None:
                    if not self._meets(dated):
                        self.summary.folders_pruned += 1
                        continue
                    yield from self._walk(name, dated, depth + 1)
                else:
                    yield from self._walk(name, parts, depth + 1)

    def _meets(self, parts: tuple[int, ...]) -> bool:
        start, end = _period(parts)
        since, until = self.plan.since, self.plan.until
        return (since is None or end > since) and (until is None or start < until)


def _in_window(plan: Plan, item: _Listed) -> bool:
    modified = item.obj["LastModified"]
    if plan.since and modified < plan.since:
        return False
    # a dated folder already bounds the events; its objects are written up to a day later
    late = LATE_DELIVERY if item.dated else timedelta(0)
    return not (plan.until and modified >= plan.until + late)


def _candidates(conn: Any, plan: Plan, summary: Summary,
                after: str | None) -> Iterator[tuple[_Listed, formats.Format | None]]:
    """Objects that pass the window, the allow-list and --format, in key order."""
    s3 = lambda fn: conn.aws.call(plan.source, "s3", fn)  # noqa: E731
    for item in Lister(s3, plan, summary, after=after):
        summary.listed += 1
        key = item.obj["Key"]
        if key.endswith("/") and not item.obj.get("Size"):
            continue  # a "folder" placeholder the console creates
        if not _in_window(plan, item):
            summary.skipped_time += 1
            continue
        if not plan.source.allows(plan.bucket, key):
            summary.skipped_allow_list += 1
            continue
        fmt = guess_format(plan.source, key)
        if plan.fmt and (fmt is None or fmt.name != plan.fmt):
            summary.skipped_format += 1
            continue
        yield item, fmt


def run(conn: Any, plan: Plan, *, progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep) -> Summary:
    """List, filter and enqueue one plan; resumes after the job's saved cursor."""
    progress = progress or _NoProgress()
    started = clock()
    summary = Summary(plan.source.name, plan.bucket, plan.prefix, dry_run=plan.dry_run)
    job = hashlib.sha256(plan.job.encode()).hexdigest()[:32]
    saved = None if plan.dry_run else conn.checkpoints.get_meta("backfill", job)
    if saved and not plan.restart:
        if saved.get("State") == "complete":
            summary.already_complete = summary.complete = True
            return summary
        summary.resumed_after = saved.get("Cursor") or None
    after = summary.resumed_after

    # pass 1: how much there is (for the bar's total and ETA); the listing is cheap next to
    # one queue message per object, and holds nothing but two counters
    scratch = Summary(plan.source.name, plan.bucket, plan.prefix)
    total = total_bytes = 0
    for item, _ in _candidates(conn, plan, scratch, after):
        total += 1
        total_bytes += int(item.obj.get("Size") or 0)
    progress.start(total, total_bytes)

    cutoff = datetime.now(UTC) - OLD_AFTER
    interval = 1.0 / plan.rate if plan.rate > 0 else 0.0
    next_send = clock()
    last_save, since_save, cursor = clock(), 0, after

    def save(state: str) -> None:
        if not plan.dry_run:
            conn.checkpoints.put_meta("backfill", job, {
                "Job": plan.job.replace("\x1f", " | "), "State": state, "Cursor": cursor or "",
                "Enqueued": summary.enqueued})

    try:
        for item, fmt in _candidates(conn, plan, summary, after):
            obj = item.obj
            size = int(obj.get("Size") or 0)
            ref = ObjectRef(source=plan.source.name, bucket=plan.bucket, key=obj["Key"],
                            size=size, etag=str(obj.get("ETag", "")).strip('"') or None,
                            event_time=obj["LastModified"].isoformat())
            if fmt is not None and fmt.table is None:
                summary.skipped_not_ingested += 1
            elif conn.checkpoints.load(ref).state in (cp.DONE, cp.PARTIAL):
                summary.skipped_delivered += 1
            else:
                if interval:
                    now = clock()
                    if next_send > now:
                        sleep(next_send - now)
                    next_send = max(next_send, clock()) + interval
                if not plan.dry_run:
                    conn.work.send(ref.to_json())
                summary.enqueued += 1
                summary.bytes += size
                summary.older_than_2_days += item.events_before < cutoff
                name = fmt.name if fmt else "unknown (detected from the content)"
                slot = summary.by_format.setdefault(name, {"objects": 0, "bytes": 0})
                slot["objects"] += 1
                slot["bytes"] += size
            cursor = obj["Key"]
            progress.advance(1, size)
            since_save += 1
            if since_save >= CURSOR_EVERY or clock() - last_save > 5:
                save("running")
                last_save, since_save = clock(), 0
    except BaseException:
        save("running")  # interrupted or failed: the next run continues after `cursor`
        raise
    summary.complete = True
    save("complete")
    summary.seconds = round(clock() - started, 2)
    return summary
