"""Delivery to the Logs Ingestion API: bounded concurrency, retries, 413 split, dead letters.

Uploads go through ``LogsIngestionClient.upload`` with a pre-gzipped, seekable body (the SDK
then sends it as is with ``Content-Encoding: gzip``). The SDK's own retry policy is turned off
so that every retry decision is made here, explicitly:

* 429 / 408 / 5xx / connection errors / timeouts / no token -> retry with exponential backoff
  and full jitter, honouring ``Retry-After``; after ``max_attempts`` the object is retried as a
  whole (``TransientDeliveryError``), resuming from its checkpoint.
* 413 -> split the batch in halves and send each; a single record that is still too large is
  dead-lettered alone (``RecordTooLargeError``).
* 400 / 401 / 403 / 404 and other 4xx -> the batch is dead-lettered (``DeliveryError``) with
  the status and the service's error text; the rest of the object is still delivered.
"""
from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Union

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from .batching import Batch, Oversize
from .checkpoints import Ranges
from .errors import (
    ConnectorError,
    DeliveryError,
    RecordTooLargeError,
    TransientDeliveryError,
)
from .logsafe import get_logger

log = get_logger(__name__)  # control characters escaped (logsafe)

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass
class DeadLetter:
    """Records that will not be delivered, with the reason (one poison envelope)."""

    positions: Ranges
    error: ConnectorError
    attempts: int = 1


# Dead letters of one kind (error type, status, code) beyond this many per object are merged
# into the last one: an object whose every batch is refused makes a few envelopes, not one per
# batch held until the object ends.
DEAD_LETTERS_PER_KIND = 10


@dataclass
class DeliveryReport:
    """What one ``send`` did. Counters only: an accepted batch is released as soon as its
    ``on_accepted`` ran (keeping the batches kept every encoded row of an object alive until
    its end: 3 GB of RSS for a 1 GB VPC Flow object)."""

    records_out: int = 0
    batches_accepted: int = 0
    bytes_sent: int = 0  # gzipped request bodies accepted
    dead: list[DeadLetter] = field(default_factory=list)
    transient: TransientDeliveryError | None = None  # set when the object must be retried
    requests: int = 0

    def add_dead(self, positions: list[int], error: ConnectorError, attempts: int = 1) -> None:
        """Record refused records (call under the report's lock)."""
        kind = (type(error), error.status, error.code)
        same = [d for d in self.dead if (type(d.error), d.error.status, d.error.code) == kind]
        if len(same) >= DEAD_LETTERS_PER_KIND:
            same[-1].positions.add(positions)
            same[-1].attempts = max(same[-1].attempts, attempts)
            return
        ranges = Ranges()
        ranges.add(positions)
        self.dead.append(DeadLetter(ranges, error, attempts))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 1.0
    max_seconds: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Delay before try ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_seconds)
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** (attempt - 1)))
        return random.uniform(0, ceiling)  # full jitter


def _retry_after(err: HttpResponseError) -> float | None:
    response = getattr(err, "response", None)
    if response is None:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = response.headers.get(name)
        if value:
            try:
                return float(value) / 1000.0
            except ValueError:
                pass
    value = response.headers.get("Retry-After")
    if value:
        try:
            return float(value)
        except ValueError:
            from email.utils import parsedate_to_datetime
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def _service_text(err: HttpResponseError) -> tuple[str | None, str]:
    code = None
    message = str(err.message or err)
    error = getattr(err, "error", None)
    if error is not None:
        code = getattr(error, "code", None)
        message = getattr(error, "message", None) or message
    response = getattr(err, "response", None)
    if response is not None:
        code = code or response.headers.get("x-ms-error-code")
    return code, message.strip()


