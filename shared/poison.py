"""The poison envelope: one format for everything that is dead-lettered, and its replay.

An envelope says what failed (the object, or the SQS body), which records, why (error kind,
HTTP status and code, the service's text), how often it was tried and when it first and last
failed. It is plain JSON a person can read in Storage Explorer and a tool can replay. It never
exceeds what a Storage queue message may hold: long text is cut and the cut is marked.

The Functions host may also move a raw work item to the poison queue (a host crash on the last
attempt). ``read_envelope`` recognises that shape too, so replay treats both alike.

Triage (``s3sentinel poison ...``): ``peek`` and ``group`` look without receiving (nothing is
hidden or removed), ``replay`` moves items back to the work queue after the cause is fixed,
``purge`` deletes old ones.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
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


# ---- triage: list, show, replay, purge ---------------------------------------------------

# What a person does about each kind of dead letter (status-specific first).
ACTIONS: dict[tuple[str, int | None], str] = {
    ("delivery_rejected", 401): "the app's identity got no valid token for "
                                "https://monitor.azure.com: check AZURE_CLIENT_ID and the identity",
    ("delivery_rejected", 403): "grant Monitoring Metrics Publisher on the DCR to the app's "
                                "identity (propagation can take 30 min), then replay",
    ("delivery_rejected", 404): "the DCR or its endpoint is wrong: check DCR_IMMUTABLE_ID, "
                                "LOGS_INGESTION_ENDPOINT and DCR_ROUTES, then replay",
    ("delivery_rejected", 400): "the DCR refused the rows (stream or columns): redeploy the DCR "
                                "from infra/bicep so its stream matches shared/schemas, then "
                                "replay",
    ("delivery_rejected", None): "read the service's text in the reason, fix, then replay",
    ("object_read", None): "check the bucket policy, the role's s3:GetObject and the KMS key "
                           "policy (kms:Decrypt); an object deleted since is gone: purge it",
    ("bad_format", None): "the content does not fit its format: if these keys hold another "
                          "format, add a formatRules entry (e.g. raw) and replay; a truncated "
                          "object cannot be completed (its whole records were sent): purge it",
    ("bad_record", None): "single records were unreadable: look at the samples; replay only "
                          "after the parser or a formatRules entry handles them",
    ("bad_notification", None): "fix the sender (S3/SNS/EventBridge notification settings), "
                                "then replay or purge",
    ("record_too_large", None): "one record exceeds 1 MB: it cannot be sent as it is; purge it",
    ("delivery_transient", None): "the ingestion service kept failing: replay once it is "
                                  "healthy (`check`)",
    ("aws_credentials", None): "AWS refused the credentials: fix the IAM role trust policy or "
                               "the Key Vault keys (`check`), then replay",
    ("host_poison", None): "the worker crashed or timed out on the last attempt: look at the "
                           "app logs for this object, then replay",
    ("fatal", None): "read the reason (e.g. a source missing from AWS_SOURCES), fix, replay",
}


def action_for(env: Envelope) -> str:
    return (ACTIONS.get((env.kind, env.status)) or ACTIONS.get((env.kind, None))
            or "read the reason, fix the cause, then replay")


@dataclass
class Item:
    """One poison message as peeked or received: its envelope, or why it has none."""

    id: str
    inserted: datetime | None
    dequeue_count: int | None
    envelope: Envelope | None
    error: str | None = None
    message: Any = None  # the received QueueMessage (for delete / update), None when peeked

    @property
    def where(self) -> str:
        env = self.envelope
        if env is None:
            return "?"
        if env.object:
            return f"s3://{env.object.get('bucket')}/{env.object.get('key')}"
        return f"SQS body sha256 {(env.body_sha256 or '')[:12]}"


def _item(msg: Any) -> Item:
    text = msg.content.decode("utf-8", "replace") if isinstance(msg.content, bytes) \
        else msg.content
    try:
        env, error = read_envelope(text), None
    except (ValueError, ConnectorError) as err:
        env, error = None, f"not a poison envelope: {getattr(err, 'message', err)}"
    return Item(id=msg.id, inserted=getattr(msg, "inserted_on", None),
                dequeue_count=getattr(msg, "dequeue_count", None), envelope=env, error=error,
                message=msg)


@dataclass(frozen=True)
class Filter:
    stage: str | None = None
    kind: str | None = None
    reason: str | None = None   # case-insensitive substring

    def __call__(self, item: Item) -> bool:
        env = item.envelope
        if env is None:
            return not (self.stage or self.kind or self.reason)
        return ((not self.stage or env.stage == self.stage)
                and (not self.kind or env.kind == self.kind)
                and (not self.reason or self.reason.lower() in env.reason.lower()))


PEEK_MAX = 32  # the most messages Azure Storage lets anyone peek at


def peek(queue: Any, *, limit: int = PEEK_MAX) -> list[Item]:
    """The first messages of the queue, without receiving them (nothing is hidden or counted
    as a dequeue). Azure Storage peeks at most 32 messages."""
    queue.ensure()
    return [_item(m) for m in queue.client.peek_messages(max_messages=min(limit, PEEK_MAX))]


def group(items: list[Item]) -> list[dict[str, Any]]:
    """Items grouped by (kind, stage): count, oldest/newest failure, one sample, the action."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        env = item.envelope
        kind, stage = (env.kind, env.stage) if env else ("unreadable", "?")
        g = groups.get((kind, stage))
        when = (env.last_failure if env else None) or (item.inserted.isoformat()
                                                       if item.inserted else "")
        if g is None:
            g = groups[(kind, stage)] = {
                "kind": kind, "stage": stage, "count": 0, "oldest": when, "newest": when,
                "sample_id": item.id, "sample": item.where,
                "reason": env.reason if env else item.error,
                "status": env.status if env else None,
                "action": action_for(env) if env else "not ours: look at it with `poison show`"
                                                     ", then purge it"}
        g["count"] += 1
        g["oldest"] = min(g["oldest"], when) if when else g["oldest"]
        g["newest"] = max(g["newest"], when) if when else g["newest"]
    return sorted(groups.values(), key=lambda g: (-g["count"], g["kind"], g["stage"]))


