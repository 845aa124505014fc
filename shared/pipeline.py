"""The one place where the stages meet. Reads like DESIGN.md's flow diagram:

    poll_notifications:  SQS -> notifications.parse_body -> allow-list -> work queue -> delete
    process_object:      work item -> checkpoint (dedup, lease; circuit breaker) -> S3 stream
                         -> decompress -> detect format -> parse/map -> batch -> upload
                         (within the invocation's time budget) -> checkpoint -> health row
    check_health:        every component, one JSON answer

Every failure ends in exactly one of: retried (TransientError is raised on), split and retried
(inside ingestion), or dead-lettered with its reason (poison queue), and is counted.
"""
from __future__ import annotations

import atexit
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import AzureError, HttpResponseError

from . import checkpoints as cp
from . import filters, formats, poison
from .batching import Batcher, batches
from .config import Settings, Source, load_settings
from .credentials import MONITOR_SCOPE, AwsSessions, KeyVaultSecrets, azure_credential
from .errors import (
    ConfigError,
    ConnectorError,
    Deferred,
    FatalError,
    FormatError,
    IntegrityError,
    LeaseLost,
    NotificationError,
    ObjectReadError,
    RecordError,
    StorageError,
    TransientDeliveryError,
    TransientError,
    WorkItemRefused,
)
from .formats import provenance
from .health import (
    HEALTH_TABLE,
    Check,
    Forwarded,
    HealthBuffer,
    ObjectStats,
    PollStats,
    TableCounts,
    report,
    run_check,
)
from .ingestion import CircuitBreaker, Ingestor, RetryPolicy, Uploads
from .logsafe import get_logger
from .logsetup import pin_third_party_loggers
from .notifications import ObjectRef, parse_body
from .objects import open_object
from .parquet_source import spooled
from .queues import Queue, queue_service, table_client
from .reader import MAX_LINE_CHARS, TextSource, decompress
from .schemas import stream_of

log = get_logger(__name__)  # control characters escaped (logsafe)
pin_third_party_loggers()  # a DEBUG level for the app must never log a credential


