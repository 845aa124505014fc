"""Shared plumbing for the in-process emulators: a threaded HTTP(S) server and a handler base."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

MAX_READ_BYTES = 64 * 1024 * 1024  # refuse to buffer absurd bodies


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: Any,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(address, handler)
        self.emulator = emulator
        self.ssl_context = ssl_context

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the per-connection thread, so a stuck client
        # cannot block the accept loop.
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(30)
        with self.ssl_context.wrap_socket(request, server_side=True) as tls:
            self.RequestHandlerClass(tls, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


E = TypeVar("E")


class Handler(BaseHTTPRequestHandler, Generic[E]):
    """Request handler base: HTTP/1.1 keep-alive, JSON helpers, logging through ``logging``."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    server: _Server

    @property
    def emulator(self) -> E:
        return self.server.emulator

    @property
    def path_only(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return {
            k: v[-1] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()
        }

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("%s %s", type(self.emulator).__name__, format % args)

    def read_body(self) -> bytes:
        """Read the whole request body (Content-Length or chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_READ_BYTES:
                    raise ValueError("body too large to buffer")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_READ_BYTES:
            raise ValueError("body too large to buffer")
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_empty(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        if status not in (204, 304):
            self.send_header("Content-Length", "0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def abort_connection(self) -> None:
        """Drop the connection without an answer (TCP RST), like a crashed front end."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.connection.close()


class Emulator:
    """Owns a server thread on 127.0.0.1. Subclasses set ``handler_class``."""

    handler_class: type[BaseHTTPRequestHandler]

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._server = _Server((host, port), self.handler_class, self, ssl_context)
        self._thread: threading.Thread | None = None
        self.host, self.port = self._server.server_address[:2]
        self.scheme = "https" if ssl_context else "http"

    @property
    def url(self) -> str:
        """Origin without a trailing slash, e.g. ``https://127.0.0.1:50123``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,
            )
            self._thread.start()
            logger.info("%s listening on %s", type(self).__name__, self.url)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
