"""The poison envelope: one format for everything that is dead-lettered, and its replay.

An envelope says what failed (the object, or the SQS body), which records, why (error kind,
HTTP status and code, the service's text), how often it was tried and when it first and last
failed. It is plain JSON a person can read in Storage Explorer and a tool can replay. It never
exceeds what a Storage queue message may hold: long text is cut and the cut is marked.

The Functions host may also move a raw work item to the poison queue (a host crash on the last
attempt). ``read_envelope`` recognises that shape too, so replay treats both alike.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import ConnectorError
from .notifications import ObjectRef
from .queues import MAX_TEXT_BYTES

SCHEMA = "s3-sentinel-poison/1"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Envelope:
    kind: str                       # error kind (errors.py), e.g. delivery_rejected
    reason: str                     # what happened and what to do, for a person
    stage: str                      # notification | read | parse | deliver
    source: str | None = None
    object: dict[str, Any] | None = None   # ObjectRef fields
    status: int | None = None
    code: str | None = None
    table: str | None = None
    records: dict[str, Any] | None = None  # {"count", "first", "last", "positions", "lines"}
    attempts: int = 1
    first_failure: str = field(default_factory=now_iso)
    last_failure: str = field(default_factory=now_iso)
    samples: list[str] | None = None       # a few raw records/lines (cut)
    body: str | None = None                # SQS body (cut) for notification failures
    body_sha256: str | None = None
    schema: str = SCHEMA

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) <= MAX_TEXT_BYTES:
            return text
        return _shrink(data)

    @property
    def ref(self) -> ObjectRef | None:
        if not self.object:
            return None
        return ObjectRef(**{k: v for k, v in self.object.items()
                            if k in ObjectRef.__dataclass_fields__})


def _cut(text: str, limit: int) -> str:
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", "ignore") + f"...[cut {len(raw) - limit} bytes]"


def _shrink(data: dict[str, Any]) -> str:
    """Cut the largest free-text fields until the envelope fits one queue message."""
    for limit in (16384, 4096, 1024, 256):
        if "body" in data:
            data["body"] = _cut(data["body"], limit * 2)
        if "samples" in data:
            data["samples"] = [_cut(s, limit // 2) for s in data["samples"][:3]]
        data["reason"] = _cut(data["reason"], limit)
        recs = data.get("records")
        for name in ("positions", "lines"):
            if recs and name in recs and len(recs[name]) > limit // 16:
                recs[name] = recs[name][: limit // 16]
                recs[f"{name}_cut"] = True
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) <= MAX_TEXT_BYTES:
            return text
    data.pop("samples", None)
    data["body"] = _cut(data.get("body", ""), 512)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def for_body(body: str, error: ConnectorError, *, source: str,
             message_id: str | None) -> Envelope:
    """An SQS body we could not read."""
    return Envelope(kind=error.kind, stage="notification", source=source,
                    reason=f"{error.message} (SQS message {message_id}); the message was "
                           "removed from SQS: fix the sender or the format, then replay",
                    body=body, body_sha256=hashlib.sha256(body.encode()).hexdigest())


def for_object(ref: ObjectRef, error: ConnectorError, *, stage: str, attempts: int,
               first_failure: str | None = None, table: str | None = None,
               positions: Any = None, samples: list[str] | None = None,
               lines: list[int] | None = None) -> Envelope:
    """An object (or some of its records) that will not be delivered. ``positions`` are
    record indices in the object (what a replay resumes by); ``lines`` are the line or record
    numbers as the parser counts them (1-based), for the person who opens the file."""
    records = None
    if positions and hasattr(positions, "head"):  # checkpoints.Ranges (bounded in memory)
        records = {"count": len(positions), "first": positions.first, "last": positions.last,
                   "positions": positions.head(2000)}
    elif positions:
        records = {"count": len(positions), "first": min(positions), "last": max(positions),
                   "positions": sorted(positions)[:2000]}
    if records and lines:
        records["lines"] = lines[:2000]
    return Envelope(kind=error.kind, stage=stage, source=ref.source,
                    object=json.loads(ref.to_json()), status=error.status, code=error.code,
                    table=table, reason=error.message, records=records, attempts=attempts,
                    first_failure=first_failure or now_iso(), samples=samples)


def read_envelope(text: str | bytes) -> Envelope:
    """Parse a poison message: our envelope, or a raw work item the host moved there."""
    data = json.loads(text)
    if isinstance(data, dict) and data.get("schema") == SCHEMA:
        fields = {k: v for k, v in data.items() if k in Envelope.__dataclass_fields__}
        return Envelope(**fields)
    ref = ObjectRef.from_json(text)
    return Envelope(kind="host_poison", stage="process", source=ref.source,
                    object=json.loads(ref.to_json()),
                    reason="moved here by the Functions host after maxDequeueCount "
                           "(the worker crashed or timed out on the last attempt)")