@dataclass
class Connector:
    """Process-wide clients, built once per worker and shared by invocations."""

    settings: Settings
    azure: Any
    aws: AwsSessions
    work: Queue
    poison: Queue
    checkpoints: cp.Checkpoints
    table: Any = None  # the checkpoint table client (the circuit breakers' entities live there)
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _ingestors: dict[tuple[str, str, bool], Ingestor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Connector:
        azure = azure_credential(settings)
        secrets = (KeyVaultSecrets(settings.key_vault_url, azure)
                   if settings.key_vault_url else None)
        service = queue_service(settings, azure)
        table = table_client(settings, azure)
        return cls(
            settings=settings, azure=azure, aws=AwsSessions(settings, azure, secrets),
            work=Queue(service, settings.work_queue),
            poison=Queue(service, settings.poison_queue),
            checkpoints=cp.Checkpoints(table), table=table)

    def ingestor(self, table: str, *, telemetry: bool = False) -> Ingestor:
        """The uploader for the DCR that holds ``table``'s stream (one per DCR, shared).
        ``telemetry``: health rows try twice, briefly: they must not slow an object down."""
        endpoint, rule = self.settings.route(table)
        key = (endpoint, rule, telemetry)
        with self._lock:
            if key not in self._ingestors:
                s = self.settings
                policy = (RetryPolicy(2, 0.2, 1.0) if telemetry else
                          RetryPolicy(s.upload_max_attempts, s.upload_backoff_base_seconds,
                                      s.upload_backoff_max_seconds))
                # telemetry also waits briefly for an answer: a hanging endpoint must not hold
                # every invocation for 2 x 60 s (the object path keeps the full read timeout)
                self._ingestors[key] = Ingestor(endpoint, rule, self.azure, policy=policy,
                                                in_flight=s.max_uploads_in_flight,
                                                read_timeout=10.0 if telemetry else 60.0)
            return self._ingestors[key]

    def breaker_for(self, table: str) -> CircuitBreaker:
        """The circuit breaker of the Logs Ingestion endpoint that receives ``table`` (one per
        endpoint, its state shared by every instance through the checkpoint table)."""
        return self.breaker_at(self.settings.route(table)[0])

    def breaker_at(self, endpoint: str) -> CircuitBreaker:
        with self._lock:
            if endpoint not in self._breakers:
                s = self.settings
                self._breakers[endpoint] = CircuitBreaker(
                    self.table, endpoint, threshold=s.circuit_failure_threshold,
                    cooldown=s.circuit_cooldown_seconds, probe_seconds=cp.LEASE_SECONDS)
            return self._breakers[endpoint]

    @property
    def breaker(self) -> CircuitBreaker:
        """The breaker of the default endpoint (LOGS_INGESTION_ENDPOINT)."""
        return self.breaker_for("")

    @breaker.setter
    def breaker(self, breaker: CircuitBreaker) -> None:  # tests: other thresholds/cooldowns
        with self._lock:
            self._breakers[self.settings.logs_ingestion_endpoint] = breaker

    def dead_letter(self, envelope: poison.Envelope) -> None:
        """Write to the poison queue; if even that fails, the caller's item is retried."""
        try:
            self.poison.send(envelope.to_json())
        except AzureError as err:
            raise TransientError(f"cannot write to poison queue {self.poison.name}: {err}") \
                from err
        log.warning("dead-lettered (%s, %s): %s", envelope.kind, envelope.stage,
                    envelope.reason[:300])

    def __post_init__(self) -> None:
        self.health = HealthBuffer(self._send_health)
        buffer = weakref.ref(self.health)  # a connector dropped by reset_connector may go
        _at_exit(lambda: (b := buffer()) is not None and b.flush())

    def emit_health(self, rows: list[dict[str, Any]]) -> None:
        """Object health rows are buffered (see health.HealthBuffer: a crash can lose the rows
        buffered then); a heartbeat row flushes the buffer with it."""
        self.health.add(rows)
        if any(r.get("Kind") == "heartbeat" for r in rows):
            self.health.flush()

    def _send_health(self, rows: list[dict[str, Any]]) -> None:
        """Health rows are telemetry: a failure to send them is logged, never fatal."""
        try:
            result = self.ingestor(HEALTH_TABLE, telemetry=True).send(stream_of(HEALTH_TABLE),
                                        batches(enumerate(rows), self.settings.max_batch_bytes))
            if result.dead or result.transient:
                log.warning("health rows not delivered: %s",
                            (result.transient or result.dead[0].error).message)
        except Exception as err:  # noqa: BLE001 - telemetry must not fail the pipeline
            log.warning("health rows not delivered: %s", err)


def _at_exit(fn: Any) -> None:
    """Run ``fn`` when the interpreter exits normally, while thread pools still take work
    (plain atexit runs after concurrent.futures refused new work: the send would fail)."""
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is not None:
            register(fn)
            return
    except RuntimeError:  # already shutting down
        pass
    atexit.register(fn)


_connector: Connector | None = None


_connector_lock = threading.Lock()


def connector() -> Connector:
    """The process's Connector, built on first use from the environment (once, even when the
    worker starts several invocations at the same moment)."""
    global _connector
    with _connector_lock:
        if _connector is None:
            _connector = Connector.from_settings(load_settings())
        return _connector


def flush_health() -> None:
    """Send the process's buffered health rows now (shutdown paths, tests)."""
    buffer = getattr(_connector, "health", None)
    if buffer is not None:
        buffer.flush()


def reset_connector() -> None:
    """Forget the process's Connector (its buffered health rows are sent first)."""
    global _connector
    with _connector_lock:
        old, _connector = _connector, None
    buffer = getattr(old, "health", None)
    if buffer is not None:
        buffer.flush()  # (a flush at exit later finds the buffer empty)


# ---- timer: SQS -> work queue ------------------------------------------------------------

def _held_sources(conn: Connector) -> set[str]:
    """The sources whose objects failed on a routed endpoint (DCR_ROUTES) whose circuit is
    open now: their pulls pause like every source's when the default endpoint's is open."""
    held: set[str] = set()
    default = conn.settings.logs_ingestion_endpoint
    for endpoint in sorted({e for e, _ in conn.settings.dcr_routes.values()} - {default}):
        held |= conn.breaker_at(endpoint).held_sources()
    return held


def poll_notifications(conn: Connector) -> list[PollStats]:
    """Drain every source's SQS queue into the work queue within the time budget."""
    deadline = time.monotonic() + conn.settings.poll_time_budget_seconds
    results = []
    sources = conn.settings.sources
    circuit = conn.breaker.state
    held = _held_sources(conn)
    for i, source in enumerate(sources):
        if circuit == "open" or source.name in held:
            # the ingestion endpoint is failing for every instance (the default one, or a
            # DCR_ROUTES endpoint this source's objects failed on): the backlog waits safely
            # in SQS instead of piling up as deferred work items
            results.append(PollStats(source.name, paused=True))
            continue
        # a fair share of what is left: a source with a backlog must not starve the next ones
        # (their notifications would age in SQS until its retention period deletes them)
        share = max(0.0, deadline - time.monotonic()) / (len(sources) - i)
        results.append(poll_source(conn, source, time.monotonic() + share))
    try:
        depth = conn.poison.depth()
    except AzureError:
        depth = None
    for stats in results:
        stats.poison_depth = depth
        stats.circuit_state = circuit
        stats.filtered_by = filters.drain(stats.source)
    conn.emit_health([s.row() for s in results])
    for stats in results:  # the last heartbeat per source, for `s3sentinel status`
        try:
            conn.checkpoints.put_meta("heartbeat", stats.source, stats.row())
        except Exception as err:  # noqa: BLE001 - telemetry, like emit_health: never fatal
            log.warning("heartbeat of %s not saved: %s", stats.source, err)
    failed = [s for s in results if s.error]
    if failed:
        raise TransientError("; ".join(f"{s.source}: {s.error}" for s in failed))
    return results


FORWARD_WORKERS = 10  # one per message of a ReceiveMessage batch
RECEIVE_LANES = 8     # receive -> forward -> delete loops running at once (network-bound)


def poll_source(conn: Connector, source: Source, deadline: float, *,
                workers: int = FORWARD_WORKERS, lanes: int = RECEIVE_LANES) -> PollStats:
    """Drain one source's SQS queue until it is empty or ``deadline``. ``lanes`` loops of
    receive (10) -> forward concurrently -> delete run side by side, so the round trips of one
    batch overlap those of the next (each batch is still settled message by message)."""
    stats = PollStats(source.name)
    s = conn.settings
    stop = threading.Event()

    def sqs(fn: Any) -> Any:
        return conn.aws.call(source, "sqs", fn)

    def lane(pool: ThreadPoolExecutor) -> PollStats:
        part = PollStats(source.name)
        try:
            while time.monotonic() < deadline and not stop.is_set():
                wait = int(max(0, min(s.sqs_wait_seconds, deadline - time.monotonic())))
                resp = sqs(lambda c, wait=wait: c.receive_message(
                    QueueUrl=source.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                    VisibilityTimeout=s.sqs_visibility_timeout))
                messages = resp.get("Messages", [])
                if not messages:
                    break
                part.messages_received += len(messages)
                forward_batch(conn, source, messages, part, pool)
        except Exception as err:  # noqa: BLE001 - reported in the heartbeat and raised
            part.error = f"{type(err).__name__}: {err}"[:2000]
            stop.set()
        return part

    try:
        with ThreadPoolExecutor(max_workers=workers * lanes, thread_name_prefix="forward") \
                as pool, ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="receive") \
                as receivers:
            for part in [f.result() for f in [receivers.submit(lane, pool)
                                              for _ in range(max(1, lanes))]]:
                _merge(stats, part)
        if stats.error:
            raise RuntimeError(stats.error)
        attrs = sqs(lambda c: c.get_queue_attributes(
            QueueUrl=source.queue_url, AttributeNames=["ApproximateNumberOfMessages"]))
        stats.sqs_backlog = int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))
    except Exception as err:  # noqa: BLE001 - any failure is reported in the heartbeat and raised
        stats.error = stats.error or f"{type(err).__name__}: {err}"[:2000]
        log.warning("source %s: polling stopped: %s", source.name, stats.error)
    return stats


