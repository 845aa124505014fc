"""The hot-path transports read the environment once (shared/transport.py), and still honour
it: an HTTPS proxy (CONNECT) carries the uploads, NO_PROXY bypasses it, and the CA bundle of
REQUESTS_CA_BUNDLE verifies the emulator's certificate (every test of the suite relies on it).
"""
from __future__ import annotations

import socket
import threading

from azure.identity import ManagedIdentityCredential

from shared.batching import batches
from shared.ingestion import Ingestor, RetryPolicy

STREAM = "Custom-AWSCloudWatch"


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1: pipes each tunnel, counts them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tunnels: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = client.recv(4096)
            if not data:
                return
            head += data
        method, target = head.split(b" ")[:2]
        assert method == b"CONNECT", head
        self.tunnels.append(target.decode())
        host, port = target.decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self) -> None:
        self.sock.close()


def _send(stack, n: int = 5):
    ing = Ingestor(stack.env["LOGS_INGESTION_ENDPOINT"], stack.env["DCR_IMMUTABLE_ID"],
                   ManagedIdentityCredential(), policy=RetryPolicy(2, 0.01, 0.1), in_flight=2)
    try:
        rows = [(i, {"TimeGenerated": "2024-05-01T00:00:00Z", "Message": f"m{i}"})
                for i in range(n)]
        return ing.send(STREAM, batches(rows, 1_000_000))
    finally:
        ing.close()


def test_uploads_go_through_the_https_proxy_of_the_environment(stack, monkeypatch):
    for k, v in stack.env.items():
        monkeypatch.setenv(k, v)
    stack.ingestion.reset()
    proxy = ConnectProxy()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        report = _send(stack)
        assert report.records_out == 5 and report.transient is None
        port = stack.env["LOGS_INGESTION_ENDPOINT"].rsplit(":", 1)[1].strip("/")
        assert proxy.tunnels and all(t.endswith(f":{port}") for t in proxy.tunnels)
        # AND NO_PROXY naming the host sends straight to it
        proxy.tunnels.clear()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        report = _send(stack)
        assert report.records_out == 5 and proxy.tunnels == []
    finally:
        proxy.close()
    assert len(stack.ingestion.accepted(STREAM)) == 10


def test_a_ca_bundle_that_does_not_know_the_service_fails_the_upload(stack, monkeypatch,
                                                                     tmp_path):
    import trustme

    for k, v in stack.env.items():
        monkeypatch.setenv(k, v)
    stack.ingestion.reset()
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))  # read when the Ingestor is built
    report = _send(stack)
    assert report.records_out == 0 and report.transient is not None
    assert "certificate" in report.transient.message.lower(), report.transient.message
    assert stack.ingestion.accepted(STREAM) == []
