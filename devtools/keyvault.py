"""HTTPS minimal Key Vault secrets endpoint with the bearer challenge flow of the real service.

``GET /secrets/{name}[/{version}]?api-version=...`` returns ``{"value", "id", "attributes"}``.
A request without a valid token gets 401 and ``WWW-Authenticate: Bearer
authorization="https://login.microsoftonline.com/<tenant>", resource="<resource>"``.

azure-keyvault-secrets (4.12) verifies the challenge resource: the vault's host must END WITH
``"." + <resource host[:port]>`` (``myvault.vault.azure.net`` vs ``vault.azure.net``); an exact
match is rejected. So the resource is the vault host minus its first label, as in Azure: for
``https://127.0.0.1:PORT`` it is ``https://0.0.1:PORT``. Tokens must carry that audience.
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import tokens
from ._http import Emulator, Handler

logger = logging.getLogger(__name__)

_PATH = re.compile(r"^/secrets/(?P<name>[0-9A-Za-z-]+)(?:/(?P<version>[0-9A-Za-z]*))?/?$")


@dataclass
class SecretVersion:
    value: str
    version: str
    created: int
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VaultRequest:
    method: str
    path: str
    status: int
    authenticated: bool


class _VaultHandler(Handler["KeyVaultEmulator"]):
    def do_GET(self) -> None:
        self.emulator._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET


class KeyVaultEmulator(Emulator):
    """Secrets only, read-only over HTTP; tests write with ``set_secret``."""

    handler_class = _VaultHandler

    def __init__(
        self,
        secret: bytes | str,
        ssl_context: ssl.SSLContext,
        *,
        tenant_id: str,
        resource: str | None = None,
        allowed_principals: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.secret = secret
        self.tenant_id = tenant_id
        self.allowed_principals: set[str] | None = (
            set(allowed_principals) if allowed_principals is not None else None
        )
        self.requests: list[VaultRequest] = []
        self._secrets: dict[str, list[SecretVersion]] = {}
        self._lock = threading.Lock()
        super().__init__(host=host, port=port, ssl_context=ssl_context)
        parent = self.host.split(".", 1)[1] if "." in self.host else self.host
        self.resource = resource or f"https://{parent}:{self.port}"

    @property
    def vault_url(self) -> str:
        """Value for ``KEY_VAULT_URL`` (with trailing slash, as the portal shows it)."""
        return self.url + "/"

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def set_secret(
        self,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Add a new current version of ``name``; return its version id."""
        version = SecretVersion(
            value, uuid.uuid4().hex, int(time.time()), content_type, dict(tags or {})
        )
        with self._lock:
            self._secrets.setdefault(name.lower(), []).append(version)
        return version.version

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()
            self.requests.clear()
            self.allowed_principals = None

    def _handle(self, h: Handler) -> None:
        h.read_body()
        status, body, headers, authenticated = self._answer(h)
        with self._lock:
            self.requests.append(VaultRequest(h.command, h.path_only, status, authenticated))
        h.send_json(status, body, headers)

    def _answer(self, h: Handler) -> tuple[int, dict[str, Any], dict[str, str], bool]:
        def error(
            status: int,
            code: str,
            message: str,
            headers: dict[str, str] | None = None,
            authenticated: bool = False,
        ) -> tuple[int, dict[str, Any], dict[str, str], bool]:
            return (
                status,
                {"error": {"code": code, "message": message}},
                headers or {},
                authenticated,
            )

        authority = f"https://login.microsoftonline.com/{self.tenant_id}"
        challenge = {
            "WWW-Authenticate": f'Bearer authorization="{authority}", resource="{self.resource}"'
        }
        auth = h.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                challenge,
            )
        try:
            claims = tokens.verify(auth[len("Bearer ") :], self.secret, self.resource)
        except tokens.TokenError as exc:
            return error(401, "Unauthorized", f"AKV10022: Invalid token: {exc}.", challenge)
        if "api-version" not in h.query:
            return error(
                400,
                "BadParameter",
                "The 'api-version' query parameter is missing.",
                authenticated=True,
            )
        if self.allowed_principals is not None and claims.get("oid") not in self.allowed_principals:
            return error(
                403,
                "Forbidden",
                f"Caller is not authorized to perform action on resource. "
                f"Caller: oid={claims.get('oid')}",
                authenticated=True,
            )
        match = _PATH.match(h.path_only)
        if h.command != "GET" or not match:
            return error(
                400,
                "BadParameter",
                f"{h.command} {h.path_only} is not supported by the emulator.",
                authenticated=True,
            )
        name, wanted = match["name"], match["version"]
        with self._lock:
            versions = list(self._secrets.get(name.lower(), []))
        found = (
            next((v for v in versions if v.version == wanted), None)
            if wanted
            else (versions or [None])[-1]
        )
        if found is None:
            what = f"A secret with (name/id) {name}" + (f"/{wanted}" if wanted else "")
            return error(
                404,
                "SecretNotFound",
                f"{what} was not found in this key vault. If you recently deleted this secret "
                "you may be able to recover it using the correct recovery command. For help "
                "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                authenticated=True,
            )
        body: dict[str, Any] = {
            "value": found.value,
            "id": f"{self.url}/secrets/{name}/{found.version}",
            "attributes": {
                "enabled": True,
                "created": found.created,
                "updated": found.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": found.tags,
        }
        if found.content_type:
            body["contentType"] = found.content_type
        return 200, body, {}, True