def _merge(into: PollStats, part: PollStats) -> None:
    for name in ("messages_received", "objects_enqueued", "objects_skipped",
                 "messages_poisoned", "messages_deleted"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    for reason, n in part.skipped_reasons.items():
        into.skipped_reasons[reason] = into.skipped_reasons.get(reason, 0) + n
    into.error = into.error or part.error


def forward_batch(conn: Connector, source: Source, messages: list[dict[str, Any]],
                  stats: PollStats, pool: ThreadPoolExecutor) -> None:
    """Forward one ReceiveMessage batch concurrently; delete exactly the messages whose objects
    are all on the work queue. A failure leaves its message in SQS (it comes back after the
    visibility timeout) and is raised after the others were settled."""
    futures = [(m, pool.submit(forward_message, conn, source, m)) for m in messages]
    done, error = [], None
    for message, fut in futures:
        try:
            outcome = fut.result()
        except (TransientError, AzureError) as err:  # left in SQS; raised after the deletes
            error = error or err
            continue
        except Exception as err:  # noqa: BLE001 - a message we cannot handle (a bug, or input
            # nobody foresaw) is settled alone: dead-lettered with its text, the rest go on
            log.exception("source %s: forwarding SQS message %s failed", source.name,
                          message.get("MessageId"))
            try:
                outcome = _poison_message(conn, source, message, FatalError(
                    f"unexpected {type(err).__name__} while forwarding: {err}"))
            except TransientError as dl_err:
                error = error or dl_err
                continue
        stats.add(outcome)
        done.append(message)
    delete_messages(conn, source, done, stats)
    if error is not None:
        raise error


def forward_message(conn: Connector, source: Source, message: dict[str, Any]) -> Forwarded:
    """Put every object of one SQS message on the work queue (raises if one cannot be)."""
    body = message.get("Body", "")
    message_id = message.get("MessageId")
    out = Forwarded()
    try:
        parsed = parse_body(body, source=source.name, message_id=message_id)
    except NotificationError as err:
        conn.dead_letter(poison.for_body(body, err, source=source.name, message_id=message_id))
        out.poisoned = True
        return out
    out.skipped = [reason.split(" ")[0] for reason in parsed.skipped]
    refused: list[str] = []
    for ref in parsed.objects:
        if not source.allows(ref.bucket, ref.key):
            log.warning("source %s: %r is outside the bucket/prefix allow-list; skipped",
                        source.name, ref.uri[:300])
            out.skipped.append("outside-allow-list")
            continue
        try:
            conn.work.send(ref.to_json())
        except ValueError as err:  # this work item alone cannot be queued (over 64 KB)
            refused.append(f"{ref.uri[:200]!r}: {err}")
            continue
        except HttpResponseError as err:
            if err.status_code not in (400, 413):  # 413 RequestBodyTooLarge, 400 invalid
                raise
            refused.append(f"{ref.uri[:200]!r}: the work queue refused it ({err.status_code} "
                           f"{err.error_code})")
            continue
        out.enqueued += 1
    if parsed.rejected:
        # the unusable records of this body, dead-lettered once with their reasons; the good
        # ones above are on the work queue already (settled per record, never retried)
        err = NotificationError(f"{len(parsed.rejected)} record(s) of the notification "
                                "rejected: " + "; ".join(parsed.rejected[:5]))
        conn.dead_letter(poison.for_body(body, err, source=source.name, message_id=message_id))
        out.poisoned = True
    if refused:
        # the others are on the work queue; this message is settled with the reason
        poisoned = _poison_message(conn, source, message, NotificationError(
            f"{len(refused)} object(s) of this notification cannot be queued: "
            + "; ".join(refused[:3])))
        out.poisoned = out.poisoned or poisoned.poisoned
    return out


def _poison_message(conn: Connector, source: Source, message: dict[str, Any],
                    error: ConnectorError) -> Forwarded:
    """Dead-letter one SQS message with its reason (raises TransientError if the poison queue
    cannot take it: the message then stays in SQS)."""
    conn.dead_letter(poison.for_body(message.get("Body", ""), error, source=source.name,
                                     message_id=message.get("MessageId")))
    return Forwarded(poisoned=True)


def delete_messages(conn: Connector, source: Source, messages: list[dict[str, Any]],
                    stats: PollStats) -> None:
    for i in range(0, len(messages), 10):
        chunk = messages[i:i + 10]
        entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                   for n, m in enumerate(chunk)]
        resp = conn.aws.call(source, "sqs", lambda c, e=entries: c.delete_message_batch(
            QueueUrl=source.queue_url, Entries=e))
        failed = resp.get("Failed", [])
        stats.messages_deleted += len(resp.get("Successful", []))
        for f in failed:
            # the message comes back after its visibility timeout; its objects are deduplicated
            log.warning("source %s: SQS did not delete a message (%s: %s); it will be seen "
                        "again and deduplicated", source.name, f.get("Code"), f.get("Message"))


