"""Per-object progress and dedup state in Azure Table storage.

One entity per object (PartitionKey = source, RowKey = hash of bucket/key/version-or-ETag):
the record positions already accepted (as intervals), the state, attempts and first failure.
A retried object skips what was accepted and what was already dead-lettered (a replay tries
the dead-lettered records again), so at most the batches in flight repeat and no record is
reported twice; an object already ``done`` is not sent twice when its notification comes again.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from .notifications import ObjectRef

log = logging.getLogger(__name__)

DONE = "done"          # every record accepted (or deliberately skipped)
PARTIAL = "partial"    # finished, but some records were dead-lettered
RUNNING = "running"    # attempted, not finished (a retry resumes from here)


class Ranges:
    """A set of non-negative ints stored as sorted, merged [start, end) intervals."""

    def __init__(self, intervals: list[list[int]] | None = None):
        self._iv: list[list[int]] = [list(i) for i in (intervals or [])]

    def add(self, positions: list[int]) -> None:
        for p in positions:
            self._iv.append([p, p + 1])
        self._iv.sort()
        merged: list[list[int]] = []
        for start, end in self._iv:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._iv = merged

    def __contains__(self, p: int) -> bool:
        lo, hi = 0, len(self._iv)
        while lo < hi:
            mid = (lo + hi) // 2
            start, end = self._iv[mid]
            if p < start:
                hi = mid
            elif p >= end:
                lo = mid + 1
            else:
                return True
        return False

    def __len__(self) -> int:
        return sum(end - start for start, end in self._iv)

    def intervals(self) -> list[list[int]]:
        return [list(i) for i in self._iv]


@dataclass
class Progress:
    state: str = ""
    done: Ranges = field(default_factory=Ranges)
    dead: Ranges = field(default_factory=Ranges)  # dead-lettered: settled until a replay
    attempts: int = 0
    first_failure: str | None = None
    last_error: str | None = None
    etag: str | None = None  # table entity etag for optimistic concurrency


def _row_key(ref: ObjectRef) -> str:
    return hashlib.sha256(ref.identity.encode()).hexdigest()[:48]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Checkpoints:
    def __init__(self, table_client: Any):
        self._table = table_client
        self._created = False

    def _ensure(self) -> None:
        if not self._created:
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass
            self._created = True

    def load(self, ref: ObjectRef) -> Progress:
        self._ensure()
        try:
            e = self._table.get_entity(partition_key=ref.source, row_key=_row_key(ref))
        except ResourceNotFoundError:
            return Progress()
        return Progress(state=e.get("State", ""), done=Ranges(json.loads(e.get("Done") or "[]")),
                        dead=Ranges(json.loads(e.get("Dead") or "[]")),
                        attempts=int(e.get("Attempts", 0)), first_failure=e.get("FirstFailure"),
                        last_error=e.get("LastError"),
                        etag=getattr(e, "metadata", {}).get("etag"))

    def save(self, ref: ObjectRef, progress: Progress) -> None:
        self._ensure()
        entity = {
            "PartitionKey": ref.source, "RowKey": _row_key(ref),
            "Bucket": ref.bucket, "Key": ref.key[:1024], "Identity": ref.identity[:1024],
            "State": progress.state, "Done": json.dumps(progress.done.intervals()),
            "Dead": json.dumps(progress.dead.intervals()),
            "Attempts": progress.attempts, "FirstFailure": progress.first_failure or "",
            "LastError": (progress.last_error or "")[:4000], "UpdatedAt": _now(),
        }
        self._table.upsert_entity(entity)