class Ingestor:
    """Sends batches of one stream; one instance per process, shared by invocations."""

    def __init__(self, endpoint: str, rule_id: str, credential: TokenCredential, *,
                 policy: RetryPolicy = RetryPolicy(), in_flight: int = 4,
                 read_timeout: float = 60.0, sleep: Callable[[float], None] = time.sleep):
        from azure.monitor.ingestion import LogsIngestionClient

        from .transport import env_transport

        # one connection per concurrent upload: the queue trigger runs several invocations at
        # once (host.json batchSize), each with `in_flight` uploads, all through this client;
        # proxy and CA settings read once (transport.py). retry_total=0: every retry decision
        # is ours (see module docstring)
        self._client = LogsIngestionClient(
            endpoint=endpoint, credential=credential, retry_total=0,
            transport=env_transport(endpoint, pool_maxsize=max(10, 8 * in_flight),
                                    connection_timeout=10, read_timeout=read_timeout))
        self.endpoint = endpoint
        self.rule_id = rule_id
        self.policy = policy
        self.in_flight = in_flight
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    # -- one request ---------------------------------------------------------------------
    def _post(self, stream: str, body: bytes) -> None:
        self._client.upload(rule_id=self.rule_id, stream_name=stream, logs=io.BytesIO(body))

    def _deliver(self, stream: str, batch: Batch, report: DeliveryReport,
                 lock: threading.Lock, sink: list[Batch], deadline: float | None) -> None:
        """Deliver one batch: retry, split on 413, or record a dead letter. Raises
        TransientDeliveryError when transient failures outlast the attempts."""
        attempt = 0
        body = batch.gzipped()
        while True:
            attempt += 1
            try:
                with lock:
                    report.requests += 1
                self._post(stream, body)
                with lock:
                    report.records_out += len(batch)
                    report.batches_accepted += 1
                    report.bytes_sent += len(body)
                sink.append(batch)
                return
            except HttpResponseError as err:
                status = err.status_code or 0
                code, text = _service_text(err)
                if status == 413:
                    if len(batch) > 1:
                        for half in batch.split():
                            self._deliver(stream, half, report, lock, sink, deadline)
                        return
                    with lock:
                        report.add_dead(batch.positions, RecordTooLargeError(
                            f"record {batch.first} is too large for one request even alone "
                            f"({batch.size} bytes): {text}", status=413, code=code), attempt)
                    return
                if status in TRANSIENT_STATUS or status == 0:
                    # status 0: no answer of the service at all, e.g. the managed identity
                    # gave no token (ClientAuthenticationError): the records were never judged
                    failure = f"HTTP {status} {code or ''}: {text}".strip() if status else \
                        f"{type(err).__name__}: {text}"
                    retry_after = _retry_after(err)
                else:
                    with lock:
                        report.add_dead(batch.positions, DeliveryError(
                            f"Logs Ingestion API refused records {batch.first}-{batch.last} "
                            f"of stream {stream}: HTTP {status} {code or ''}: {text}",
                            status=status, code=code), attempt)
                    return
            except (ServiceRequestError, ServiceResponseError, OSError) as err:
                failure = f"{type(err).__name__}: {err}"
                retry_after = None
            if attempt >= self.policy.max_attempts:
                raise TransientDeliveryError(
                    f"records {batch.first}-{batch.last} of stream {stream} not accepted after "
                    f"{attempt} attempts; last error: {failure}")
            delay = self.policy.delay(attempt, retry_after)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise TransientDeliveryError(
                    f"records {batch.first}-{batch.last} of stream {stream} not accepted when "
                    f"the invocation's time budget ran out ({attempt} attempts); last error: "
                    f"{failure}")
            self._sleep(delay)

    # -- a whole object --------------------------------------------------------------------
    def send(self, stream: str, items: Iterable[Union[Batch, Oversize]],
             on_accepted: Callable[[Batch], None] | None = None, *,
             settle: Callable[[], None] | None = None,
             deadline: float | None = None) -> DeliveryReport:
        """Deliver every batch of one object with at most ``in_flight`` requests at a time.

        ``on_accepted`` is called (from worker threads, serialised) after each accepted batch,
        so progress can be checkpointed while the object is still being sent; ``settle``
        after it, in the same worker, not serialised (several workers' checkpoint saves may
        coalesce: ``checkpoints.GroupSaver``): a worker takes its next batch only when both
        returned, so an accepted batch counts against ``in_flight`` until settled. On a transient
        failure that outlasts the retries, no new batch is started, the ones in flight finish,
        and ``report.transient`` is set. ``deadline`` (time.monotonic()) bounds the whole send
        below the host's functionTimeout: no retry waits past it and no batch starts after it.
        """
        report = DeliveryReport()
        lock = threading.Lock()
        callback_lock = threading.Lock()

        def work(batch: Batch) -> None:
            sink: list[Batch] = []
            try:
                self._deliver(stream, batch, report, lock, sink, deadline)
            finally:
                if on_accepted is not None and sink:
                    with callback_lock:
                        for accepted in sink:
                            on_accepted(accepted)
                    if settle is not None:
                        settle()

        pending: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=self.in_flight,
                                thread_name_prefix="upload") as pool:
            for item in items:
                if isinstance(item, Oversize):
                    with lock:
                        report.add_dead([item.position], RecordTooLargeError(
                            item.reason or f"record {item.position} is {item.size} bytes of "
                            "JSON, larger than one request may carry"))
                    continue
                while len(pending) >= self.in_flight:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self._collect(done, report)
                if deadline is not None and report.transient is None and \
                        time.monotonic() >= deadline:
                    report.transient = TransientDeliveryError(
                        f"the invocation's time budget ran out before every batch of stream "
                        f"{stream} was sent (resumes from the checkpoint)")
                if report.transient is not None:
                    break
                pending.add(pool.submit(work, item))
            done, _ = wait(pending)
            self._collect(done, report)
        return report

    @staticmethod
    def _collect(done: set[Future[None]], report: DeliveryReport) -> None:
        for fut in done:
            err = fut.exception()
            if isinstance(err, TransientDeliveryError):
                report.transient = report.transient or err
            elif err is not None:
                raise err