# ---- queue trigger: one object -----------------------------------------------------------

CONFIG_RETRY_SECONDS = 300  # a work item waits this long while the settings are invalid


def process_work_item(body: str | bytes, *, dequeue_count: int = 1) -> ObjectStats:
    """The queue trigger's body: one work item with the process's Connector. When the settings
    are invalid there is no Connector: the item is re-queued with a delay (see
    ``defer_unconfigured``) instead of burning its attempts into the poison queue."""
    try:
        conn = connector()
    except ConfigError as err:
        return defer_unconfigured(body, err)
    return process_object(conn, body, dequeue_count=dequeue_count)


def process_object(conn: Connector, body: str | bytes, *, dequeue_count: int = 1) -> ObjectStats:
    """Deliver one object. Returns when every record is accepted or dead-lettered, or when the
    item was deferred (re-queued as a new message); raises TransientError when the host should
    retry it. Each outcome leaves through one branch below; every branch ends in the one health
    row written in ``finally``."""
    stats = ObjectStats("?", "?", "?", attempt=dequeue_count)
    ref: ObjectRef | None = None
    try:
        ref = ObjectRef.from_json(body)
        stats = ObjectStats(ref.source, ref.bucket, ref.key, attempt=dequeue_count)
        dead = _attempt(conn, ref, stats, dequeue_count)
    except _Duplicate as dup:
        log.info("%s was already delivered (%s); skipped", ref.uri if ref else "?", dup)
        stats.finish("duplicate", None)
    except Deferred as err:
        # the item is not at fault: a new copy, visible later; this one completes
        conn.work.send(ref.to_json(), delay=max(1, int(err.delay) + 1))
        stats.finish("deferred", None, err.message)
    except TransientError as err:
        if dequeue_count < conn.settings.max_dequeue_count:
            stats.finish("retrying", ref.event_time, err.message)
            raise
        if err.kind == "storage" or _circuit_open_for(conn, stats.table):
            # last attempt, but the outage is ours (storage) or the circuit is open: the item
            # waits as a fresh message instead of being dead-lettered
            conn.work.send(ref.to_json(), delay=int(conn.settings.circuit_cooldown_seconds))
            stats.finish("deferred", None, f"last attempt, re-queued: {err.message}")
        else:
            # last attempt: dead-letter it ourselves, so the poison queue has the reason
            conn.dead_letter(poison.for_object(ref, err, stage=_stage(err), attempts=dequeue_count,
                                               table=stats.table,
                                               first_failure=getattr(err, "first_failure", None)))
            stats.finish("dead_lettered", ref.event_time, err.message)
    except FatalError as err:
        if ref is None:  # the work item itself is unreadable
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            conn.dead_letter(poison.for_body(text, err, source="?", message_id=None))
        else:
            conn.dead_letter(poison.for_object(ref, err, stage=_stage(err),
                                               attempts=dequeue_count, table=stats.table,
                                               first_failure=getattr(err, "first_failure", None)))
        stats.finish("dead_lettered", ref.event_time if ref else None, err.message)
    else:
        outcome = ("skipped" if stats.table is None else
                   "partial" if stats.dead_total or dead else "delivered")
        stats.finish(outcome, ref.event_time, dead[0] if dead else None)
    finally:
        conn.emit_health(stats.rows())  # one per table the object's records went to
    return stats


def defer_unconfigured(body: str | bytes, error: ConfigError) -> ObjectStats:
    """The settings are invalid: nothing can be delivered, and nothing is wrong with the item.

    The item goes back to the work queue as a new message, visible after CONFIG_RETRY_SECONDS
    (a Storage queue message's initial visibility delay, ``visibilitytimeout`` on Put
    Message), and this invocation completes, so the host deletes the original. A new message
    has a dequeue count of 0: however long the settings stay wrong, the backlog never reaches
    maxDequeueCount and the poison queue. The queue is reached the way the host reaches it
    (AzureWebJobsStorage, or its identity-based __queueServiceUri, and WORK_QUEUE), which
    works whenever the trigger does. Raising instead would spend one dequeue count per
    visibilityTimeout (30 s): five tries and the host moves the raw item to the poison queue.
    """
    import os

    from azure.storage.queue import QueueServiceClient

    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    env = os.environ
    name = env.get("WORK_QUEUE", "").strip() or "s3-objects"
    if env.get("AzureWebJobsStorage", "").strip():
        service = QueueServiceClient.from_connection_string(env["AzureWebJobsStorage"].strip())
    else:
        from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

        client_id = env.get("AZURE_CLIENT_ID") or None
        credential = (ManagedIdentityCredential(client_id=client_id)
                      if env.get("IDENTITY_ENDPOINT") else
                      DefaultAzureCredential(managed_identity_client_id=client_id))
        service = QueueServiceClient(env["AzureWebJobsStorage__queueServiceUri"], credential)
    Queue(service, name).send(text, delay=CONFIG_RETRY_SECONDS)
    log.error("work item re-queued for %ds: the settings are invalid (fix them; nothing is "
              "lost): %s", CONFIG_RETRY_SECONDS, error.message)
    stats = ObjectStats("?", "?", "?")
    try:
        ref = ObjectRef.from_json(body)
        stats = ObjectStats(ref.source, ref.bucket, ref.key)
    except NotificationError:
        pass
    stats.finish("deferred", None, error.message)
    return stats


class _Duplicate(Exception):
    """The object was already delivered: its notification came again."""


def _circuit_open_for(conn: Connector, table: str | None) -> bool:
    return table is not None and conn.breaker_for(table).retry_in() > 0


