"""Health: the component checks behind GET /api/health, and pipeline health rows.

Rows go to the ``AWSS3ConnectorHealth_CL`` table (stream ``Custom-AWSS3ConnectorHealth``):
``Kind = "object"`` for every processed object and ``Kind = "heartbeat"`` for every poller run
and source. The workbook and the alert rules in infra/ read them.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .formats.base import iso
from .logsafe import get_logger

log = get_logger(__name__)  # control characters escaped (logsafe)

HEALTH_TABLE = "AWSS3ConnectorHealth_CL"


def _now() -> str:
    return iso(datetime.now(UTC))


@dataclass
class TableCounts:
    """The records of one table in an object whose records go to several (``routing``)."""

    records: int = 0          # read and routed to this table
    accepted_before: int = 0  # accepted on earlier attempts (in the checkpoint)
    accepted: int = 0         # accepted on this attempt (upload threads)
    dead: int = 0             # dead-lettered by this attempt
    filtered: int = 0
    filtered_by: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def filter(self, rule: str) -> None:
        self.filtered += 1
        self.filtered_by[rule] = self.filtered_by.get(rule, 0) + 1


@dataclass
class ObjectStats:
    """What happened to one object; becomes one health row (``rows``: one per table the
    object's records went to, when they went to several)."""

    source: str
    bucket: str
    key: str
    attempt: int = 1
    format: str | None = None
    table: str | None = None
    records_in: int = 0
    records_out: int = 0
    records_dropped: int = 0
    records_skipped: int = 0
    records_filtered: int = 0  # dropped by the source's filters (shared/filters.py)
    filtered_by: dict[str, int] = field(default_factory=dict)
    fields_clipped: int = 0  # field values cut to the service's 64 KB (batching.FIELD_LIMIT)
    dead_total: int = 0  # records of the object dead-lettered so far (this and earlier attempts)
    bytes_in: int = 0
    batches: int = 0
    checkpoint_saves: int = 0  # progress saves while sending (GroupSaver: <= batches)
    event_time_min: str | None = None
    event_time_max: str | None = None
    latency_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    duration_ms: float = 0.0
    outcome: str = ""
    error: str | None = None
    integrity: str | None = None  # which integrity check ran on the read (objects.py)
    # an object of several tables (Format.tables): the counts of each (the fields above are
    # the whole object's)
    routes: dict[str, TableCounts] = field(default_factory=dict)

    def filtered(self, rule: str) -> None:
        self.records_filtered += 1
        self.filtered_by[rule] = self.filtered_by.get(rule, 0) + 1

    def clipped(self, fields: int) -> None:
        """``batching.batches(on_clip=...)``: ``fields`` values of one row were clipped."""
        self.fields_clipped += fields

    def see_time(self, value: str | None) -> None:
        if not value:
            return
        if self.event_time_min is None or value < self.event_time_min:
            self.event_time_min = value
        if self.event_time_max is None or value > self.event_time_max:
            self.event_time_max = value

    def finish(self, outcome: str, s3_event_time: str | None, error: str | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.duration_ms = round((time.monotonic() - self.started) * 1000, 1)
        if s3_event_time:
            try:
                t0 = datetime.fromisoformat(s3_event_time.replace("Z", "+00:00"))
                self.latency_seconds = round(
                    (datetime.now(UTC) - t0).total_seconds(), 3)
            except ValueError:
                pass

    def check_balance(self) -> bool:
        """Records read = accepted + dead-lettered + skipped, for a finished object (accepted
        and dead-lettered counted over all its attempts). A mismatch is a bug: logged, and
        named in the health row's Error."""
        if self.records_in == self.records_out + self.dead_total + self.records_skipped:
            return True
        self.error = (f"record accounting mismatch: read {self.records_in} != accepted "
                      f"{self.records_out} + dead-lettered {self.dead_total} + skipped "
                      f"{self.records_skipped}")
        log.error("%s/%s: %s", self.bucket, self.key, self.error)
        return False

    def row(self) -> dict[str, Any]:
        row = {
            "TimeGenerated": _now(), "Kind": "object", "SourceName": self.source,
            "S3Bucket": self.bucket, "S3Key": self.key, "Format": self.format,
            "TargetTable": self.table, "RecordsIn": self.records_in,
            "RecordsOut": self.records_out, "RecordsDropped": self.records_dropped,
            "RecordsFiltered": self.records_filtered, "FilteredByRule": self.filtered_by or None,
            "FieldsClipped": self.fields_clipped,
            "RecordsSkipped": self.records_skipped,
            "Bytes": self.bytes_in, "Batches": self.batches,
            "LatencySeconds": self.latency_seconds, "DurationMs": self.duration_ms,
            "EventTimeMin": self.event_time_min, "EventTimeMax": self.event_time_max,
            "Outcome": self.outcome, "Error": (self.error or None) and self.error[:2000],
            "Attempt": self.attempt, "IntegrityCheck": self.integrity,
        }
        return {k: v for k, v in row.items() if v is not None}

    def rows(self) -> list[dict[str, Any]]:
        """The object's health rows: one, or for an object whose records went to several
        tables one per table, so that a table's rows reconcile with the RecordsOut of the
        rows naming it (the workbook and the alert sum RecordsOut by TargetTable). The first
        row is the object's own (``table``, the detected format's): it keeps what belongs to
        no table (rejected and skipped records, Bytes, FieldsClipped); each other row counts
        that table's records alone (RecordsIn = RecordsOut + dead-lettered + filtered)."""
        row = self.row()
        others = {t: c for t, c in self.routes.items() if t != self.table and c.records}
        if not others:
            return [row]
        out = [row]
        for table, c in sorted(others.items()):
            extra = {"TargetTable": table, "RecordsIn": c.records,
                     "RecordsOut": c.accepted_before + c.accepted, "RecordsDropped": c.dead,
                     "RecordsFiltered": c.filtered, "RecordsSkipped": 0, "FieldsClipped": 0,
                     "Bytes": 0, "Batches": c.batches}
            for name, value in extra.items():
                if name in row and name != "TargetTable":
                    row[name] -= value  # the object's own row keeps the remainder
            other = {**row, **extra}
            other.pop("FilteredByRule", None)
            if c.filtered_by:
                other["FilteredByRule"] = dict(c.filtered_by)
                mine = dict(row.get("FilteredByRule") or {})
                for rule, n in c.filtered_by.items():
                    mine[rule] = mine.get(rule, 0) - n
                row["FilteredByRule"] = {r: n for r, n in mine.items() if n} or None
                if row["FilteredByRule"] is None:
                    del row["FilteredByRule"]
            out.append(other)
        return out


@dataclass
class Forwarded:
    """What forwarding one SQS message did."""

    enqueued: int = 0
    skipped: list[str] = field(default_factory=list)
    poisoned: bool = False


@dataclass
class PollStats:
    """One poller run for one source; becomes one heartbeat row."""

    source: str
    messages_received: int = 0
    objects_enqueued: int = 0
    objects_skipped: int = 0          # test events, deletes, outside the allow-list
    messages_poisoned: int = 0
    messages_deleted: int = 0
    sqs_backlog: int | None = None
    poison_depth: int | None = None
    circuit_state: str = "closed"
    paused: bool = False              # not polled: the circuit of the ingestion endpoint is open
    error: str | None = None
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    filtered_by: dict[str, int] = field(default_factory=dict)  # this instance, since last beat

    def add(self, outcome: Forwarded) -> None:
        self.objects_enqueued += outcome.enqueued
        self.messages_poisoned += int(outcome.poisoned)
        for reason in outcome.skipped:
            self.objects_skipped += 1
            self.skipped_reasons[reason] = self.skipped_reasons.get(reason, 0) + 1

    def row(self) -> dict[str, Any]:
        row = {
            "TimeGenerated": _now(), "Kind": "heartbeat", "SourceName": self.source,
            "MessagesReceived": self.messages_received, "ObjectsEnqueued": self.objects_enqueued,
            "ObjectsSkipped": self.objects_skipped, "MessagesPoisoned": self.messages_poisoned,
            "SqsBacklog": self.sqs_backlog, "PoisonDepth": self.poison_depth,
            "CircuitState": self.circuit_state,
            "Outcome": "error" if self.error else "paused" if self.paused else "ok",
            "Error": self.error, "RecordsFiltered": sum(self.filtered_by.values()),
            "FilteredByRule": self.filtered_by or None,
        }
        return {k: v for k, v in row.items() if v is not None}


class HealthBuffer:
    """Object health rows, buffered so that small objects do not pay a Logs Ingestion request
    each for their health row (2,000 objects of 2 KB: 2.0 -> ~1.0 requests per object).

    ``add`` keeps rows until ``max_rows`` rows or ``max_bytes`` of JSON are buffered, or the
    oldest is ``max_age`` seconds old (a timer thread), then hands them to ``send`` in one
    call; ``flush`` sends what is buffered now (a heartbeat, ``reset_connector`` and interpreter
    exit call it). What a crash can lose: a worker killed without a normal exit (OOM kill,
    SIGKILL, a host that stops the process without running atexit) loses at most the rows
    buffered then: up to ``max_rows`` rows or ``max_age`` seconds of object health rows. They
    are telemetry only; the records themselves are delivered and checkpointed independently.
    """

    def __init__(self, send: Callable[[list[dict[str, Any]]], None], *, max_rows: int = 200,
                 max_bytes: int = 256 * 1024, max_age: float = 15.0):
        self._send = send
        self.max_rows, self.max_bytes, self.max_age = max_rows, max_bytes, max_age
        self._rows: list[dict[str, Any]] = []
        self._bytes = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows.extend(rows)
            self._bytes += sum(len(json.dumps(r, default=str)) for r in rows)
            full = len(self._rows) >= self.max_rows or self._bytes >= self.max_bytes
            if not full and self._timer is None:
                self._timer = threading.Timer(self.max_age, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            rows, self._rows, self._bytes = self._rows, [], 0
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if rows:
            self._send(rows)

    def __len__(self) -> int:
        return len(self._rows)


# ---- component checks for GET /api/health ---------------------------------------------------

# Details only the `check` CLI shows (it runs with the operator's own access): who we are in
# AWS and raw error texts. /api/health answers anyone holding a function key.
PRIVATE_DETAIL = {"account", "arn"}
_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


def short_reason(err: BaseException) -> str:
    """The error's type and code (an AWS error code, an HTTP status, our error kind), never
    its text: enough to know which component to look at, nothing about the account."""
    code = None
    response = getattr(err, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = response.get("Error", {}).get("Code")
    code = code or getattr(err, "error_code", None) or getattr(err, "status_code", None) \
        or getattr(err, "kind", None)
    code = str(code) if code is not None and _CODE.match(str(code)) else None
    return type(err).__name__ + (f" ({code})" if code else "")


@dataclass
class Check:
    name: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    ms: float = 0.0
    reason: str | None = None

    def as_dict(self, *, detail: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok" if self.ok else "fail", "ms": self.ms}
        out.update(self.detail if detail else
                   {k: v for k, v in self.detail.items() if k not in PRIVATE_DETAIL})
        if self.error and detail:
            out["error"] = self.error
        elif self.error:
            out["reason"] = f"{self.reason or 'failed'}; details: python -m shared check"
        return out


def run_check(name: str, fn: Callable[[], dict[str, Any] | None]) -> Check:
    start = time.monotonic()
    try:
        detail = fn() or {}
        return Check(name, True, detail, ms=round((time.monotonic() - start) * 1000, 1))
    except Exception as err:  # a health check reports every failure, whatever its type
        log.warning("health check %s failed: %s", name, err)
        return Check(name, False, error=f"{type(err).__name__}: {str(err)[:500]}",
                     ms=round((time.monotonic() - start) * 1000, 1), reason=short_reason(err))


def report(checks: list[Check], *, detail: bool = True) -> tuple[int, dict[str, Any]]:
    """``detail=False`` (the HTTP endpoint): status and a short reason per component."""
    healthy = all(c.ok for c in checks)
    body = {"status": "healthy" if healthy else "unhealthy", "time": _now(),
            "components": {c.name: c.as_dict(detail=detail) for c in checks}}
    return (200 if healthy else 503), body
