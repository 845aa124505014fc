"""SQS message bodies -> references to S3 objects.

Recognised bodies: direct S3 event notifications (several Records per message), the same
wrapped by SNS (enveloped, or raw message delivery), EventBridge "Object Created" events, and
``s3:TestEvent``. Non-create events (deletes, restores, tests) are skipped and counted.
Keys are URL-decoded exactly once with ``unquote_plus`` (S3 encodes a space as ``+``).
A body that is none of these raises ``NotificationError`` with a reason a person can act on.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .errors import NotificationError


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
            return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})
        except (ValueError, TypeError) as err:
            raise NotificationError(f"work item is not an object reference: {err}") from err

    @property
    def identity(self) -> str:
        """What makes two deliveries of this object the same (for dedup). The ETag first: a
        backfill listing has it but no version id, and two versions with different content
        have different ETags."""
        return f"{self.bucket}/{self.key}@{self.etag or self.version_id or self.sequencer or ''}"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class Parsed:
    """What one SQS body held: objects to ingest and events deliberately skipped."""

    objects: list[ObjectRef] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one reason per skipped event


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
            if not isinstance(rec, dict) or rec.get("eventSource") != "aws:s3":
                src = rec.get("eventSource") if isinstance(rec, dict) else type(rec).__name__
                raise NotificationError(f"Records[{i}] is not an S3 event (eventSource={src!r}, "
                                        f"{via})")
            name = str(rec.get("eventName", ""))
            if not name.startswith("ObjectCreated:"):
                out.skipped.append(f"{name or 'unnamed event'} (not an object creation)")
                continue
            try:
                s3 = rec["s3"]
                obj = s3["object"]
                out.objects.append(ObjectRef(
                    source=source, bucket=s3["bucket"]["name"], key=unquote_plus(obj["key"]),
                    size=_int(obj.get("size")), etag=obj.get("eTag") or obj.get("etag"),
                    version_id=_version(obj.get("versionId")), sequencer=obj.get("sequencer"),
                    event_time=rec.get("eventTime"), sqs_message_id=message_id))
            except (KeyError, TypeError) as err:
                raise NotificationError(f"Records[{i}] lacks s3.bucket.name or s3.object.key "
                                        f"({err!r}, {via})") from err
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
            out.objects.append(ObjectRef(
                source=source, bucket=detail["bucket"]["name"], key=unquote_plus(obj["key"]),
                size=_int(obj.get("size")), etag=obj.get("etag"),
                version_id=_version(obj.get("version-id")), sequencer=obj.get("sequencer"),
                event_time=doc.get("time"), sqs_message_id=message_id))
        except (KeyError, TypeError) as err:
            raise NotificationError(f"EventBridge event lacks detail.bucket.name or "
                                    f"detail.object.key ({err!r})") from err
        return out
    keys = ", ".join(sorted(doc)[:8])
    raise NotificationError(f"not an S3 notification (no Records, not EventBridge aws.s3, not "
                            f"s3:TestEvent; top-level keys: {keys}; {via})")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _version(value: Any) -> str | None:
    """S3 says "null" for objects written while versioning was off or suspended."""
    return None if value in (None, "", "null") else str(value)