def _attempt(conn: Connector, ref: ObjectRef, stats: ObjectStats,
             dequeue_count: int) -> list[str]:
    """One attempt at one object under its lease: returns the dead-letter reasons of single
    records; raises _Duplicate, Deferred, TransientError or FatalError (progress saved)."""
    try:
        source = conn.settings.source(ref.source)
    except KeyError:
        # an object envelope, so `replay` can requeue it once the source is configured again
        raise WorkItemRefused(f"work item names unknown source {ref.source!r}; add it back "
                              "to AWS_SOURCES, then replay") from None
    if not source.allows(ref.bucket, ref.key):
        # whatever sits in the Azure queue is not trusted alone: the object is never read
        raise WorkItemRefused(f"work item {ref.uri} is outside source {source.name}'s "
                              "bucket/prefix allow-list; not read. If it should be ingested, add "
                              "the bucket and prefix to the source's buckets, then replay")
    try:
        progress = conn.checkpoints.load(ref)
        if progress.state in (cp.DONE, cp.PARTIAL) and not ref.replay:
            raise _Duplicate(progress.state)
        held = conn.checkpoints.claim(ref, progress, cp.LEASE_SECONDS)
    except AzureError as err:
        raise StorageError(f"checkpoint table unavailable: {err}"[:2000]) from err
    if held > 0:
        # another worker is sending this object (a second copy of the work item): look later
        raise Deferred(f"another worker holds this object for {held:.0f}s", delay=held)
    progress.attempts += 1
    if ref.replay:
        progress.dead = cp.Ranges()  # the operator fixed the cause: try those records again
    owner = uuid.uuid4().hex
    gate: list[CircuitBreaker] = []  # the breakers of the object's endpoints, once known
    try:
        with conn.checkpoints.keep_lease(
                ref, progress, also=lambda: [b.renew_probe(owner) for b in gate]):
            dead = deliver_object(conn, source, ref, progress, stats, owner=owner, gate=gate)
    except Exception as err:
        if isinstance(err, TransientDeliveryError) and gate:
            failed = getattr(err, "endpoint", None)  # set when one of several endpoints failed
            for breaker in gate:
                if failed is None or breaker.endpoint == failed:
                    breaker.failure(owner, source=source.name)
                else:
                    breaker.success(owner)  # its tables' records were delivered
        if isinstance(err, Deferred):
            progress.attempts -= 1  # not an attempt: the item waits
        else:
            progress.last_error = getattr(err, "message", str(err))
            progress.first_failure = progress.first_failure or poison.now_iso()
        # a fatal fault settles the object (what was read is delivered); anything else resumes
        progress.state = cp.PARTIAL if isinstance(err, FatalError) else cp.RUNNING
        stats.records_out = len(progress.done)  # batches accepted before the fault stay counted
        try:
            if not isinstance(err, LeaseLost):  # a new owner's row is not this worker's to write
                conn.checkpoints.save(ref, progress, release=True)
        except (AzureError, LeaseLost) as save_err:
            log.warning("%s: checkpoint not saved: %s", ref.uri, save_err)
        if isinstance(err, ConnectorError):
            err.first_failure = progress.first_failure  # for the poison envelope
            raise
        log.exception("%s: unexpected error", ref.uri)  # a bug or an unclassified SDK error:
        # retry it, and on the last attempt dead-letter it with its text like any transient
        wrapped = TransientError(f"unexpected {type(err).__name__}: {err}")
        wrapped.first_failure = progress.first_failure
        raise wrapped from err
    for breaker in gate:
        breaker.success(owner)
    progress.state = cp.PARTIAL if dead or len(progress.dead) else cp.DONE
    try:
        conn.checkpoints.save(ref, progress, release=True)
    except AzureError as err:
        raise StorageError(f"checkpoint table unavailable: {err}"[:2000]) from err
    stats.dead_total = len(progress.dead)
    stats.check_balance()
    return dead


def _stage(err: ConnectorError) -> str:
    if isinstance(err, (ObjectReadError, IntegrityError)):
        return "read"  # decompression limits, unsupported containers, checksum mismatches
    return {"bad_format": "parse", "undeclared_kind": "parse",
            "work_item_refused": "process"}.get(err.kind, "deliver")


