"""HTTPS emulator of the Azure Monitor Logs Ingestion API.

``POST /dataCollectionRules/{dcrImmutableId}/streams/{stream}?api-version=2023-01-01``

Checks, in order: bearer token (signature, exp, aud ``https://monitor.azure.com``) -> 401;
DCR immutable id -> 404; caller's oid in ``allowed_principals`` -> 403; injected fault;
wire and gunzipped size <= 1 MiB -> 413; body is a JSON array of objects -> 400; stream known
-> 400 ``InvalidStream``; every key a declared column with a value of the column's JSON type
-> 400. Success is 204 with no body. Errors are ``{"error": {"code", "message"}}`` plus the
``x-ms-error-code`` header.

The column check is stricter than the service (which drops undeclared columns silently): here an
undeclared column is a bug in the mapper and should fail loudly. Stream declarations come from
``shared/schemas/*.json`` (``{"table", "stream", "outputStream", "columns": [{"name", "type"}]}``).
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from isal import isal_zlib as _isal_zlib

from . import tokens
from ._http import Emulator, Handler

logger = logging.getLogger(__name__)

DEFAULT_SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "shared" / "schemas"
DEFAULT_DCR_IMMUTABLE_ID = "dcr-00000000000000000000000000000000"
AUDIENCE = "https://monitor.azure.com"
MAX_BODY_BYTES = 1_048_576
_PATH = re.compile(r"^/dataCollectionRules/(?P<dcr>[^/]+)/streams/(?P<stream>[^/]+)/?$")
_DEFAULT_CODES = {
    400: "InvalidPayload",
    401: "InvalidToken",
    403: "OperationFailed",
    404: "NotFound",
    413: "ContentLengthLimitExceeded",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An error answer: HTTP status, service error code, message, extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Fault:
    """A scripted answer for the next ``count`` matching requests (see ``inject``)."""

    status: int | None = None
    count: int = 1
    retry_after: float | None = None
    latency: float = 0.0
    reset: bool = False
    stream: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass
class Chaos:
    """Random faults for every request (the soak): each request draws one answer.

    ``p429`` answers 429, ``retry_after_share`` of them with ``Retry-After``; ``p503`` answers
    503; ``p_reset`` drops the connection before the batch is stored, ``p_reset_stored`` after
    it was stored (the client never hears that it was: a lost answer, the batch will repeat);
    ``p_spike`` delays the answer by ``spike_seconds`` first. ``outage(seconds)`` answers 503
    to everything for that long. Faulted requests (but the lost answers) store nothing.
    """

    p429: float = 0.0
    retry_after_share: float = 0.5
    retry_after: float = 1.0
    p503: float = 0.0
    p_reset: float = 0.0
    p_reset_stored: float = 0.0
    p_spike: float = 0.0
    spike_seconds: float = 3.0
    seed: int = 0
    streams: frozenset[str] | None = None  # None: every stream
    outage_until: float = 0.0  # time.monotonic()
    outages: int = 0

    def __post_init__(self) -> None:
        import random
        from collections import Counter

        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self.drawn: Counter[str] = Counter()  # answers drawn (and "latency-spike"), counted

    def outage(self, seconds: float) -> None:
        self.outage_until = time.monotonic() + seconds
        self.outages += 1

    def in_outage(self) -> bool:
        return time.monotonic() < self.outage_until

    def draw(self, stream: str) -> tuple[str, float]:
        """(answer, latency): answer is "ok", "429", "429-retry-after", "503", "reset" or
        "reset-stored"."""
        if self.streams is not None and stream not in self.streams:
            return "ok", 0.0
        if self.in_outage():
            with self._lock:
                self.drawn["503-outage"] += 1
            return "503", 0.0
        with self._lock:
            r, spike, ra = self._rng.random(), self._rng.random(), self._rng.random()
        latency = self.spike_seconds if spike < self.p_spike else 0.0
        answer = "ok"
        for name, p in (("429", self.p429), ("503", self.p503), ("reset", self.p_reset),
                        ("reset-stored", self.p_reset_stored)):
            if r < p:
                answer = ("429-retry-after" if name == "429" and ra < self.retry_after_share
                          else name)
                break
            r -= p
        with self._lock:
            self.drawn[answer] += 1
            if latency:
                self.drawn["latency-spike"] += 1
        return answer, latency


@dataclass(frozen=True)
class IngestionRequest:
    """One request as seen by the emulator (also failed and faulted ones)."""

    stream: str
    status: int  # 0 = connection dropped by an injected reset
    compressed_size: int  # bytes on the wire (== uncompressed_size without gzip)
    uncompressed_size: int
    record_count: int | None  # None: not parsed (``parse_records`` False, benchmarks)
    client_request_id: str | None
    error_code: str | None = None
    principal_id: str | None = None


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        return False
    return True


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "real": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "datetime": _is_datetime,
    "dynamic": lambda v: True,
}


def load_schemas(directory: Path | str) -> dict[str, dict[str, str]]:
    """Return ``{stream: {column: type}}`` for every ``*.json`` declaration in ``directory``."""
    streams: dict[str, dict[str, str]] = {}
    for path in sorted(Path(directory).glob("*.json")):
        decl = json.loads(path.read_text(encoding="utf-8"))
        columns = {c["name"]: c["type"].lower() for c in decl["columns"]}
        unknown = {t for t in columns.values() if t not in _TYPE_CHECKS}
        if unknown:
            raise ValueError(f"{path}: unknown column types {sorted(unknown)}")
        streams[decl["stream"]] = columns
    logger.debug("loaded %d stream declarations from %s", len(streams), directory)
    return streams


class _IngestionHandler(Handler["LogsIngestionEmulator"]):
    def do_POST(self) -> None:
        self.emulator._handle_post(self)

    def do_GET(self) -> None:
        self._method_not_allowed()

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _method_not_allowed(self) -> None:
        self.read_body()
        self.send_json(
            405,
            {"error": {"code": "MethodNotAllowed", "message": f"{self.command} is not supported"}},
            {"x-ms-error-code": "MethodNotAllowed"},
        )


class LogsIngestionEmulator(Emulator):
    """The Logs Ingestion API with one known DCR, schema checks and scriptable faults."""

    handler_class = _IngestionHandler

    def __init__(
        self,
        secret: bytes | str,
        ssl_context: ssl.SSLContext,
        *,
        schemas_dir: Path | str = DEFAULT_SCHEMAS_DIR,
        dcr_immutable_id: str = DEFAULT_DCR_IMMUTABLE_ID,
        allowed_principals: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.secret = secret
        self.dcr_immutable_id = dcr_immutable_id
        self.streams = load_schemas(schemas_dir)
        self.allowed_principals: set[str] | None = (
            set(allowed_principals) if allowed_principals is not None else None
        )
        self.requests: list[IngestionRequest] = []
        self._accepted: list[tuple[str, dict[str, Any]]] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        # False: count accepted records instead of keeping them (benchmarks send gigabytes)
        self.keep_records = True
        # False: no per-column type checks (benchmarks: the service's CPU is not ours to spend;
        # the test suite keeps them on)
        self.validate = True
        # False (benchmarks only, labelled in results.json): measure, do not read. Bodies are
        # inflated (isal, bounded as always: sizes measured, 413 still answered) but not parsed
        # as JSON, so records are neither counted nor checked (record_count None); the bench
        # counts delivered records from the pipeline's own stats. A remote service's parse
        # does not compete with the measured process for this machine's 2 cores.
        self.parse_records = True
        self.records_accepted = 0
        self.chaos: Chaos | None = None
        # sink(stream, records, answer_lost): receives accepted records instead of keeping
        # them (a soak accepts millions; the sink counts ids)
        self.sink: Any = None
        super().__init__(host=host, port=port, ssl_context=ssl_context)

    # ---- test API -------------------------------------------------------------------------
    def accepted(self, stream: str | None = None) -> list[dict[str, Any]]:
        """Records accepted so far (all streams in arrival order, or one stream)."""
        with self._lock:
            return [r for s, r in self._accepted if stream is None or s == stream]

    def inject(
        self,
        status: int | None = None,
        *,
        count: int = 1,
        retry_after: float | None = None,
        latency: float = 0.0,
        reset: bool = False,
        stream: str | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> Fault:
        """Queue a scripted answer for the next ``count`` requests (to ``stream`` if given).

        ``status`` answers with that error (and ``Retry-After`` if ``retry_after``); ``reset``
        drops the connection unanswered; ``latency`` delays the answer, which without
        ``status``/``reset`` is then processed normally. Faulted requests store nothing.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        fault = Fault(status, count, retry_after, latency, reset, stream, code, message)
        with self._lock:
            self._faults.append(fault)
        return fault

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def reset(self) -> None:
        """Forget records, requests and pending faults; allow every principal again."""
        with self._lock:
            self._accepted.clear()
            self.records_accepted = 0
            self.requests.clear()
            self._faults.clear()
            self.allowed_principals = None
            self.chaos = None
            self.sink = None

    # ---- request processing ---------------------------------------------------------------
    def _take_fault(self, stream: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.stream in (None, stream):
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _handle_post(self, h: Handler) -> None:
        body = h.read_body()
        match = _PATH.match(h.path_only)
        stream = match["stream"] if match else ""
        info: dict[str, Any] = {
            "compressed_size": len(body),
            "uncompressed_size": len(body),
            "record_count": 0,
        }
        try:
            if not match:
                raise ApiError(404, "NotFound", f"No route for {h.command} {h.path_only}")
            claims = self._authenticate(h.headers.get("Authorization"))
            info["principal_id"] = claims.get("oid")
            if match["dcr"] != self.dcr_immutable_id:
                raise ApiError(
                    404,
                    "NotFound",
                    f"Data collection rule with immutable Id '{match['dcr']}' not found.",
                )
            if (
                self.allowed_principals is not None
                and claims.get("oid") not in self.allowed_principals
            ):
                raise ApiError(
                    403,
                    "OperationFailed",
                    "The authentication token provided does not have access to ingest data for the "
                    f"data collection rule with immutable Id '{match['dcr']}'.",
                )
            fault = self._take_fault(stream)
            if fault is not None:
                if fault.latency:
                    time.sleep(fault.latency)
                if fault.reset:
                    logger.info("fault: dropping connection for %s", stream)
                    self._log(stream, 0, info, "ConnectionReset", h)
                    h.abort_connection()
                    return
                if fault.status is not None:
                    code = fault.code or _DEFAULT_CODES.get(fault.status, "InjectedFault")
                    headers = {}
                    if fault.retry_after is not None:
                        ra = fault.retry_after
                        headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
                    raise ApiError(
                        fault.status,
                        code,
                        fault.message or f"Injected fault {fault.status}",
                        headers,
                    )
            chaos = self.chaos.draw(stream) if self.chaos is not None and fault is None \
                else ("ok", 0.0)
            if chaos[1]:
                time.sleep(chaos[1])
            if chaos[0] == "reset":
                self._log(stream, 0, info, "ConnectionReset", h)
                h.abort_connection()
                return
            if chaos[0] in ("429", "429-retry-after", "503"):
                status = 503 if chaos[0] == "503" else 429
                raise ApiError(status, _DEFAULT_CODES[status], f"Injected fault {status}",
                               {"Retry-After": str(int(self.chaos.retry_after))}
                               if chaos[0] == "429-retry-after" else {})
            records = self._parse(body, h.headers.get("Content-Encoding", ""), info)
            if self.validate and records is not None:
                self._validate(stream, records)
            elif stream not in self.streams:
                self._validate(stream, [])  # still InvalidStream
            if chaos[0] == "reset-stored":  # stored, then the answer is lost
                self._store(stream, records, lost=True)
                self._log(stream, 0, info, "ConnectionResetAfterStore", h)
                h.abort_connection()
                return
        except ApiError as err:
            self._log(stream, err.status, info, err.code, h)
            h.send_json(
                err.status,
                {"error": {"code": err.code, "message": err.message}},
                {"x-ms-error-code": err.code, **err.headers},
            )
            return
        self._store(stream, records, lost=False)
        self._log(stream, 204, info, None, h)
        h.send_empty(204)

    def _store(self, stream: str, records: list[dict[str, Any]] | None, *, lost: bool) -> None:
        if records is None:  # measuring only: nothing to count or keep
            return
        if self.sink is not None:
            self.sink(stream, records, lost)
            return
        with self._lock:
            self.records_accepted += len(records)
            if self.keep_records:
                self._accepted.extend((stream, r) for r in records)

    def _log(
        self, stream: str, status: int, info: dict[str, Any], code: str | None, h: Handler
    ) -> None:
        entry = IngestionRequest(
            stream,
            status,
            info["compressed_size"],
            info["uncompressed_size"],
            info["record_count"],
            h.headers.get("x-ms-client-request-id"),
            code,
            info.get("principal_id"),
        )
        with self._lock:
            self.requests.append(entry)
        (logger.debug if status < 400 else logger.info)(
            "ingest %s -> %s %s", stream, status, code or ""
        )

    def _authenticate(self, header: str | None) -> dict[str, Any]:
        if not header or not header.startswith("Bearer "):
            raise ApiError(
                401, "InvalidToken", "An authentication token is required (Authorization: Bearer)."
            )
        try:
            return tokens.verify(header[len("Bearer ") :], self.secret, AUDIENCE)
        except tokens.TokenError as exc:
            raise ApiError(
                401, "InvalidToken", f"The authentication token is invalid: {exc}."
            ) from exc

    @staticmethod
    def _too_large(size: int) -> ApiError:
        return ApiError(
            413,
            "ContentLengthLimitExceeded",
            f"Maximum allowed content length: {MAX_BODY_BYTES} bytes (1 MB). "
            f"Provided content length: {size} bytes.",
        )

    def _parse(self, body: bytes, encoding: str,
               info: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The records of a body; None when ``parse_records`` is off (sizes still measured)."""
        if len(body) > MAX_BODY_BYTES:
            raise self._too_large(len(body))
        if encoding.strip().lower() == "gzip":
            try:
                # Bounded decompression: never inflate more than the limit + 1 byte.
                d = _isal_zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                raw = d.decompress(body, MAX_BODY_BYTES + 1)
                if len(raw) > MAX_BODY_BYTES:
                    size = len(raw) + sum(len(c) for c in _drain(d))
                    info["uncompressed_size"] = size
                    raise self._too_large(size)
                if not d.eof:
                    raise zlib.error("truncated gzip stream")
                body = raw
            except (zlib.error, _isal_zlib.error) as exc:
                raise ApiError(
                    400, "InvalidContentEncoding", f"The gzip body could not be decompressed: {exc}"
                ) from exc
            info["uncompressed_size"] = len(body)
        if not self.parse_records:
            info["record_count"] = None
            return None
        try:
            # without validation (benchmarks) orjson: the same checks in a fifth of the CPU,
            # which here competes with the process measured (a remote service would not)
            records = json.loads(body) if self.validate else orjson.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(
                400, "InvalidPayload", f"The request body is not valid JSON: {exc}"
            ) from exc
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ApiError(
                400, "InvalidPayload", "The request body must be a JSON array of objects."
            )
        info["record_count"] = len(records)
        return records

    def _validate(self, stream: str, records: list[dict[str, Any]]) -> None:
        columns = self.streams.get(stream)
        if columns is None:
            raise ApiError(
                400,
                "InvalidStream",
                f"Stream '{stream}' is not declared in data collection rule "
                f"'{self.dcr_immutable_id}'.",
            )
        for index, record in enumerate(records):
            for name, value in record.items():
                kind = columns.get(name)
                if kind is None:
                    raise ApiError(
                        400,
                        "InvalidPayload",
                        f"Record {index}: column '{name}' is not declared in stream '{stream}'.",
                    )
                if value is not None and not _TYPE_CHECKS[kind](value):
                    raise ApiError(
                        400,
                        "InvalidPayload",
                        f"Record {index}: column '{name}' of type '{kind}' got "
                        f"{type(value).__name__} value {str(value)[:80]!r}.",
                    )


def _drain(d: Any, chunk: int = 1 << 20) -> Iterable[bytes]:
    """Yield the rest of a decompression in bounded pieces (to measure, not to keep)."""
    data = d.unconsumed_tail
    while data:
        out = d.decompress(data, chunk)
        yield out
        data = d.unconsumed_tail
    yield d.flush()
