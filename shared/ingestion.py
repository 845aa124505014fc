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
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Union

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

log = logging.getLogger(__name__)

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
        import requests
        from azure.core.pipeline.transport import RequestsTransport
        from azure.monitor.ingestion import LogsIngestionClient

        # one connection per concurrent upload: the queue trigger runs several invocations at
        # once (host.json batchSize), each with `in_flight` uploads, all through this client
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4,
                                                pool_maxsize=max(10, 8 * in_flight))
        session.mount("https://", adapter)
        # retry_total=0: every retry decision is ours (see module docstring)
        self._client = LogsIngestionClient(
            endpoint=endpoint, credential=credential, retry_total=0,
            transport=RequestsTransport(session=session, session_owner=True,
                                        connection_timeout=10, read_timeout=read_timeout))
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
             deadline: float | None = None) -> DeliveryReport:
        """Deliver every batch of one object with at most ``in_flight`` requests at a time.

        ``on_accepted`` is called (from worker threads, serialised) after each accepted batch,
        so progress can be checkpointed while the object is still being sent. On a transient
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

        pending: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=self.in_flight,
                                thread_name_prefix="upload") as pool:
            for item in items:
                if isinstance(item, Oversize):
                    with lock:
                        report.add_dead([item.position], RecordTooLargeError(
                            f"record {item.position} is {item.size} bytes of JSON, larger than "
                            "one request may carry"))
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


class CircuitBreaker:
    """Stops hammering a failing Logs Ingestion endpoint (per worker process).

    After ``threshold`` objects in a row failed transiently, the circuit opens for
    ``cooldown`` seconds (doubling up to ``max_cooldown`` while failures go on). While open,
    work items are deferred (re-queued with a delay) instead of being tried, so an outage of
    the service does not burn their dequeue count and push them into the poison queue. After
    the cooldown one object is let through (half-open); its success closes the circuit.
    """

    def __init__(self, *, threshold: int = 3, cooldown: float = 30.0, max_cooldown: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.threshold, self.base, self.max = threshold, cooldown, max_cooldown
        self._clock = clock
        self._failures = 0
        self._cooldown = cooldown
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._failures < self.threshold:
                return "closed"
            return "open" if self._clock() < self._open_until else "half_open"

    def retry_in(self) -> float:
        """Seconds until a trial is allowed (0 = go ahead)."""
        with self._lock:
            if self._failures < self.threshold:
                return 0.0
            return max(0.0, self._open_until - self._clock())

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._cooldown = self.base

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold:
                if self._clock() >= self._open_until and self._failures > self.threshold:
                    self._cooldown = min(self.max, self._cooldown * 2)
                self._open_until = self._clock() + self._cooldown