def deliver_object(conn: Connector, source: Source, ref: ObjectRef, progress: cp.Progress,
                   stats: ObjectStats, *, owner: str = "",
                   gate: list[CircuitBreaker] | None = None) -> list[str]:
    """Stream, parse, batch and upload one object. Returns the dead-letter reasons. Raises
    Deferred when the circuit of a table's endpoint is open (``gate`` receives the breakers
    admitted, so the caller reports the object's success or failure to them). An object of a
    format with ``tables`` goes through ``_deliver_routed`` (each record to its table)."""
    stream = open_object(lambda fn: conn.aws.call(source, "s3", fn), ref)
    text = TextSource(decompress(stream, where=ref.uri, limits=conn.settings.decompress_limits),
                      where=ref.uri)
    override = source.format_for(ref.key)
    declared = source.kinds_for(ref.key)
    fmt = formats.detect(ref.key, text.head, override=override, kind=declared)
    if fmt is formats.RAW and override is None and not source.allows_raw(ref.key):
        # the raw table is readable by everyone in the workspace: only prefixes that opt in.
        # A read fault met in the head (an unsupported container, a bomb) is the better reason.
        text.finish()
        raise FormatError(f"{ref.uri}: unrecognised format; add a rawPrefixes entry (or a "
                          f"formatRules entry) to source {source.name} to ingest it raw into "
                          f"{fmt.table}")
    stats.format, stats.table = fmt.name, fmt.table
    stats.integrity = stream.integrity
    if fmt.table is None:
        stats.bytes_in = stream.bytes_read
        log.info("%s is %s: not ingested (%s)", ref.uri, fmt.name, fmt.description)
        return []
    allowed = provenance.allowed_kinds(fmt, ref.key, override=override, declared=declared)
    if fmt.tables:  # records of several tables: admit every endpoint they may go to
        tables = [t for t in fmt.routes if provenance.SENSITIVE.get(t) in (None, *allowed)]
        breakers = list({b.endpoint: b for b in map(conn.breaker_for, tables)}.values())
        wait = max(b.retry_in() for b in breakers)  # no probe taken unless all may go
    else:
        breakers = [conn.breaker_for(fmt.table)]
        wait = 0.0
    admitted: list[CircuitBreaker] = []
    for breaker in breakers if wait <= 0 else ():
        wait = breaker.admit(owner)
        if wait > 0:  # another instance took this one's probe since retry_in: send nothing,
            for taken in admitted:  # and free the probes taken, for the next caller now
                taken.release_probe(owner)
            break
        admitted.append(breaker)
    if gate is not None and wait <= 0:
        gate.extend(admitted)
    if wait > 0:
        # the endpoint is failing for every instance: park the item, spend no attempt
        raise Deferred(f"circuit of {fmt.table}'s endpoint open for {wait:.0f}s more"
                       if len(breakers) == 1 else
                       f"circuit of an endpoint of {', '.join(tables)} open for {wait:.0f}s "
                       "more", delay=wait)
    ctx = formats.ObjectContext(source=ref.source, bucket=ref.bucket, key=ref.key,
                                event_time=ref.event_time)
    # records the parser rejected: positions, distinct reasons and a few samples, never the
    # text of each one (an object of bad lines would be held whole in memory)
    rejected = _Rejected()  # positions as intervals: millions of bad lines stay a few bytes
    rejected_reasons: set[str] = set()
    rejected_samples: list[str] = []
    rejected_lines: list[int] = []

    binary = None  # an unlinked temp file: nothing is left on disk even if it is not closed
    if formats.wants_bytes(fmt, text.head):  # binary (VPC Flow Logs in Parquet): row groups
        binary = spooled(text.raw_chunks(), where=ref.uri)  # from a temp file, not memory
        items = fmt.parse_bytes(binary, ctx)
    else:
        items = fmt.parse(text, ctx)

    fault: list[ConnectorError] = []
    # positions past this one were not settled by an earlier attempt (this attempt settles
    # only positions it has already read): most rows skip the two membership tests
    settled = max((r.last for r in (progress.done, progress.dead) if r), default=-1)

    def note_rejected(position: int, item: formats.Rejected) -> None:
        if position not in progress.dead:  # not reported again on a retry
            rejected.add(position)
            if len(rejected_lines) < 2000:
                rejected_lines.append(item.position)  # as the parser counts
            if len(rejected_reasons) < 100:
                rejected_reasons.add(item.reason)
            if len(rejected_samples) < 3:
                rejected_samples.append(f"line {item.position}: {item.raw}")

    # the source's filters, looked up once: only when a rule names this table (not a property
    # test and an attribute lookup per record: ~0.05 s per 100 MB of VPC Flow)
    rule_for = source.filters.for_table(fmt.table)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        lo, hi = stats.event_time_min, stats.event_time_max  # see_time only when they move
        try:
            for position, item in enumerate(items):
                stats.records_in += 1  # read: accepted + dead-lettered + skipped at the end
                if item.__class__ is not dict and isinstance(item, formats.Rejected):
                    note_rejected(position, item)
                    continue
                if item.__class__ is not dict and isinstance(item, formats.Skipped):
                    stats.records_skipped += 1
                    continue
                t = item.get("TimeGenerated")
                if t and (lo is None or t < lo or t > hi):
                    stats.see_time(t)
                    lo, hi = stats.event_time_min, stats.event_time_max
                if position <= settled and (position in progress.done or
                                            position in progress.dead):
                    continue  # settled on an earlier attempt
                rule = rule_for(fmt.table, item) if rule_for is not None else None
                if rule is not None:  # the source's filters drop it: counted, not sent
                    stats.filtered(rule)
                    continue
                yield position, item
            text.finish()  # a read fault the parser did not run into is still a fault
        except ConnectorError as err:
            # the content broke off (truncated, corrupt gzip, read cut): end the rows here so
            # the open batch and the records before the fault are still sent and settled;
            # the fault is raised after that
            fault.append(err)

    # every accepted batch is saved before its upload worker takes another (a save failing
    # with an AzureError is logged: progress is saved again at the end, only a resume is
    # lost); saves that would queue behind one another are one save (group commit)
    saver = cp.GroupSaver(conn.checkpoints, ref, progress)

    def accepted(batch: Any) -> None:
        progress.done.add(batch.positions)
        stats.batches += 1
        saver.note()

    def routed_accepted(table: str, batch: Any) -> None:
        counts = stats.routes[table]
        counts.accepted += len(batch)
        counts.batches += 1
        accepted(batch)

    deadline = stats.started + conn.settings.invocation_budget_seconds
    undeclared: dict[str, _Undeclared] = {}
    if fmt.tables:  # records of several tables: each to its own DCR stream
        results = _send_routed(conn, source, fmt, items, progress, stats, allowed, undeclared,
                               on_rejected=note_rejected, fault=fault, text=text,
                               accepted=routed_accepted, settle=saver.commit,
                               deadline=deadline)
    else:
        results = {fmt.table: conn.ingestor(fmt.table).send(
            stream_of(fmt.table),
            batches(rows(), conn.settings.max_batch_bytes, on_clip=stats.clipped),
            on_accepted=accepted, settle=saver.commit, deadline=deadline)}
    stats.checkpoint_saves = saver.saves
    if binary is not None:
        binary.close()
    stats.bytes_in = stream.bytes_read
    stats.integrity = stream.integrity
    stats.records_out = len(progress.done)
    filters.count(source.name, stats.filtered_by)  # per rule, in the next heartbeat
    reasons: list[str] = []
    if rejected.count:
        stats.records_dropped += rejected.count
        distinct = sorted(rejected_reasons)
        err = RecordError(f"{rejected.count} record(s) of {ref.uri} could not be parsed as "
                          f"{fmt.name}: " + "; ".join(distinct[:5]))
        conn.dead_letter(poison.for_object(ref, err, stage="parse", attempts=progress.attempts,
                                           table=fmt.table,
                                           positions=rejected.ranges, lines=rejected_lines,
                                           samples=rejected_samples))
        rejected.settle(progress.dead)
        reasons.append(err.message)
    if text.long_line_count:
        stats.records_dropped += text.long_line_count
        err = RecordError(f"{text.long_line_count} line(s) of {ref.uri} are longer than "
                          f"{MAX_LINE_CHARS} characters (not a log record; not read): "
                          + ", ".join(f"line {n} ({length} chars)"
                                      for n, length, _ in text.long_lines[:5]))
        envelope = poison.for_object(
            ref, err, stage="parse", attempts=progress.attempts, table=fmt.table,
            samples=[f"line {n}: {sample}" for n, _, sample in text.long_lines[:3]])
        envelope.records = {"count": text.long_line_count,
                            "lines": [n for n, _, _ in text.long_lines]}
        conn.dead_letter(envelope)
        reasons.append(err.message)
    for table, tally in undeclared.items():  # records of a kind the prefix does not carry
        err = provenance.undeclared_records(table, tally.count, ref.key, declared)
        stats.records_dropped += tally.count
        stats.routes[table].dead += tally.count
        conn.dead_letter(poison.for_object(ref, err, stage="parse", attempts=progress.attempts,
                                           table=table, positions=tally.ranges))
        progress.dead.update(tally.ranges)
        reasons.append(err.message)
    transient = None
    for table, result in results.items():
        for dead in result.dead:  # each envelope names the table of its records
            stats.records_dropped += len(dead.positions)
            if table in stats.routes:
                stats.routes[table].dead += len(dead.positions)
            conn.dead_letter(poison.for_object(ref, dead.error, stage="deliver",
                                               attempts=dead.attempts, table=table,
                                               positions=dead.positions))
            progress.dead.update(dead.positions)
            reasons.append(dead.error.message)
        transient = transient or result.transient
    if transient is not None:
        raise transient
    if fault:
        raise fault[0]
    return reasons


