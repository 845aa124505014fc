"""Health: the component checks behind GET /api/health, and pipeline health rows.

Rows go to the ``AWSS3ConnectorHealth_CL`` table (stream ``Custom-AWSS3ConnectorHealth``):
``Kind = "object"`` for every processed object and ``Kind = "heartbeat"`` for every poller run
and source. The workbook and the alert rules in infra/ read them.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .formats.base import iso

log = logging.getLogger(__name__)

HEALTH_TABLE = "AWSS3ConnectorHealth_CL"


def _now() -> str:
    return iso(datetime.now(UTC))


@dataclass
class ObjectStats:
    """What happened to one object; becomes one health row."""

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
    dead_total: int = 0  # records of the object dead-lettered so far (this and earlier attempts)
    bytes_in: int = 0
    batches: int = 0
    event_time_min: str | None = None
    event_time_max: str | None = None
    latency_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    duration_ms: float = 0.0
    outcome: str = ""
    error: str | None = None

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
            "RecordsSkipped": self.records_skipped,
            "Bytes": self.bytes_in, "Batches": self.batches,
            "LatencySeconds": self.latency_seconds, "DurationMs": self.duration_ms,
            "EventTimeMin": self.event_time_min, "EventTimeMax": self.event_time_max,
            "Outcome": self.outcome, "Error": (self.error or None) and self.error[:2000],
            "Attempt": self.attempt,
        }
        return {k: v for k, v in row.items() if v is not None}


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
            "Error": self.error,
        }
        return {k: v for k, v in row.items() if v is not None}


# ---- component checks for GET /api/health ---------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok" if self.ok else "fail", "ms": self.ms}
        out.update(self.detail)
        if self.error:
            out["error"] = self.error
        return out


def run_check(name: str, fn: Callable[[], dict[str, Any] | None]) -> Check:
    start = time.monotonic()
    try:
        detail = fn() or {}
        return Check(name, True, detail, ms=round((time.monotonic() - start) * 1000, 1))
    except Exception as err:  # a health check reports every failure, whatever its type
        log.warning("health check %s failed: %s", name, err)
        return Check(name, False, error=f"{type(err).__name__}: {str(err)[:500]}",
                     ms=round((time.monotonic() - start) * 1000, 1))


def report(checks: list[Check]) -> tuple[int, dict[str, Any]]:
    healthy = all(c.ok for c in checks)
    body = {"status": "healthy" if healthy else "unhealthy", "time": _now(),
            "components": {c.name: c.as_dict() for c in checks}}
    return (200 if healthy else 503), body
