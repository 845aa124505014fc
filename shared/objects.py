"""Reading one S3 object as a stream of byte chunks (never the whole object in memory).

The read is pinned to the version (or ETag) the notification announced, so a key overwritten
in the meantime is not read as if it were the announced object.

Integrity: GetObject asks for ``ChecksumMode=ENABLED``. One check runs while the bytes stream
(never a second read), the first that applies, and ``ObjectStream.integrity`` names it:

* a full-object CRC32, SHA-1 or SHA-256: botocore verifies it itself as the body is read
  (``StreamingChecksumBody``) and raises at the end on a mismatch;
* a full-object CRC32C (botocore needs the CRT for it): computed here with ``crc32c``;
* otherwise a plain MD5 ETag (single-part upload, not SSE-KMS / SSE-C): MD5 computed here.

A multipart object's checksum with a ``-N`` suffix (or ``x-amz-checksum-type: COMPOSITE``) is
a checksum of the part checksums, and a multipart ETag is not an MD5 of the content: neither
can be checked from the stream (``none:multipart``). A mismatch is an ``IntegrityError``
(retried; dead-lettered as ``integrity`` with both values on the last attempt).
"""
from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

try:  # botocore's own verifying body; its absence only means no SDK-side check
    from botocore.httpchecksum import StreamingChecksumBody
except ImportError:  # pragma: no cover
    StreamingChecksumBody = ()  # type: ignore[assignment,misc]
try:
    from botocore.exceptions import FlexibleChecksumError
except ImportError:  # pragma: no cover
    FlexibleChecksumError = ()  # type: ignore[assignment,misc]

from .errors import IntegrityError, ObjectReadError, TransientError
from .notifications import ObjectRef

CHUNK_BYTES = 256 * 1024


_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
_SDK_CHECKED = ("CRC32", "SHA1", "SHA256", "CRC32C")  # as botocore may verify them


class _Check:
    """A digest computed over the stored bytes as they stream, compared at the end."""

    def __init__(self, name: str, expected: str, update: Callable[[bytes], None],
                 result: Callable[[], str]):
        self.name, self.expected, self.update, self.result = name, expected, update, result


def _crc32c_check(expected: str) -> _Check | None:
    try:
        import crc32c
    except ImportError:
        return None
    state = [0]

    def update(chunk: bytes) -> None:
        state[0] = crc32c.crc32c(chunk, state[0])
    return _Check("crc32c", expected, update,
                  lambda: base64.b64encode(state[0].to_bytes(4, "big")).decode())


def _md5_check(expected: str) -> _Check:
    h = hashlib.md5(usedforsecurity=False)
    return _Check("md5-etag", expected, h.update, h.hexdigest)


def choose_check(resp: dict[str, Any]) -> tuple[str, _Check | None]:
    """(the integrity check that will run for this GetObject answer, our own digest or None
    when botocore verifies it or nothing can)."""
    headers = {k.lower(): v for k, v in
               resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).items()}
    composite = headers.get("x-amz-checksum-type", "").upper() == "COMPOSITE"
    present = {alg: str(resp[f"Checksum{alg}"]) for alg in _SDK_CHECKED
               if resp.get(f"Checksum{alg}")}
    full = {alg: v for alg, v in present.items() if "-" not in v and not composite}
    if isinstance(resp.get("Body"), StreamingChecksumBody) and full:
        sdk = [alg for alg in full if alg != "CRC32C"] or list(full)
        return sdk[0].lower() + " (sdk)", None
    if "CRC32C" in full:
        check = _crc32c_check(full["CRC32C"])
        if check is not None:
            return "crc32c", check
    etag = str(resp.get("ETag") or "").strip('"')
    encrypted = str(resp.get("ServerSideEncryption") or "").startswith("aws:kms") or \
        bool(resp.get("SSECustomerAlgorithm"))
    if _MD5_ETAG.match(etag) and not encrypted:
        return "md5-etag", _md5_check(etag)
    if present or "-" in etag:
        return "none:multipart", None
    return "none:kms" if encrypted else "none", None


class ObjectStream:
    """Chunks of the object's stored bytes; counts what was read, checks its integrity."""

    def __init__(self, body: Any, ref: ObjectRef, *, integrity: str = "none",
                 check: _Check | None = None):
        self._body = body
        self.ref = ref
        self.bytes_read = 0
        self.integrity = integrity  # which check ran (the health row's IntegrityCheck)
        self._check = check

    def __iter__(self) -> Iterator[bytes]:
        check = self._check
        try:
            for chunk in self._body.iter_chunks(CHUNK_BYTES):
                self.bytes_read += len(chunk)
                if check is not None:
                    check.update(chunk)
                yield chunk
        except FlexibleChecksumError as err:  # botocore's own check, at the end of the body
            raise IntegrityError(f"{self.ref.uri}: {self.integrity} mismatch after "
                                 f"{self.bytes_read} bytes: {err}") from err
        except (BotoCoreError, OSError) as err:
            raise TransientError(f"{self.ref.uri}: read interrupted after {self.bytes_read} "
                                 f"bytes ({err})") from err
        finally:
            self._body.close()
        if check is not None:
            actual = check.result()
            if actual != check.expected:
                raise IntegrityError(f"{self.ref.uri}: {check.name} mismatch: S3 says "
                                     f"{check.expected}, the {self.bytes_read} bytes read give "
                                     f"{actual}")


def open_object(call: Callable[[Callable[[Any], Any]], Any], ref: ObjectRef) -> ObjectStream:
    """GetObject through ``call(fn)`` (the source's S3 client with credential refresh)."""
    args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key, "ChecksumMode": "ENABLED"}
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
    integrity, check = choose_check(resp)
    return ObjectStream(resp["Body"], ref, integrity=integrity, check=check)