class _Undeclared:
    """The positions of one object's records of a sensitive kind its prefix is not declared
    for (``provenance``): dead-lettered together, with the setting to change."""

    MAX_RUNS = 50_000  # separate stretches: past this the object is not read further

    def __init__(self) -> None:
        self.count = 0
        self.runs = 0
        self.ranges = cp.Ranges()
        self.last = -2

    def add(self, position: int) -> None:
        if position != self.last + 1:
            self.runs += 1
            if self.runs > self.MAX_RUNS:
                raise FormatError(f"more than {self.MAX_RUNS} separate stretches of records of "
                                  "kinds this prefix is not declared for: not read further "
                                  "(declare the kinds, or send them elsewhere)")
        self.count += 1
        self.last = position
        self.ranges.append(position)


def _send_routed(conn: Connector, source: Source, fmt: formats.Format, items: Any,
                 progress: cp.Progress, stats: ObjectStats, allowed: frozenset[str],
                 undeclared: dict[str, _Undeclared], *, on_rejected: Any, fault: list[Any],
                 text: TextSource, accepted: Any, settle: Any,
                 deadline: float) -> dict[str, Any]:
    """Deliver an object whose records go to several tables (``Format.tables``): each record
    to its table's DCR stream (``Settings.route``), through one bounded pool of uploads
    (``ingestion.Uploads``), with one open batch per table and nothing else held (a 1 GB
    mixed object streams like a single-table one). Positions are the object's, across tables:
    the checkpoint resumes whatever the table. A record routed to a sensitive table whose
    kind is not ``allowed`` is not sent: its position goes to ``undeclared`` (dead-lettered
    by the caller). Returns each table's DeliveryReport."""
    s = conn.settings
    own = fmt.table
    uploads = Uploads(s.max_uploads_in_flight, accepted, settle=settle, deadline=deadline)
    open_batches: dict[str, Batcher] = {}
    targets: dict[str, tuple[Ingestor, str]] = {}
    refused = {t for t in fmt.tables if provenance.SENSITIVE.get(t) not in (None, *allowed)}
    done, dead = progress.done, progress.dead
    routes = stats.routes
    rule_for = source.filters.rule_for if source.filters else None

    def send(table: str, item: Any) -> None:
        if table not in targets:
            targets[table] = (conn.ingestor(table), stream_of(table))
        uploads.submit(table, *targets[table], item)

    try:
        for position, item in enumerate(items):
            stats.records_in += 1  # read: accepted + dead-lettered + skipped at the end
            if isinstance(item, formats.Routed):
                table, item = item
            elif isinstance(item, dict):
                table = own
            elif isinstance(item, formats.Rejected):
                on_rejected(position, item)
                continue
            else:  # Skipped
                stats.records_skipped += 1
                continue
            counts = routes.get(table)
            if counts is None:
                counts = routes[table] = TableCounts()
            counts.records += 1
            stats.see_time(item.get("TimeGenerated"))
            if position in done:
                counts.accepted_before += 1
                continue  # settled on an earlier attempt
            if position in dead:
                continue
            if table in refused:  # content alone never makes sensitive rows
                if table not in undeclared:
                    undeclared[table] = _Undeclared()
                undeclared[table].add(position)
                continue
            rule = rule_for(table, item) if rule_for is not None else None
            if rule is not None:  # the source's filters drop it: counted, not sent
                stats.filtered(rule)
                counts.filter(rule)
                continue
            if uploads.stopped(table):
                if all(uploads.stopped(t) for t in routes):
                    break  # every table met so far failed, or the time budget ran out
                continue  # not accepted: the object's retry sends it
            batcher = open_batches.get(table)
            if batcher is None:
                batcher = open_batches[table] = Batcher(s.max_batch_bytes,
                                                        on_clip=stats.clipped)
            ready = batcher.add(position, item)
            if ready is not None:
                send(table, ready)
        else:
            text.finish()  # a read fault the parser did not run into is still a fault
    except ConnectorError as err:
        # the content broke off: the open batches and the records before the fault are still
        # sent and settled; the fault is raised after that (as on the single-table path)
        fault.append(err)
    finally:
        try:
            for table, batcher in open_batches.items():
                last = batcher.flush()
                if last is not None:
                    send(table, last)
        finally:
            reports = uploads.close()
    return reports


