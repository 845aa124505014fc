"""Reading one S3 object as a stream of byte chunks (never the whole object in memory).

The read is pinned to the version (or ETag) the notification announced, so a key overwritten
in the meantime is not read as if it were the announced object.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .errors import ObjectReadError, TransientError
from .notifications import ObjectRef

CHUNK_BYTES = 256 * 1024


class ObjectStream:
    """Chunks of the object's stored bytes; counts what was read."""

    def __init__(self, body: Any, ref: ObjectRef):
        self._body = body
        self.ref = ref
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._body.iter_chunks(CHUNK_BYTES):
                self.bytes_read += len(chunk)
                yield chunk
        except (BotoCoreError, OSError) as err:
            raise TransientError(f"{self.ref.uri}: read interrupted after {self.bytes_read} "
                                 f"bytes ({err})") from err
        finally:
            self._body.close()


def open_object(call: Callable[[Callable[[Any], Any]], Any], ref: ObjectRef) -> ObjectStream:
    """GetObject through ``call(fn)`` (the source's S3 client with credential refresh)."""
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        args["VersionId"] = ref.version_id
    elif ref.etag:
        args["IfMatch"] = ref.etag if ref.etag.startswith('"') else f'"{ref.etag}"'
    try:
        resp = call(lambda s3: s3.get_object(**args))
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in ("NoSuchKey", "NoSuchVersion", "404", "NoSuchBucket"):
            raise ObjectReadError(f"{ref.uri}: object no longer exists ({code}); it was deleted "
                                  "or expired before it could be read", status=status,
                                  code=code) from err
        if code in ("PreconditionFailed", "412"):
            raise ObjectReadError(f"{ref.uri}: the object was overwritten after the notification "
                                  f"(ETag {ref.etag} no longer matches); the newer version has "
                                  "its own notification", status=status, code=code) from err
        if code in ("AccessDenied", "403", "KMS.AccessDeniedException", "AllAccessDisabled"):
            raise ObjectReadError(f"{ref.uri}: access denied ({code}); grant s3:GetObject on this "
                                  "prefix to the role (and kms:Decrypt on its key if it is "
                                  "SSE-KMS encrypted)", status=status, code=code) from err
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError",
                                     "ServiceUnavailable"):
            raise TransientError(f"{ref.uri}: S3 answered {code} ({status})", status=status,
                                 code=code) from err
        raise ObjectReadError(f"{ref.uri}: S3 refused GetObject: {code} ({status}) {err}",
                              status=status, code=code) from err
    except BotoCoreError as err:
        raise TransientError(f"{ref.uri}: cannot reach S3 ({err})") from err
    stream = ObjectStream(resp["Body"], ref)
    return stream
