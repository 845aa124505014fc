"""The connector's one error taxonomy.

Every failure ends in exactly one of three outcomes, and the exception type says which:

* ``TransientError``  -> retry: the caller raises it on, so the work item is tried again
  (the SQS message stays, or the Functions host re-delivers the queue message).
* ``FatalError``      -> dead-letter: the item goes to the poison queue with this reason and the
  invocation completes. A person must act (fix config, fix data) and then replay.
* 413 on a batch is neither: the ingestion stage splits and retries the halves itself.

``ConfigError`` is raised before any work starts and lists every bad setting at once.
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Base class. ``kind`` is a short stable name used in poison envelopes and health rows."""

    kind = "error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class ConfigError(ConnectorError):
    """Settings are missing or invalid. Fix the listed app settings and restart."""

    kind = "config"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid settings:\n  - " + "\n  - ".join(self.problems))


class TransientError(ConnectorError):
    """Temporary failure (throttling, 5xx, network). Retry the whole work item later."""

    kind = "transient"


class FatalError(ConnectorError):
    """Will fail the same way on every retry. Dead-letter with this reason; a person acts."""

    kind = "fatal"


class WorkItemRefused(FatalError):
    """A work item that must not be processed as it stands: its source is not configured, or
    its object is outside the source's allow-list (the Azure queue is not trusted alone)."""

    kind = "work_item_refused"


class NotificationError(FatalError):
    """An SQS message body is not an S3/SNS/EventBridge notification we can read."""

    kind = "bad_notification"


class ObjectReadError(FatalError):
    """The S3 object cannot be read (gone, access denied, corrupt compression)."""

    kind = "object_read"


class DecompressionLimitError(ObjectReadError):
    """The object inflates past MAX_DECOMPRESSED_BYTES or MAX_EXPANSION_RATIO (a bomb, or
    junk). Dead-lettered with both numbers; raise the setting and replay if it is genuine."""

    kind = "decompression_limit"


class FormatError(FatalError):
    """The object's content does not fit its detected (or configured) format."""

    kind = "bad_format"


class UndeclaredKindError(FormatError):
    """The content looks like a security-sensitive kind (CloudTrail, GuardDuty, Security Hub)
    but neither AWS's key layout nor the source's ``kinds`` setting vouches for the object's
    prefix. Declare the prefix (the reason says how), then replay."""

    kind = "undeclared_kind"


class RecordError(FatalError):
    """Single records the parser could not read; the rest of the object is delivered."""

    kind = "bad_record"


class DeliveryError(FatalError):
    """The Logs Ingestion API refused a batch for good (400 schema, 401, 403, 404)."""

    kind = "delivery_rejected"


class RecordTooLargeError(FatalError):
    """One record is larger than a single upload may be; it is dead-lettered alone."""

    kind = "record_too_large"


class TransientDeliveryError(TransientError):
    """Uploads kept failing transiently after every attempt; the work item is retried."""

    kind = "delivery_transient"


class IntegrityError(TransientError):
    """What was read from S3 does not match the object's checksum (or its MD5 ETag). Retried
    (a read corrupted in transit heals); on the last attempt dead-lettered with both values."""

    kind = "integrity"


class AwsCredentialError(TransientError):
    """AWS credentials could not be obtained or were refused (may be rotation or propagation)."""

    kind = "aws_credentials"


class StorageError(TransientError):
    """Azure Storage (the checkpoint table) is unavailable. Retried; on the last attempt the
    work item is re-queued with a delay instead of being dead-lettered: nothing is wrong with
    the object."""

    kind = "storage"


class Deferred(ConnectorError):
    """Not now, and not the item's fault: the circuit of its endpoint is open, another worker
    holds its lease, or the settings are invalid. The work item goes back to the queue as a
    new message, visible after ``delay`` seconds, so no dequeue count is spent."""

    kind = "deferred"

    def __init__(self, message: str, *, delay: float):
        super().__init__(message)
        self.delay = delay


class LeaseLost(Deferred):
    """Another worker took the object over (this worker's lease ran out: a pause longer than
    the lease, renewals that failed): its checkpoint changed under this one's etag. This worker
    stops sending the object and saves nothing more; the item comes back later and finds the
    object finished or held by the new owner."""

    kind = "lease_lost"
