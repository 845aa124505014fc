"""Per-object progress and dedup state in Azure Table storage.

One entity per object (PartitionKey = source, RowKey = hash of bucket/key/version-or-ETag):
the record positions already accepted (as intervals), the state, attempts and first failure.
A retried object skips what was accepted and what was already dead-lettered (a replay tries
the dead-lettered records again), so at most the batches in flight repeat and no record is
reported twice; an object already ``done`` is not sent twice when its notification comes again.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode

from .errors import LeaseLost
from .logsafe import get_logger
from .notifications import ObjectRef

log = get_logger(__name__)  # control characters escaped (logsafe)

DONE = "done"          # every record accepted (or deliberately skipped)
PARTIAL = "partial"    # finished, but some records were dead-lettered
RUNNING = "running"    # attempted, not finished (a retry resumes from here)
# How long a worker owns an object it is sending without renewing: short, so that a killed
# worker's object is picked up again within about a minute; renewed every third of it (and on
# every checkpoint save) while the object is being sent.
LEASE_SECONDS = 60


class Ranges:
    """A set of non-negative ints stored as sorted, merged [start, end) intervals.

    The intervals are one flat ``array('q')`` of boundaries ``[s0, e0, s1, e1, ...]`` (16
    bytes per interval, not ~120 for a list of lists): ``p`` is in the set when an odd number of
    boundaries is <= p. Upload threads ``add`` while the reading thread tests membership:
    ``add`` builds a new array and swaps it in whole, and readers work on one snapshot, so a
    reader never sees a half-merged set."""

    def __init__(self, intervals: list[list[int]] | None = None):
        self._flat = array("q")
        if intervals:
            self._flat = _merge(self._flat, sorted((int(s), int(e)) for s, e in intervals))

    def add(self, positions: Iterable[int]) -> None:
        if isinstance(positions, list) and positions and \
                positions[-1] - positions[0] + 1 == len(positions) and \
                positions == list(range(positions[0], positions[-1] + 1)):
            runs = [(positions[0], positions[-1] + 1)]  # a batch's positions: one run, no sort
        else:
            runs = _runs(sorted(positions))
        self._flat = _merge(self._flat, runs)

    def append(self, p: int) -> None:
        """Add one position, in place: O(1) when positions come in ascending order. Only for a
        set no other thread reads (a rejected-records tally); shared sets use ``add``."""
        flat = self._flat
        if flat and p == flat[-1]:
            flat[-1] = p + 1
        elif not flat or p > flat[-1]:
            flat.extend((p, p + 1))
        elif p not in self:
            self.add((p,))

    def update(self, other: Ranges) -> None:
        """Add every position of ``other``."""
        flat = other._flat
        self._flat = _merge(self._flat, [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)])

    def __contains__(self, p: int) -> bool:
        return bisect_right(self._flat, p) & 1 == 1  # one snapshot (see the class docstring)

    def __len__(self) -> int:
        flat = self._flat
        return sum(flat[1::2]) - sum(flat[0::2])

    def __bool__(self) -> bool:
        return bool(self._flat)

    @property
    def first(self) -> int | None:
        return self._flat[0] if self._flat else None

    @property
    def last(self) -> int | None:
        return self._flat[-1] - 1 if self._flat else None

    def head(self, n: int) -> list[int]:
        """The ``n`` smallest positions."""
        out: list[int] = []
        flat = self._flat
        for i in range(0, len(flat), 2):
            out.extend(range(flat[i], min(flat[i + 1], flat[i] + n - len(out))))
            if len(out) >= n:
                break
        return out

    def interval_count(self) -> int:
        return len(self._flat) // 2

    def intervals(self) -> list[list[int]]:
        flat = self._flat
        return [[flat[i], flat[i + 1]] for i in range(0, len(flat), 2)]


def _runs(ordered: list[int]) -> list[tuple[int, int]]:
    """Sorted positions -> [start, end) runs."""
    runs: list[tuple[int, int]] = []
    for p in ordered:
        if runs and p <= runs[-1][1]:
            if p == runs[-1][1]:
                runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return runs


def _merge(flat: array, runs: list[tuple[int, int]]) -> array:
    """A new boundary array: ``flat`` with the sorted ``runs`` merged in."""
    out = array("q", flat)
    for start, end in runs:
        lo = bisect_left(out, start)   # boundaries < start stay
        hi = bisect_right(out, end)    # boundaries <= end are swallowed
        new = array("q")
        if lo % 2 == 0:
            new.append(start)          # start lies outside an interval: it opens one
        if hi % 2 == 0:
            new.append(end)            # end lies outside an interval: it closes one
        out[lo:hi] = new
    return out


@dataclass
class Progress:
    state: str = ""
    done: Ranges = field(default_factory=Ranges)
    dead: Ranges = field(default_factory=Ranges)  # dead-lettered: settled until a replay
    attempts: int = 0
    first_failure: str | None = None
    last_error: str | None = None
    etag: str | None = None  # table entity etag (None: no entity yet)
    lease_until: float = 0.0  # epoch seconds: a worker is processing the object until then
    # serialises the saves of one object (upload callbacks and the lease renewal thread)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def _row_key(ref: ObjectRef) -> str:
    return hashlib.sha256(ref.identity.encode()).hexdigest()[:48]


def _meta_key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:48]


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
        return Progress(state=e.get("State", ""), done=_unpack(e, "Done"),
                        dead=_unpack(e, "Dead"),
                        attempts=int(e.get("Attempts", 0)), first_failure=e.get("FirstFailure"),
                        last_error=e.get("LastError"),
                        etag=getattr(e, "metadata", {}).get("etag"),
                        lease_until=float(e.get("LeaseUntil") or 0.0))

    def claim(self, ref: ObjectRef, progress: Progress, seconds: float) -> float:
        """Take the object's lease for ``seconds`` (optimistic concurrency on the entity).

        Returns 0 when this worker now owns the object, else the seconds until the other
        worker's lease ends: two copies of one work item (an SQS redelivery, a backfill beside a
        notification) must not both send the object.
        """
        now = time.time()
        if progress.lease_until > now:
            return progress.lease_until - now
        progress.state = RUNNING
        progress.lease_until = now + seconds
        entity = self._entity(ref, progress)
        try:
            if progress.etag is None:
                meta = self._table.create_entity(entity)
            else:
                meta = self._table.update_entity(entity, mode=UpdateMode.REPLACE,
                                                 etag=progress.etag,
                                                 match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            return max(1.0, seconds / 10)  # another worker got there first: look again later
        progress.etag = (meta or {}).get("etag")
        return 0.0

    def save(self, ref: ObjectRef, progress: Progress, *, release: bool = False) -> None:
        """Write progress (renewing the lease while working; ``release`` when finished).

        Only over the entity this worker last read or wrote (If-Match on its etag): when
        another worker has written it since (it took the object over after this one's lease
        ran out), raises LeaseLost and writes nothing, so the new owner's accepted positions
        and lease are never overwritten by a stale copy."""
        self._ensure()
        with progress.lock:
            if release:
                progress.lease_until = 0.0
            elif progress.lease_until:
                progress.lease_until = max(progress.lease_until, time.time() + LEASE_SECONDS)
            # replace, not merge: no chunk of an earlier, longer encoding may survive
            entity = self._entity(ref, progress)
            try:
                if progress.etag is None:  # never read or claimed: the first row wins
                    meta = self._table.create_entity(entity)
                else:
                    meta = self._table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=progress.etag,
                        match_condition=MatchConditions.IfNotModified)
            except (ResourceModifiedError, ResourceExistsError) as err:
                raise LeaseLost(f"{ref.uri}: another worker took the object over (its "
                                "checkpoint changed since this worker's last save)",
                                delay=LEASE_SECONDS) from err
            progress.etag = (meta or {}).get("etag", progress.etag)

    def keep_lease(self, ref: ObjectRef, progress: Progress, *,
                   also: Callable[[], None] | None = None,
                   every: float = LEASE_SECONDS / 3) -> LeaseKeeper:
        """A context manager that renews the object's lease every ``every`` seconds while
        the body runs (``also``: one more renewal, e.g. the circuit breaker's probe lease)."""
        return LeaseKeeper(self, ref, progress, also, every)

    # ---- the connector's own rows: backfill cursors, last heartbeats --------------------------
    # Partition "~<kind>" (a source name is [A-Za-z0-9_.-], so these never meet object rows).

    def get_meta(self, kind: str, name: str) -> dict[str, Any] | None:
        self._ensure()
        try:
            return dict(self._table.get_entity(partition_key=f"~{kind}", row_key=_meta_key(name)))
        except ResourceNotFoundError:
            return None

    def put_meta(self, kind: str, name: str, fields: dict[str, Any]) -> None:
        self._ensure()
        entity = {k: v for k, v in fields.items() if v is not None and not isinstance(v, dict)}
        entity.update({"PartitionKey": f"~{kind}", "RowKey": _meta_key(name), "Name": name[:1024],
                       "UpdatedAt": _now()})
        self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    def list_meta(self, kind: str, *, limit: int = 1000) -> Iterator[dict[str, Any]]:
        self._ensure()
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": f"~{kind}"})
        yield from (dict(e) for e in itertools.islice(rows, limit))

    def recent(self, since: datetime, *, limit: int = 100_000) -> Iterator[dict[str, Any]]:
        """Object rows updated since ``since`` (State, Attempts, Done, LeaseUntil), at most
        ``limit`` of them."""
        self._ensure()
        rows = self._table.query_entities(
            "PartitionKey lt '~' and UpdatedAt ge @t", parameters={"t": since.isoformat()},
            select=["State", "Attempts", "Done", "LeaseUntil", "LastError"])
        yield from (dict(e) for e in itertools.islice(rows, limit))

    def _entity(self, ref: ObjectRef, progress: Progress) -> dict[str, Any]:
        self._ensure()
        entity = {
            "PartitionKey": ref.source, "RowKey": _row_key(ref),
            "Bucket": ref.bucket, "Key": ref.key[:1024], "Identity": ref.identity[:1024],
            "State": progress.state,
            "Attempts": progress.attempts, "FirstFailure": progress.first_failure or "",
            "LastError": (progress.last_error or "")[:4000], "UpdatedAt": _now(),
            "LeaseUntil": float(progress.lease_until),
        }
        for name, ranges in (("Done", progress.done), ("Dead", progress.dead)):
            packed = _pack(name, ranges)
            if packed is None:  # never seen in practice; costs repeats, never a lost record
                log.warning("%s: %s positions too fragmented to checkpoint; a retry repeats "
                            "them", ref.uri, name)
                packed = {name: "[]"}
            entity.update(packed)
        return entity


class GroupSaver:
    """Saves one object's progress after accepted batches, one save at a time (group commit).

    ``commit()`` returns once a save that began after the caller's batch was added to
    ``progress.done`` has finished: a caller that arrives while another save is running waits
    for the next one, and that one save covers every batch accepted by then. The upload
    worker calls it before it takes its next batch, so an accepted batch holds its place in
    MAX_UPLOADS_IN_FLIGHT until its progress is in the table: a worker killed at any moment
    repeats at most the batches in flight, as with one save per batch, in fewer saves when
    acceptances come faster than saves (``saves`` and ``commits`` count them).

    A save the table refuses with an AzureError is logged and counts as done (progress is saved
    again at the end; only a resume is lost). Any other error (the lease lost to another
    worker) is raised to the caller and to every later one: the object's upload stops."""

    def __init__(self, checkpoints: Checkpoints, ref: ObjectRef, progress: Progress):
        self._cp, self._ref, self._progress = checkpoints, ref, progress
        self._cond = threading.Condition()
        self._accepted = 0  # note() calls
        self._saved = 0     # of those, covered by a finished save
        self._saving = False
        self._failed: BaseException | None = None
        self.saves = 0
        self.commits = 0

    def note(self) -> None:
        """One more accepted batch is in ``progress.done`` (call after adding it)."""
        with self._cond:
            self._accepted += 1

    def commit(self) -> None:
        with self._cond:
            self.commits += 1
            need = self._accepted
            while True:
                if self._failed is not None:
                    raise self._failed
                if self._saved >= need:
                    return
                if not self._saving:
                    break
                self._cond.wait()
            self._saving = True
            target = self._accepted  # the save below reads progress.done after this
        failed: BaseException | None = None
        try:
            self._cp.save(self._ref, self._progress)
        except AzureError as err:
            log.warning("%s: checkpoint not saved: %s", self._ref.uri, err)
        except BaseException as err:  # noqa: BLE001 - e.g. the lease was lost: raised below
            failed = err
        with self._cond:
            self.saves += 1
            self._saving = False
            self._saved = max(self._saved, target)
            self._failed = self._failed or failed
            self._cond.notify_all()
        if failed is not None:
            raise failed


class LeaseKeeper:
    """Renews one object's lease from a daemon thread until the ``with`` block ends. A worker
    that dies stops renewing, so its lease runs out within LEASE_SECONDS."""

    def __init__(self, checkpoints: Checkpoints, ref: ObjectRef, progress: Progress,
                 also: Callable[[], None] | None, every: float):
        self._cp, self._ref, self._progress, self._also = checkpoints, ref, progress, also
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self.renewals = 0

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._cp.save(self._ref, self._progress)
                if self._also is not None:
                    self._also()
                self.renewals += 1
            except LeaseLost as err:  # the object has a new owner: nothing left to renew
                log.warning("%s", err.message)
                return
            except Exception as err:  # noqa: BLE001 - the next renewal tries again
                log.warning("%s: lease not renewed: %s", self._ref.uri, err)


# A Table property holds at most 64 KiB (a string 32K UTF-16 characters), an entity 1 MiB.
# Positions that alternate between accepted, skipped and dead-lettered make thousands of
# one-record intervals: those are stored delta-encoded, zlib-compressed, in binary chunks.
_TEXT_CHARS = 30_000
_CHUNK_BYTES = 60_000
_MAX_CHUNKS = 7  # per range set: both sets stay under the entity limit


def _pack(name: str, ranges: Ranges) -> dict[str, Any] | None:
    text = json.dumps(ranges.intervals(), separators=(",", ":"))
    if len(text) <= _TEXT_CHARS:
        return {name: text}
    flat = [n for iv in ranges.intervals() for n in iv]
    deltas = [b - a for a, b in zip([0, *flat], flat)]
    blob = zlib.compress(json.dumps(deltas, separators=(",", ":")).encode(), 9)
    chunks = [blob[i:i + _CHUNK_BYTES] for i in range(0, len(blob), _CHUNK_BYTES)]
    if len(chunks) > _MAX_CHUNKS:
        return None
    return {name: f"zlib:{len(chunks)}", **{f"{name}{i}": c for i, c in enumerate(chunks)}}


def _unpack(entity: Any, name: str) -> Ranges:
    text = entity.get(name) or "[]"
    if not text.startswith("zlib:"):
        return Ranges(json.loads(text))
    blob = b"".join(bytes(entity[f"{name}{i}"]) for i in range(int(text[5:])))
    flat = list(itertools.accumulate(json.loads(zlib.decompress(blob))))
    return Ranges([flat[i:i + 2] for i in range(0, len(flat), 2)])
