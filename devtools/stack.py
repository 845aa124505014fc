"""`LocalStack`: every local stand-in on 127.0.0.1, on free ports, started and stopped together.

* moto server (S3, SQS, SNS, STS, ...) and Azurite (blob, queue, table; in memory) as
  subprocesses in their own process groups; on Linux they also get SIGTERM if the thread that
  started them dies (PR_SET_PDEATHSIG), so a killed test run leaves no orphans. Start the stack
  from a thread that lives as long as the stack (the main thread is the normal case).
* the managed-identity, Logs Ingestion and Key Vault emulators as in-process server threads,
  the last two over HTTPS with a throwaway trustme CA written to ``<tmp>/ca.pem``.

``python -m devtools.stack [--json]`` runs it in the foreground for ``func start``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import trustme

from .identity import IdentityEmulator, ManagedIdentity
from .keyvault import KeyVaultEmulator
from .logs_ingestion import DEFAULT_DCR_IMMUTABLE_ID, DEFAULT_SCHEMAS_DIR, LogsIngestionEmulator

logger = logging.getLogger("devtools.stack")  # same name under `python -m`

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"
HOST = "127.0.0.1"
TENANT_ID = "72f988bf-0000-4000-8000-0000000000aa"
SYSTEM_IDENTITY = ManagedIdentity(
    client_id="11111111-0000-4000-8000-000000000001",
    principal_id="22222222-0000-4000-8000-000000000001",
)
USER_IDENTITY = ManagedIdentity(
    client_id="11111111-0000-4000-8000-000000000002",
    principal_id="22222222-0000-4000-8000-000000000002",
)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# Exec shim: ask the kernel to SIGTERM the child when its parent thread dies, then exec the
# real command. Avoids preexec_fn, which is unsafe once threads exist.
_PDEATHSIG_SHIM = (
    "import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); os.execvp(sys.argv[2], sys.argv[2:])"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class StackError(RuntimeError):
    """A service did not start."""


class LocalStack:
    """Start with ``with LocalStack() as stack:`` (or ``start()``/``stop()``).

    ``stack.env`` points the code under test at the stack; ``stack.environ()`` applies it to
    ``os.environ`` temporarily. Handles: ``ingestion``, ``identity``, ``keyvault``, ``moto_url``,
    ``storage_connection_string``, ``ca_path``.
    """

    def __init__(
        self,
        *,
        schemas_dir: Path | str = DEFAULT_SCHEMAS_DIR,
        moto: bool = True,
        azurite: bool = True,
        startup_timeout: float = 20.0,
    ) -> None:
        self.schemas_dir = Path(schemas_dir)
        self.use_moto, self.use_azurite = moto, azurite
        self.startup_timeout = startup_timeout
        self.tenant_id = TENANT_ID
        self.system_identity, self.user_identity = SYSTEM_IDENTITY, USER_IDENTITY
        self.dcr_immutable_id = DEFAULT_DCR_IMMUTABLE_ID
        self.env: dict[str, str] = {}
        self.moto_url = ""
        self.storage_connection_string = ""
        self._procs: list[tuple[str, subprocess.Popen]] = []
        self._tmp: Path | None = None
        self.ca_path: Path | None = None
        self.identity: IdentityEmulator | None = None
        self.ingestion: LogsIngestionEmulator | None = None
        self.keyvault: KeyVaultEmulator | None = None

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> Self:
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        logger.info("local stack up in %.1fs", time.monotonic() - started)
        return self

    def _start(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="localstack-"))
        waits: list[tuple[str, int, bool]] = []
        if self.use_moto:  # subprocesses first: they take longest to boot
            port = free_port()
            # moto with an atomic SQS ReceiveMessage (devtools/motoserver.py says why)
            self._spawn("moto", [sys.executable, str(Path(__file__).with_name("motoserver.py")),
                                 "-H", HOST, "-p", str(port)])
            self.moto_url = f"http://{HOST}:{port}"
            waits.append(("moto", port, True))
        if self.use_azurite:
            if not AZURITE_BIN.exists():
                raise StackError(f"{AZURITE_BIN} not found: run `npm install` in {REPO_ROOT}")
            ports = {svc: free_port() for svc in ("blob", "queue", "table")}
            # Azurite refuses --location together with --inMemoryPersistence; cwd is the temp dir.
            cmd = [
                str(AZURITE_BIN),
                "--silent",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
            ]
            for svc, port in ports.items():
                cmd += [f"--{svc}Host", HOST, f"--{svc}Port", str(port)]
                waits.append((f"azurite-{svc}", port, False))
            self._spawn("azurite", cmd)
            endpoints = ";".join(
                f"{svc.capitalize()}Endpoint=http://{HOST}:{port}/{AZURITE_ACCOUNT}"
                for svc, port in ports.items()
            )
            self.storage_connection_string = (
                f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                f"AccountKey={AZURITE_KEY};{endpoints};"
            )

        ca = trustme.CA()
        self.ca_path = self._tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOST, "localhost").configure_cert(tls)
        signing_key = secrets.token_bytes(32)
        self.identity = IdentityEmulator(
            signing_key,
            tenant_id=self.tenant_id,
            system_identity=SYSTEM_IDENTITY,
            user_identities=[USER_IDENTITY],
        ).start()
        self.ingestion = LogsIngestionEmulator(
            signing_key, tls, schemas_dir=self.schemas_dir, dcr_immutable_id=self.dcr_immutable_id
        ).start()
        self.keyvault = KeyVaultEmulator(signing_key, tls, tenant_id=self.tenant_id).start()

        for name, port, http_probe in waits:
            self._wait_ready(name, port, http_probe)
        self.env = self._build_env()

    def _spawn(self, name: str, cmd: list[str]) -> None:
        assert self._tmp is not None
        if sys.platform.startswith("linux"):
            cmd = [sys.executable, "-c", _PDEATHSIG_SHIM, str(os.getpid()), *cmd]
        with open(self._tmp / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self._tmp,
            )
        self._procs.append((name, proc))
        logger.debug("started %s (pid %d): %s", name, proc.pid, shlex.join(cmd))

    def _wait_ready(self, name: str, port: int, http_probe: bool) -> None:
        deadline = time.monotonic() + self.startup_timeout
        proc = next(p for n, p in self._procs if name.startswith(n))
        while True:
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}: {self._log_tail(name)}")
            try:
                if http_probe:
                    conn = http.client.HTTPConnection(HOST, port, timeout=1)
                    conn.request("GET", "/moto-api/")
                    conn.getresponse().read()
                    conn.close()
                else:
                    socket.create_connection((HOST, port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise StackError(
                        f"{name} not answering on port {port}: {self._log_tail(name)}"
                    ) from None
                time.sleep(0.05)

    def _log_tail(self, name: str) -> str:
        path = self._tmp / f"{name.split('-')[0]}.log" if self._tmp else None
        return path.read_text(errors="replace")[-2000:] if path and path.exists() else ""

    def _build_env(self) -> dict[str, str]:
        assert self.identity and self.ingestion and self.keyvault
        env = {
            "AZURE_TENANT_ID": self.tenant_id,
            "IDENTITY_ENDPOINT": self.identity.endpoint,
            "IDENTITY_HEADER": self.identity.identity_header,
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
            "LOGS_INGESTION_ENDPOINT": self.ingestion.url,
            "DCR_IMMUTABLE_ID": self.dcr_immutable_id,
            "KEY_VAULT_URL": self.keyvault.vault_url,
        }
        if self.moto_url:
            env |= {
                "AWS_ENDPOINT_URL": self.moto_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        if self.storage_connection_string:
            env["AzureWebJobsStorage"] = self.storage_connection_string
        return env

    def stop(self) -> None:
        """Stop emulators and subprocess groups (TERM, then KILL after 5 s); idempotent."""
        for emulator in (self.keyvault, self.ingestion, self.identity):
            if emulator is not None:
                with contextlib.suppress(Exception):
                    emulator.stop()
        procs, self._procs = self._procs, []
        for _, proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM; killing", name)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers for tests ----------------------------------------------------------------
    @contextlib.contextmanager
    def environ(self) -> Iterator[dict[str, str]]:
        """Apply ``env`` to ``os.environ`` inside the block, then restore the previous values."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            yield self.env
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def reset(self) -> None:
        """Clear emulator state and moto's backends (Azurite keeps its data)."""
        for emulator in (self.ingestion, self.identity, self.keyvault):
            if emulator is not None:
                emulator.reset()
        if self.moto_url:
            conn = http.client.HTTPConnection(self.moto_url.removeprefix("http://"), timeout=10)
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
            conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.stack", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--json", action="store_true", help="print a local.settings.json document instead"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--no-source", action="store_true",
                        help="do not create the demo bucket/queue/secrets and AWS_SOURCES")
    parser.add_argument("--samples", action="store_true",
                        help="also write sample CloudTrail/VPC/GuardDuty objects to the bucket")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with LocalStack() as stack:
        env = dict(stack.env)
        if not args.no_source:  # everything `func start` needs: a source wired to the stack
            from . import samples

            with stack.environ():
                env.update(samples.provision_source(stack))
                if args.samples:
                    samples.put_samples(bad=False)
        if args.json:
            values = {"FUNCTIONS_WORKER_RUNTIME": "python",
                      "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
                      "FUNCTIONS_WORKER_PROCESS_COUNT": "2", **env}
            print(json.dumps({"IsEncrypted": False, "Values": values}, indent=2), flush=True)
        else:
            for key, value in env.items():
                print(f"export {key}={shlex.quote(value)}", flush=True)
        print("# local stack running; Ctrl-C to stop", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