class Uploads:
    """One object's batches of several tables, each to its own DCR stream (``routing``),
    through one pool: at most ``in_flight`` requests at a time for the whole object, whatever
    the number of tables.

    A table whose batch failed transiently (its endpoint or DCR down past the retries) takes
    no more batches: they are not accepted, so the object's retry sends them (the checkpoint
    knows every accepted position, whatever its table); the other tables go on, so one
    failing DCR does not hold the others' records back. ``deadline`` as in ``Ingestor.send``:
    past it no batch of any table starts. ``on_accepted(table, batch)`` runs serialised, from
    the upload threads; ``settle()`` after it, not serialised (see ``Ingestor.send``)."""

    def __init__(self, in_flight: int, on_accepted: Callable[[str, Batch], None], *,
                 settle: Callable[[], None] | None = None, deadline: float | None = None):
        self.in_flight = max(1, in_flight)
        self.deadline = deadline
        self._settle = settle
        self.reports: dict[str, DeliveryReport] = {}
        self._on_accepted = on_accepted
        self._lock = threading.Lock()
        self._callback_lock = threading.Lock()
        self._pending: dict[Future[None], str] = {}
        self._expired: TransientDeliveryError | None = None
        self._pool = ThreadPoolExecutor(max_workers=self.in_flight,
                                        thread_name_prefix="upload")

    def report(self, table: str) -> DeliveryReport:
        if table not in self.reports:
            self.reports[table] = DeliveryReport()
        return self.reports[table]

    def stopped(self, table: str) -> bool:
        """True when ``table`` takes no more batches (a transient failure, or the deadline)."""
        report = self.reports.get(table)
        return self._expired is not None or (report is not None and
                                             report.transient is not None)

    def submit(self, table: str, ingestor: Ingestor, stream: str,
               item: Union[Batch, Oversize]) -> None:
        """Send ``item`` of ``table`` (waits while ``in_flight`` requests are out); a batch
        of a stopped table is not sent (the object's retry sends it)."""
        report = self.report(table)
        if isinstance(item, Oversize):
            with self._lock:
                report.add_dead([item.position], RecordTooLargeError(
                    item.reason or f"record {item.position} is {item.size} bytes of JSON, "
                    "larger than one request may carry"))
            return
        while len(self._pending) >= self.in_flight:
            done, _ = wait(set(self._pending), return_when=FIRST_COMPLETED)
            self._collect(done)
        if self.deadline is not None and self._expired is None and \
                time.monotonic() >= self.deadline:
            self._expired = TransientDeliveryError(
                "the invocation's time budget ran out before every batch of the object was "
                "sent (resumes from the checkpoint)")
        if self._expired is not None:
            report.transient = report.transient or self._expired
        if report.transient is not None:
            return

        def work() -> None:
            sink: list[Batch] = []
            try:
                ingestor._deliver(stream, item, report, self._lock, sink, self.deadline)
            except TransientDeliveryError as err:
                err.endpoint = ingestor.endpoint  # the breaker it counts against
                raise
            finally:
                if sink:
                    with self._callback_lock:
                        for accepted in sink:
                            self._on_accepted(table, accepted)
                    if self._settle is not None:
                        self._settle()  # as in Ingestor.send: the slot is held until then

        self._pending[self._pool.submit(work)] = table

    def close(self) -> dict[str, DeliveryReport]:
        """Wait for every request; the report of each table."""
        try:
            done, _ = wait(set(self._pending))
            self._collect(done)
        finally:
            self._pool.shutdown(wait=True)
        return self.reports

    def _collect(self, done: set[Future[None]]) -> None:
        for fut in done:
            table = self._pending.pop(fut)
            err = fut.exception()
            if isinstance(err, TransientDeliveryError):
                report = self.reports[table]
                report.transient = report.transient or err
            elif err is not None:
                raise err


