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
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError

from . import checkpoints as cp
from . import formats, poison
from .batching import batches
from .config import Settings, Source, load_settings
from .credentials import MONITOR_SCOPE, AwsSessions, KeyVaultSecrets, azure_credential
from .errors import (
    ConnectorError,
    FatalError,
    NotificationError,
    RecordError,
    TransientError,
)
from .health import (
    HEALTH_TABLE,
    Forwarded,
    HealthBuffer,
    ObjectStats,
    PollStats,
    report,
    run_check,
)
from .ingestion import CircuitBreaker, Ingestor, RetryPolicy
from .notifications import ObjectRef, parse_body
from .objects import open_object
from .parquet_source import spooled
from .queues import Queue, queue_service, table_client
from .reader import TextSource, decompress
from .schemas import stream_of

log = logging.getLogger(__name__)


@dataclass
class Connector:
    """Process-wide clients, built once per worker and shared by invocations."""

    settings: Settings
    azure: Any
    aws: AwsSessions
    work: Queue
    poison: Queue
    checkpoints: cp.Checkpoints
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    _ingestors: dict[tuple[str, str, bool], Ingestor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Connector:
        azure = azure_credential(settings)
        secrets = (KeyVaultSecrets(settings.key_vault_url, azure)
                   if settings.key_vault_url else None)
        service = queue_service(settings, azure)
        return cls(
            settings=settings, azure=azure, aws=AwsSessions(settings, azure, secrets),
            work=Queue(service, settings.work_queue),
            poison=Queue(service, settings.poison_queue),
            checkpoints=cp.Checkpoints(table_client(settings, azure)))

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


# How long a worker owns an object it is sending: the host's functionTimeout (host.json).
LEASE_SECONDS = 600
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

def poll_notifications(conn: Connector) -> list[PollStats]:
    """Drain every source's SQS queue into the work queue within the time budget."""
    deadline = time.monotonic() + conn.settings.poll_time_budget_seconds
    results = []
    sources = conn.settings.sources
    for i, source in enumerate(sources):
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
        stats.circuit_state = conn.breaker.state
    conn.emit_health([s.row() for s in results])
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
        except Exception as err:  # noqa: BLE001 - settled below, raised after the deletes
            error = error or err
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
    for ref in parsed.objects:
        if not source.allows(ref.bucket, ref.key):
            log.info("source %s: %s is outside the bucket/prefix allow-list; skipped",
                     source.name, ref.uri)
            out.skipped.append("outside-allow-list")
            continue
        conn.work.send(ref.to_json())
        out.enqueued += 1
    return out


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

def process_object(conn: Connector, body: str | bytes, *, dequeue_count: int = 1) -> ObjectStats:
    """Deliver one object. Returns when every record is accepted or dead-lettered; raises
    TransientError when the host should retry the work item."""
    try:
        ref = ObjectRef.from_json(body)
    except NotificationError as err:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        conn.dead_letter(poison.for_body(text, err, source="?", message_id=None))
        stats = ObjectStats("?", "?", "?")
        stats.finish("dead_lettered", None, err.message)
        conn.emit_health([stats.row()])
        return stats
    try:
        source = conn.settings.source(ref.source)
    except KeyError:
        # an object envelope, so `replay` can requeue it once the source is configured again
        error = FatalError(f"work item names unknown source {ref.source!r}; add it back to "
                           "AWS_SOURCES, then replay")
        conn.dead_letter(poison.for_object(ref, error, stage="process", attempts=dequeue_count))
        stats = ObjectStats(ref.source, ref.bucket, ref.key, attempt=dequeue_count)
        stats.finish("dead_lettered", ref.event_time, error.message)
        conn.emit_health([stats.row()])
        return stats

    stats = ObjectStats(ref.source, ref.bucket, ref.key, attempt=dequeue_count)
    progress = conn.checkpoints.load(ref)
    if progress.state in (cp.DONE, cp.PARTIAL) and not ref.replay:
        stats.finish("duplicate", None)
        log.info("%s was already delivered (%s); skipped", ref.uri, progress.state)
        conn.emit_health([stats.row()])
        return stats
    wait = conn.breaker.retry_in()
    if wait > 0:
        # the ingestion service is failing: park the item without spending its dequeue count
        conn.work.send(ref.to_json(), delay=int(wait) + 1)
        stats.finish("deferred", None, f"circuit open for {wait:.0f}s more")
        conn.emit_health([stats.row()])
        return stats
    held = conn.checkpoints.claim(ref, progress, LEASE_SECONDS)
    if held > 0:
        # another worker is sending this object (a second copy of the work item): look later
        conn.work.send(ref.to_json(), delay=int(held) + 1)
        stats.finish("deferred", None, f"another worker holds this object for {held:.0f}s")
        conn.emit_health([stats.row()])
        return stats
    progress.attempts += 1
    if ref.replay:
        progress.dead = cp.Ranges()  # the operator fixed the cause: try those records again
    try:
        try:
            dead = deliver_object(conn, source, ref, progress, stats)
        except ConnectorError:
            raise
        except Exception as err:  # noqa: BLE001 - a bug or an unclassified SDK error: retry it,
            # and on the last attempt dead-letter it with its text, like any transient failure
            log.exception("%s: unexpected error", ref.uri)
            raise TransientError(f"unexpected {type(err).__name__}: {err}") from err
    except TransientError as err:
        if err.kind == "delivery_transient":
            conn.breaker.failure()
        progress.state = cp.RUNNING
        progress.last_error = err.message
        progress.first_failure = progress.first_failure or poison.now_iso()
        conn.checkpoints.save(ref, progress, release=True)
        if dequeue_count < conn.settings.max_dequeue_count:
            stats.finish("retrying", ref.event_time, err.message)
            conn.emit_health([stats.row()])
            raise
        # last attempt: dead-letter it ourselves, so the poison queue has the reason
        conn.dead_letter(poison.for_object(
            ref, err, stage="deliver", attempts=dequeue_count, table=stats.table,
            first_failure=progress.first_failure))
        stats.finish("dead_lettered", ref.event_time, err.message)
        conn.emit_health([stats.row()])
        return stats
    except FatalError as err:
        stats.records_out = len(progress.done)  # batches accepted before the fault stay counted
        conn.dead_letter(poison.for_object(ref, err, stage=_stage(err), attempts=dequeue_count,
                                           table=stats.table,
                                           first_failure=progress.first_failure))
        progress.state = cp.PARTIAL
        progress.last_error = err.message
        conn.checkpoints.save(ref, progress, release=True)
        stats.finish("dead_lettered", ref.event_time, err.message)
        conn.emit_health([stats.row()])
        return stats
    if stats.table is not None:
        conn.breaker.success()
    progress.state = cp.PARTIAL if dead or len(progress.dead) else cp.DONE
    conn.checkpoints.save(ref, progress, release=True)
    outcome = ("skipped" if stats.table is None else
               "partial" if dead or len(progress.dead) else "delivered")
    stats.finish(outcome, ref.event_time, dead[0] if dead else None)
    conn.emit_health([stats.row()])
    return stats


def _stage(err: ConnectorError) -> str:
    return {"object_read": "read", "bad_format": "parse"}.get(err.kind, "deliver")


def deliver_object(conn: Connector, source: Source, ref: ObjectRef, progress: cp.Progress,
                   stats: ObjectStats) -> list[str]:
    """Stream, parse, batch and upload one object. Returns the dead-letter reasons."""
    stream = open_object(lambda fn: conn.aws.call(source, "s3", fn), ref)
    text = TextSource(decompress(stream, where=ref.uri), where=ref.uri)
    fmt = formats.detect(ref.key, text.head, override=source.format_for(ref.key))
    stats.format, stats.table = fmt.name, fmt.table
    if fmt.table is None:
        stats.bytes_in = stream.bytes_read
        log.info("%s is %s: not ingested (%s)", ref.uri, fmt.name, fmt.description)
        return []
    ctx = formats.ObjectContext(source=ref.source, bucket=ref.bucket, key=ref.key,
                                event_time=ref.event_time)
    # records the parser rejected: positions, distinct reasons and a few samples, never the
    # text of each one (an object of bad lines would be held whole in memory)
    rejected = cp.Ranges()  # positions as intervals: millions of bad lines stay a few bytes
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

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            for position, item in enumerate(items):
                if isinstance(item, formats.Rejected):
                    if position not in progress.dead:  # not reported again on a retry
                        rejected.append(position)
                        if len(rejected_lines) < 2000:
                            rejected_lines.append(item.position)  # as the parser counts
                        if len(rejected_reasons) < 100:
                            rejected_reasons.add(item.reason)
                        if len(rejected_samples) < 3:
                            rejected_samples.append(f"line {item.position}: {item.raw}")
                    continue
                if isinstance(item, formats.Skipped):
                    stats.records_skipped += 1
                    continue
                stats.records_in += 1
                stats.see_time(item.get("TimeGenerated"))
                if position in progress.done or position in progress.dead:
                    continue  # settled on an earlier attempt
                yield position, item
        except ConnectorError as err:
            # the content broke off (truncated, corrupt gzip, read cut): end the rows here so
            # the open batch and the records before the fault are still sent and settled;
            # the fault is raised after that
            fault.append(err)

    def accepted(batch: Any) -> None:
        progress.done.add(batch.positions)
        stats.batches += 1
        try:
            conn.checkpoints.save(ref, progress)
        except AzureError as err:  # progress is saved again at the end; only a resume is lost
            log.warning("%s: checkpoint not saved: %s", ref.uri, err)

    result = conn.ingestor(fmt.table).send(
        stream_of(fmt.table), batches(rows(), conn.settings.max_batch_bytes),
        on_accepted=accepted, deadline=stats.started + conn.settings.invocation_budget_seconds)
    if binary is not None:
        binary.close()
    stats.bytes_in = stream.bytes_read
    stats.records_out = len(progress.done)
    reasons: list[str] = []
    if rejected:
        stats.records_dropped += len(rejected)
        distinct = sorted(rejected_reasons)
        err = RecordError(f"{len(rejected)} record(s) of {ref.uri} could not be parsed as "
                          f"{fmt.name}: " + "; ".join(distinct[:5]))
        conn.dead_letter(poison.for_object(ref, err, stage="parse", attempts=progress.attempts,
                                           table=fmt.table,
                                           positions=rejected, lines=rejected_lines,
                                           samples=rejected_samples))
        progress.dead.update(rejected)
        reasons.append(err.message)
    for dead in result.dead:
        stats.records_dropped += len(dead.positions)
        conn.dead_letter(poison.for_object(ref, dead.error, stage="deliver",
                                           attempts=dead.attempts, table=fmt.table,
                                           positions=dead.positions))
        progress.dead.update(dead.positions)
        reasons.append(dead.error.message)
    if result.transient is not None:
        raise result.transient
    if fault:
        raise fault[0]
    return reasons


# ---- HTTP: health ------------------------------------------------------------------------

def check_health(conn: Connector | None = None) -> tuple[int, dict[str, Any]]:
    """Check each component; 200 when all pass, 503 otherwise."""
    if conn is None:
        try:
            conn = connector()
        except ConnectorError as err:
            return 503, {"status": "unhealthy", "components": {
                "settings": {"status": "fail", "error": err.message}}}
    checks = [run_check("settings", lambda: {"sources": len(conn.settings.sources)}),
              run_check("azure_token", lambda: _token_check(conn))]
    for source in conn.settings.sources:
        checks.append(run_check(f"aws:{source.name}", lambda s=source: _aws_check(conn, s)))
        checks.append(run_check(f"sqs:{source.name}", lambda s=source: _sqs_check(conn, s)))
    if conn.aws.secrets is not None:
        checks.append(run_check("key_vault", lambda: _vault_check(conn)))
    checks.append(run_check("work_queue", lambda: {"depth": conn.work.depth()}))
    checks.append(run_check("poison_queue", lambda: {"depth": conn.poison.depth()}))
    return report(checks)


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
