"""SQS message bodies -> references to S3 objects.

Recognised bodies: direct S3 event notifications (several Records per message), the same
wrapped by SNS (enveloped, or raw message delivery), EventBridge "Object Created" events, and
``s3:TestEvent``. Non-create events (deletes, restores, tests) are skipped and counted.
Keys are URL-decoded exactly once with ``unquote_plus`` (S3 encodes a space as ``+``).
A body that is none of these raises ``NotificationError`` with a reason a person can act on.

Each record is validated on its own (``validate_ref``): a bucket that is not an S3 bucket name
(an ARN, a path), an empty, non-string or over-long key, a size that is not a byte count S3 can
hold, or a work item over the Storage queue message limit is a rejected record with its reason
(``Parsed.rejected``); the other records of the same body still go through. Only a body with no
usable record at all raises.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .errors import NotificationError
from .queues import MAX_TEXT_BYTES

# Bucket names as S3 accepts them, legacy us-east-1 names (capitals, underscores, up to 255)
# included; no ARNs (':'), no paths ('/'), no access points.
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
MAX_KEY_BYTES = 1024                 # S3's limit on a key (UTF-8)
MAX_OBJECT_SIZE = 50 * 1024 ** 4     # the largest object S3 stores (50 TiB)
_TEXT_FIELDS = ("etag", "version_id", "sequencer", "event_time", "sqs_message_id", "source")


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object to ingest: the body of one work-queue message."""

    source: str
    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_time: str | None = None
    sqs_message_id: str | None = None
    replay: bool | None = None  # set by the replay tool: reprocess even if seen before

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None},
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ObjectRef:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):  # '["source"]' would pass the `in` test below
                raise TypeError(f"expected a JSON object, not {type(data).__name__}")
            ref = cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError) as err:
            raise NotificationError(f"work item is not an object reference: {err}") from err
        problem = validate_ref(ref)
        if problem:  # whatever sits in the queue is checked again: never retried, dead-lettered
            raise NotificationError(f"work item is not a valid object reference: {problem}")
        return ref

    @property
    def identity(self) -> str:
        """What makes two deliveries of this object the same (for dedup). The ETag first: a
        backfill listing has it but no version id, and two versions with different content
        have different ETags."""
        return f"{self.bucket}/{self.key}@{self.etag or self.version_id or self.sequencer or ''}"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def validate_ref(ref: ObjectRef) -> str | None:
    """Why ``ref`` cannot name an S3 object (or fit one work-queue message), or None."""
    if not isinstance(ref.bucket, str) or not _BUCKET.match(ref.bucket) or ".." in ref.bucket:
        return f"bucket {str(ref.bucket)[:100]!r} is not an S3 bucket name"
    if not isinstance(ref.key, str):
        return f"object key is a {type(ref.key).__name__} ({str(ref.key)[:100]!r}), not a string"
    if not ref.key:
        return "object key is empty"
    if len(ref.key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"object key is longer than S3's {MAX_KEY_BYTES} bytes"
    if ref.size is not None and (not isinstance(ref.size, int) or isinstance(ref.size, bool)
                                 or not 0 <= ref.size <= MAX_OBJECT_SIZE):
        return f"object size {str(ref.size)[:40]!r} is not a byte count S3 can store"
    for name in _TEXT_FIELDS:
        value = getattr(ref, name)
        if value is not None and (not isinstance(value, str) or len(value) > 1024):
            return f"{name} is not a short string ({str(value)[:60]!r})"
    size = len(ref.to_json().encode())
    if size > MAX_TEXT_BYTES:
        return (f"the work item would be {size} bytes, over the Storage queue message limit "
                f"({MAX_TEXT_BYTES} bytes of text)")
    return None


@dataclass
class Parsed:
    """What one SQS body held: objects to ingest, events deliberately skipped, and records
    rejected with their reason (the body is dead-lettered once for those; the rest goes on)."""

    objects: list[ObjectRef] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one reason per skipped event
    rejected: list[str] = field(default_factory=list)  # one reason per unusable record


def _load(body: str | bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, TypeError) as err:
        raise NotificationError(f"{what} is not JSON: {err}") from err


def parse_body(body: str | bytes, *, source: str, message_id: str | None = None) -> Parsed:
    """Turn one SQS message body into object references (may be several, or none)."""
    doc = _load(body, "SQS message body")
    if not isinstance(doc, dict):
        raise NotificationError("SQS message body is JSON but not an object")
    # SNS envelope (raw message delivery off): the S3 event is a JSON string in Message
    if doc.get("Type") == "Notification" and "Message" in doc:
        inner = doc["Message"]
        if isinstance(inner, str):
            inner = _load(inner, f"SNS Message (topic {doc.get('TopicArn', '?')})")
        if not isinstance(inner, dict):
            raise NotificationError("SNS Message is not a JSON object "
                                    f"(topic {doc.get('TopicArn', '?')})")
        return _parse_event(inner, source=source, message_id=message_id,
                            via=f"SNS topic {doc.get('TopicArn', '?')}")
    return _parse_event(doc, source=source, message_id=message_id, via="SQS")


def _parse_event(doc: dict[str, Any], *, source: str, message_id: str | None,
                 via: str) -> Parsed:
    out = Parsed()
    if doc.get("Event") == "s3:TestEvent":
        out.skipped.append(f"s3:TestEvent for bucket {doc.get('Bucket', '?')}")
        return out
    if "Records" in doc:
        records = doc["Records"]
        if not isinstance(records, list):
            raise NotificationError(f"'Records' is not a list ({via})")
        for i, rec in enumerate(records):
            problem = _record(out, i, rec, source=source, message_id=message_id, via=via)
            if problem:
                out.rejected.append(problem)
        if out.rejected and not out.objects and not out.skipped:
            raise NotificationError("; ".join(out.rejected[:5]))  # nothing usable in it
        return out
    if doc.get("source") == "aws.s3" and "detail" in doc:
        kind = doc.get("detail-type", "")
        if kind != "Object Created":
            out.skipped.append(f"EventBridge '{kind}' (not an object creation)")
            return out
        try:
            detail = doc["detail"]
            obj = detail["object"]
            # EventBridge keys are URL-encoded like S3 notifications
            ref = ObjectRef(
                source=source, bucket=detail["bucket"]["name"], key=_key(obj["key"]),
                size=_size(obj.get("size")), etag=obj.get("etag"),
                version_id=_version(obj.get("version-id")), sequencer=obj.get("sequencer"),
                event_time=doc.get("time"), sqs_message_id=message_id)
        except (KeyError, TypeError) as err:
            raise NotificationError(f"EventBridge event lacks detail.bucket.name or "
                                    f"detail.object.key ({err!r})") from err
        problem = validate_ref(ref)
        if problem:
            raise NotificationError(f"EventBridge event: {problem}")
        out.objects.append(ref)
        return out
    keys = ", ".join(sorted(doc)[:8])
    raise NotificationError(f"not an S3 notification (no Records, not EventBridge aws.s3, not "
                            f"s3:TestEvent; top-level keys: {keys}; {via})")


def _record(out: Parsed, i: int, rec: Any, *, source: str, message_id: str | None,
            via: str) -> str | None:
    """Add one S3 event record to ``out``; the reason it is unusable, or None."""
    if not isinstance(rec, dict) or rec.get("eventSource") != "aws:s3":
        src = rec.get("eventSource") if isinstance(rec, dict) else type(rec).__name__
        return f"Records[{i}] is not an S3 event (eventSource={str(src)[:80]!r}, {via})"
    name = str(rec.get("eventName", ""))
    if not name.startswith("ObjectCreated:"):
        out.skipped.append(f"{name[:80] or 'unnamed event'} (not an object creation)")
        return None
    try:
        s3 = rec["s3"]
        obj = s3["object"]
        ref = ObjectRef(
            source=source, bucket=s3["bucket"]["name"], key=_key(obj["key"]),
            size=_size(obj.get("size")), etag=obj.get("eTag") or obj.get("etag"),
            version_id=_version(obj.get("versionId")), sequencer=obj.get("sequencer"),
            event_time=rec.get("eventTime"), sqs_message_id=message_id)
    except (KeyError, TypeError) as err:
        return f"Records[{i}] lacks s3.bucket.name or s3.object.key ({err!r}, {via})"
    problem = validate_ref(ref)
    if problem:
        return f"Records[{i}]: {problem} ({via})"
    out.objects.append(ref)
    return None


def _key(value: Any) -> Any:
    """URL-decoded once (S3 encodes a space as '+'); a non-string is kept for the validator."""
    return unquote_plus(value) if isinstance(value, str) else value


def _size(value: Any) -> Any:
    """An int size; an absent one None; anything else kept as it is for the validator."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _version(value: Any) -> str | None:
    """S3 says "null" for objects written while versioning was off or suspended."""
    return None if value in (None, "", "null") else str(value)