class _MemoryStore:
    """One breaker entity in memory, with the table's If-Match semantics (unit tests, tools)."""

    def __init__(self) -> None:
        self._entity: dict[str, Any] | None = None
        self._version = 0
        self._lock = threading.Lock()

    def get(self) -> tuple[dict[str, Any], str | None]:
        with self._lock:
            if self._entity is None:
                return {}, None
            return dict(self._entity), str(self._version)

    def put(self, entity: dict[str, Any], etag: str | None) -> None:
        with self._lock:
            current = None if self._entity is None else str(self._version)
            if etag != current:
                raise _Conflict()
            self._entity, self._version = dict(entity), self._version + 1


class _TableStore:
    """The breaker entity of one endpoint in the checkpoint table (Azure Table storage).

    ``put`` is conditional: If-Match on the etag read (or create when there was none), so two
    instances that change the state at the same moment cannot both win; the loser re-reads."""

    PARTITION = "~circuit"  # source names start with [A-Za-z0-9]: no object entity collides

    def __init__(self, table: Any, endpoint: str):
        import hashlib

        self._table = table
        self.endpoint = endpoint
        self.row_key = hashlib.sha256(endpoint.encode()).hexdigest()[:32]
        self._created = False

    def get(self) -> tuple[dict[str, Any], str | None]:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        if not self._created:
            try:
                self._table.create_table()
            except ResourceExistsError:
                pass
            self._created = True
        try:
            e = self._table.get_entity(partition_key=self.PARTITION, row_key=self.row_key)
        except ResourceNotFoundError:
            return {}, None
        return dict(e), e.metadata.get("etag")

    def put(self, entity: dict[str, Any], etag: str | None) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.data.tables import UpdateMode

        body = {**entity, "PartitionKey": self.PARTITION, "RowKey": self.row_key,
                "Endpoint": self.endpoint[:1024]}
        try:
            if etag is None:
                self._table.create_entity(body)
            else:
                self._table.update_entity(body, mode=UpdateMode.REPLACE, etag=etag,
                                          match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError) as err:
            raise _Conflict() from err


class _Conflict(Exception):
    """Another instance changed the breaker entity since it was read."""


MAX_HELD_SOURCES = 100  # source names a breaker entity remembers (names are <= 64 chars)


def _names(e: dict[str, Any]) -> list[str]:
    return [n for n in str(e.get("Sources") or "").split(",") if n]