def find(queue: Any, message_id: str) -> Item | None:
    """One message by id (or a unique id prefix) among those that can be peeked."""
    matches = [i for i in peek(queue) if i.id == message_id or i.id.startswith(message_id)]
    exact = [i for i in matches if i.id == message_id]
    return (exact or matches or [None])[0] if len(exact) == 1 or len(matches) == 1 else None


@dataclass
class ReplayResult:
    replayed: int = 0        # poison messages whose objects went back to the work queue
    objects: int = 0         # work items sent
    bytes: int = 0
    kept: int = 0            # messages left in the poison queue (with why)
    skipped: int = 0         # not matching the filter (left in the queue)
    duplicates: int = 0      # objects already requeued by this run
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def replay(conn: Any, *, where: Filter = Filter(), limit: int = 1000, dry_run: bool = False,
           visibility: int = 60, on_item: Callable[[str, Item, str], None] | None = None,
           on_progress: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Move matching poison items back to the work queue, one work item per object.

    A replayed work item is marked ``replay``: it is processed even if the object was seen
    before, and only its records not yet accepted (the dead-lettered ones included) are sent.
    Every object is checked against its source's bucket/prefix allow-list first: an item that
    names an unknown source or an object outside the list stays in the poison queue.
    Messages not replayed stay in the queue: hidden while the run looks at the others, and
    visible again when it ends (after ``visibility`` seconds for more than ``HOLD_MAX`` of
    them). ``on_item(action, item, text)`` reports each decision.
    """
    def say(action: str, item: Item, text: str) -> None:
        if on_item is not None:
            on_item(action, item, text)

    result = ReplayResult(dry_run=dry_run)
    conn.poison.ensure()
    scan = max(limit, conn.poison.depth()) + PEEK_MAX  # every message at most once per run
    # one work item per object: a replay retries every dead-lettered record of its object, so
    # a second one (one per envelope) would only report the still-failing records again.
    # Bounded by `limit`.
    requeued: set[tuple[str, str]] = set()
    held: list[Any] = []
    try:
        _replay_loop(conn, where, limit, dry_run, visibility, say, on_progress, result,
                     requeued, held, scan)
    finally:
        _release(conn.poison, held)
    return result


def _replay_loop(conn: Any, where: Filter, limit: int, dry_run: bool, visibility: int,
                 say: Callable[[str, Item, str], None],
                 on_progress: Callable[[int, int], None] | None, result: ReplayResult,
                 requeued: set[tuple[str, str]], held: list[Any], scan: int) -> None:
    from .errors import NotificationError
    from .notifications import parse_body

    seen = 0
    while result.replayed < limit and seen < scan:
        batch = list(conn.poison.client.receive_messages(
            messages_per_page=32, visibility_timeout=visibility,
            max_messages=min(32, limit - result.replayed)))
        if not batch:
            break
        for msg in batch:
            seen += 1
            if on_progress is not None:
                on_progress(1, 0)  # one poison item looked at (bytes: as objects are sent)
            item = _item(msg)
            if not where(item):
                result.skipped += 1
                _hold(held, msg)
                continue
            env = item.envelope
            if env is None:
                result.kept += 1
                _hold(held, msg)
                say("keep", item, item.error or "")
                continue
            refs = []
            if env.ref is not None:
                refs = [replace(env.ref, replay=True)]
            elif env.body and "...[cut" not in env.body:
                try:
                    refs = [replace(r, replay=True)
                            for r in parse_body(env.body, source=env.source or "?").objects]
                except NotificationError as err:
                    result.kept += 1
                    _hold(held, msg)
                    say("keep", item, f"body still unreadable ({err.message[:120]})")
                    continue
            if not refs:
                result.kept += 1
                _hold(held, msg)
                say("keep", item, f"nothing to replay ({env.kind}: {env.reason[:120]})")
                continue
            refused = _refused(conn, refs)
            if refused:
                result.kept += 1
                _hold(held, msg)
                say("keep", item, refused)
                continue
            for ref in refs:
                if (ref.source, ref.identity) in requeued:
                    result.duplicates += 1
                    say("already requeued", item, ref.uri)
                    continue
                requeued.add((ref.source, ref.identity))
                say("would replay" if dry_run else "replay", item, f"{ref.uri} ({env.kind})")
                if not dry_run:
                    conn.work.send(ref.to_json())
                result.objects += 1
                result.bytes += int(ref.size or 0)
                if on_progress is not None:
                    on_progress(0, int(ref.size or 0))
            if dry_run:
                _hold(held, msg)
            else:
                conn.poison.client.delete_message(msg)
            result.replayed += 1


HOLD_MAX = 10_000  # messages a run makes visible again at its end (the rest: after the timeout)


def _hold(held: list[Any], msg: Any) -> None:
    if len(held) < HOLD_MAX:
        held.append(msg)


def _release(queue: Any, held: list[Any]) -> None:
    """Make the messages a run looked at and left visible again now."""
    from azure.core.exceptions import AzureError

    for msg in held:
        try:
            queue.client.update_message(msg.id, pop_receipt=msg.pop_receipt,
                                        visibility_timeout=0)
        except AzureError:
            pass  # visible again after its timeout anyway
    held.clear()


def _refused(conn: Any, refs: list[ObjectRef]) -> str | None:
    """Why these objects may not go back to the work queue (None: they may)."""
    for ref in refs:
        try:
            source = conn.settings.source(ref.source)
        except KeyError:
            return (f"source {ref.source!r} is not in AWS_SOURCES: add it back, then replay "
                    f"({ref.uri})")
        if not source.allows(ref.bucket, ref.key):
            return (f"{ref.uri} is outside source {ref.source}'s bucket/prefix allow-list: "
                    "not replayed")
    return None


@dataclass
class PurgeResult:
    deleted: int = 0
    kept: int = 0
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def purge(conn: Any, *, older_than: timedelta, where: Filter = Filter(), dry_run: bool = False,
          visibility: int = 30,
          on_item: Callable[[str, Item, str], None] | None = None) -> PurgeResult:
    """Delete poison messages put there more than ``older_than`` ago (and matching ``where``).
    The others stay (hidden for ``visibility`` seconds while the run looks at the rest)."""
    result = PurgeResult(dry_run=dry_run)
    conn.poison.ensure()
    cutoff = datetime.now(UTC) - older_than
    seen, scan = 0, conn.poison.depth() + PEEK_MAX
    held: list[Any] = []
    try:
        while seen < scan:
            seen = _purge_batch(conn, cutoff, where, dry_run, visibility, on_item, result,
                                held, seen)
            if seen < 0:
                break
    finally:
        _release(conn.poison, held)
    return result


def _purge_batch(conn: Any, cutoff: datetime, where: Filter, dry_run: bool, visibility: int,
                 on_item: Callable[[str, Item, str], None] | None, result: PurgeResult,
                 held: list[Any], seen: int) -> int:
    """One received batch; returns the messages seen so far, -1 when the queue is empty."""
    batch = list(conn.poison.client.receive_messages(
        messages_per_page=32, visibility_timeout=visibility, max_messages=32))
    if not batch:
        return -1
    for msg in batch:
        seen += 1
        item = _item(msg)
        if item.inserted is None or item.inserted >= cutoff or not where(item):
            result.kept += 1
            _hold(held, msg)
            continue
        if on_item is not None:
            on_item("would delete" if dry_run else "delete", item, item.where)
        if dry_run:
            _hold(held, msg)
        else:
            conn.poison.client.delete_message(msg)
        result.deleted += 1
    return seen