class _Rejected:
    """The positions of rejected records as one ``Ranges`` (contiguous runs of junk stay a few
    intervals, whatever their number), with the bounds past which an object does not fit its
    format at all and is not read further."""

    MAX_RUNS = 50_000  # separate stretches of bad records: past this it is not that format
    MAX_COUNT = 1_000_000  # bad records in one object: the same

    def __init__(self) -> None:
        self.count = 0
        self.last = -1
        self.runs = 0
        self.ranges = cp.Ranges()

    def add(self, position: int) -> None:
        if not self.count or position != self.last + 1:
            self.runs += 1
            if self.runs > self.MAX_RUNS:
                raise FormatError(f"more than {self.MAX_RUNS} separate stretches of records "
                                  "could not be parsed (every other line bad?): the object "
                                  "does not fit its format; not read further")
        self.count += 1
        if self.count > self.MAX_COUNT:
            raise FormatError(f"more than {self.MAX_COUNT} records could not be parsed (junk "
                              "lines, a decompression bomb of them?): the object does not fit "
                              "its format; not read further")
        self.last = position
        self.ranges.append(position)

    def settle(self, dead: cp.Ranges) -> None:
        """Add every rejected position to the object's dead-lettered ranges."""
        dead.update(self.ranges)


# ---- HTTP: health ------------------------------------------------------------------------

def check_health(conn: Connector | None = None, *,
                 detail: bool = False) -> tuple[int, dict[str, Any]]:
    """Check each component; 200 when all pass, 503 otherwise. ``detail`` (the `check` CLI
    only) adds account ids, ARNs and raw error texts; /api/health gives a short reason."""
    if conn is None:
        try:
            conn = connector()
        except ConnectorError as err:
            if detail:
                failed = {"status": "fail", "error": err.message}
            else:  # the names of the bad settings, not their values
                names = sorted({p.split(":")[0].split("[")[0] for p in
                                getattr(err, "problems", [])})
                failed = {"status": "fail", "reason": f"invalid settings: {', '.join(names)}; "
                                                      "details: python -m shared check"}
            return 503, {"status": "unhealthy", "components": {"settings": failed}}
    checks = [run_check("settings", lambda: {"sources": len(conn.settings.sources)}),
              run_check("azure_token", lambda: _token_check(conn))]
    for source in conn.settings.sources:
        checks.append(run_check(f"aws:{source.name}", lambda s=source: _aws_check(conn, s)))
        checks.append(run_check(f"sqs:{source.name}", lambda s=source: _sqs_check(conn, s)))
    if conn.aws.secrets is not None:
        checks.append(run_check("key_vault", lambda: _vault_check(conn)))
    endpoints = {conn.settings.logs_ingestion_endpoint,
                 *(e for e, _ in conn.settings.dcr_routes.values())}
    for endpoint in sorted(endpoints):
        # open = the endpoint failed object after object on some instance: work is deferred
        snap = conn.breaker_at(endpoint).snapshot()
        checks.append(Check(f"circuit:{urlsplit(endpoint).netloc}", snap["state"] != "open",
                            snap))
    checks.append(run_check("work_queue", lambda: {"depth": conn.work.depth()}))
    checks.append(run_check("poison_queue", lambda: {"depth": conn.poison.depth()}))
    return report(checks, detail=detail)


def _token_check(conn: Connector) -> dict[str, Any]:
    token = conn.azure.get_token(MONITOR_SCOPE)
    return {"expires_in_s": int(token.expires_on - time.time())}


def _vault_check(conn: Connector) -> dict[str, Any]:
    names = [n for s in conn.settings.sources if s.uses_keys
             for n in (s.access_key_id_secret, s.secret_access_key_secret) if n]
    for name in names:
        conn.aws.secrets.get(name, fresh=True)  # readable now, not only cached
    return {"secrets": len(names)}


def _aws_check(conn: Connector, source: Source) -> dict[str, Any]:
    ident = conn.aws.call(source, "sts", lambda c: c.get_caller_identity())
    return {"account": ident.get("Account"), "arn": ident.get("Arn"),
            "mode": "federation" if source.role_arn else "keyvault-keys"}


def _sqs_check(conn: Connector, source: Source) -> dict[str, Any]:
    attrs = conn.aws.call(source, "sqs", lambda c: c.get_queue_attributes(
        QueueUrl=source.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))
    a = attrs["Attributes"]
    return {"backlog": int(a.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(a.get("ApproximateNumberOfMessagesNotVisible", 0))}