class CircuitBreaker:
    """Stops hammering a failing Logs Ingestion endpoint: one per endpoint, shared by every
    instance through an entity in the checkpoint table (``table`` given; in memory without).

    After ``threshold`` objects in a row failed transiently (on any instance), the circuit
    opens for ``cooldown`` seconds (doubling up to ``max_cooldown`` while the trials fail).
    While open, work items are deferred (re-queued with a delay, no dequeue count spent) and
    the poller leaves the backlog in SQS. After the cooldown it is half open: exactly one
    caller takes the probe lease (``probe_seconds``, renewed by ``renew_probe`` while it
    sends; a prober that dies frees it when the lease runs out) and tries one object; its
    success closes the circuit, its failure opens it again for a longer cooldown.

    Every change is a conditional write (If-Match on the entity's ETag): of two instances
    that see the same state, one wins and the other re-reads. Storage errors fail open (the
    breaker admits): the checkpoint writes of the same object will surface the outage.
    """

    def __init__(self, table: Any = None, endpoint: str = "", *, threshold: int = 3,
                 cooldown: float = 30.0, max_cooldown: float = 600.0,
                 probe_seconds: float = 60.0, clock: Callable[[], float] = time.time):
        self.threshold, self.base, self.max = threshold, cooldown, max_cooldown
        self.probe_seconds = probe_seconds
        self.endpoint = endpoint
        self._store: Any = _TableStore(table, endpoint) if table is not None else _MemoryStore()
        self._clock = clock

    # -- reading ---------------------------------------------------------------------------
    def _read(self) -> tuple[dict[str, Any], str | None]:
        try:
            return self._store.get()
        except _Conflict:
            raise
        except Exception as err:  # noqa: BLE001 - storage down: fail open (see class doc)
            log.warning("circuit breaker state of %s not readable: %s", self.endpoint, err)
            return {}, None

    def _state_of(self, e: dict[str, Any]) -> str:
        if int(e.get("Failures") or 0) < self.threshold:
            return "closed"
        return "open" if self._clock() < float(e.get("OpenUntil") or 0) else "half_open"

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (as heartbeats, GET /api/health and the CLI
        show it)."""
        e, _ = self._read()
        if int(e.get("Failures") or 0) < self.threshold:
            return "closed"
        return "open" if self._clock() < float(e.get("OpenUntil") or 0) else "half_open"

    def snapshot(self) -> dict[str, Any]:
        """State and counters for the health endpoint."""
        e, _ = self._read()
        state = self._state_of(e)
        now = self._clock()
        out: dict[str, Any] = {"state": state, "failures": int(e.get("Failures") or 0),
                               "opened": int(e.get("Opened") or 0),
                               "closed": int(e.get("Closed") or 0)}
        if state == "open":
            out["retry_in_s"] = round(float(e.get("OpenUntil") or 0) - now, 1)
            out["sources"] = _names(e)
        if float(e.get("ProbeUntil") or 0) > now:
            out["probe_until_s"] = round(float(e.get("ProbeUntil") or 0) - now, 1)
        return out

    def held_sources(self) -> set[str]:
        """While the circuit is open: the sources whose objects failed on this endpoint (the
        poller leaves their backlog in SQS). Empty when closed or half open."""
        e, _ = self._read()
        return set(_names(e)) if self._state_of(e) == "open" else set()

    # -- the three transitions ---------------------------------------------------------------
    def _update(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        """Read, apply ``change`` (returns the answer; mutates the entity or returns with it
        unchanged), write conditionally; re-read on a conflict (bounded)."""
        answer = None
        for attempt in range(20):
            if attempt:
                time.sleep(random.uniform(0, 0.02 * attempt))  # contention: spread the tries
            e, etag = self._read()
            before = dict(e)
            answer = change(e)
            if e == before:
                return answer
            e["UpdatedAt"] = self._clock()
            try:
                self._store.put(e, etag)
                return answer
            except _Conflict:
                continue
            except Exception as err:  # noqa: BLE001 - storage down: fail open
                log.warning("circuit breaker state of %s not written: %s", self.endpoint, err)
                return answer
        log.warning("circuit breaker state of %s not written: 20 conflicting writers",
                    self.endpoint)
        return answer

    def admit(self, owner: str = "") -> float:
        """0 when the caller may send now (closed, or it took the half-open probe lease);
        else the seconds to wait before asking again."""
        def change(e: dict[str, Any]) -> float:
            state = self._state_of(e)
            now = self._clock()
            if state == "closed":
                return 0.0
            if state == "open":
                return float(e["OpenUntil"]) - now
            probe_until = float(e.get("ProbeUntil") or 0)
            if probe_until > now and e.get("ProbeOwner") != owner:
                return min(probe_until - now, self.base)  # someone else is probing
            e["ProbeUntil"], e["ProbeOwner"] = now + self.probe_seconds, owner
            return 0.0
        return max(0.0, float(self._update(change)))

    def retry_in(self) -> float:
        """Seconds until a trial is allowed (0 = go ahead), without taking the probe."""
        e, _ = self._read()
        state = self._state_of(e)
        now = self._clock()
        if state == "closed":
            return 0.0
        if state == "open":
            return max(0.0, float(e["OpenUntil"]) - now)
        probe_until = float(e.get("ProbeUntil") or 0)
        return max(0.0, min(probe_until - now, self.base)) if probe_until > now else 0.0

    def renew_probe(self, owner: str) -> None:
        """Extend the probe lease while its holder is still sending."""
        def change(e: dict[str, Any]) -> None:
            if e.get("ProbeOwner") == owner and float(e.get("ProbeUntil") or 0) > 0:
                e["ProbeUntil"] = self._clock() + self.probe_seconds
        self._update(change)

    def release_probe(self, owner: str) -> None:
        """Give the probe lease back unused (the object was deferred before it sent: another of
        its endpoints refused), so the next caller may probe now, not when the lease ends."""
        def change(e: dict[str, Any]) -> None:
            if owner and e.get("ProbeOwner") == owner:
                e["ProbeUntil"], e["ProbeOwner"] = 0.0, ""
        self._update(change)

    def success(self, owner: str = "") -> None:
        def change(e: dict[str, Any]) -> None:
            if not e or (int(e.get("Failures") or 0) == 0 and not e.get("ProbeUntil")):
                return  # closed and quiet: no write per object
            was_open = int(e.get("Failures") or 0) >= self.threshold
            e.update(Failures=0, OpenUntil=0.0, Cooldown=self.base, ProbeUntil=0.0,
                     ProbeOwner="", Sources="")
            if was_open:
                e["Closed"] = int(e.get("Closed") or 0) + 1
                log.warning("circuit of %s closed: the trial object was delivered",
                            self.endpoint)
        self._update(change)

    def failure(self, owner: str = "", source: str = "") -> None:
        """One object failed transiently here; ``source`` (its AWS source) is remembered
        until the circuit closes, so the poller pauses that source's pulls while it is open."""
        def change(e: dict[str, Any]) -> None:
            now = self._clock()
            state = self._state_of(e)
            failures = int(e.get("Failures") or 0) + 1
            names = _names(e)
            if source and source not in names and len(names) < MAX_HELD_SOURCES:
                e["Sources"] = ",".join(sorted([*names, source]))
            cooldown = float(e.get("Cooldown") or self.base)
            e["Failures"] = failures
            if failures < self.threshold:
                return
            if state == "half_open":  # the trial failed: wait longer
                cooldown = min(self.max, cooldown * 2)
            elif state == "open":
                return  # already open: an object admitted before it opened; keep the time
            else:
                e["Opened"] = int(e.get("Opened") or 0) + 1
                log.warning("circuit of %s opened after %d objects failed in a row; work "
                            "items wait %.0fs", self.endpoint, failures, cooldown)
            e.update(OpenUntil=now + cooldown, Cooldown=cooldown, ProbeUntil=0.0,
                     ProbeOwner="")
        self._update(change)
