"""Managed-identity token endpoint speaking the App Service protocol (``IDENTITY_ENDPOINT``).

azure-identity 1.27's ``ManagedIdentityCredential`` picks ``AppServiceCredential`` when both
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` are set (and ``IDENTITY_SERVER_THUMBPRINT`` is not);
that class delegates to MSAL (``msal.managed_identity._obtain_token_on_app_service``), which sends::

    GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>
        [&client_id=... | &object_id=... | &mi_res_id=...]
    X-IDENTITY-HEADER: {IDENTITY_HEADER}
    Metadata: true

and expects ``{"access_token", "expires_on", "resource", "token_type"}``; on failure MSAL reports
the ``statusCode`` and ``message`` fields of the error body. MSAL caches tokens per credential
instance and refetches when less than 5 minutes remain: ``token_lifetime`` < 300 defeats caching.
Like App Service, the endpoint is plain http on loopback.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from . import tokens
from ._http import Emulator, Handler

logger = logging.getLogger(__name__)

TOKEN_PATH = "/msi/token"


@dataclass(frozen=True)
class ManagedIdentity:
    """An identity: its application (client) id and its principal (object) id."""

    client_id: str
    principal_id: str


@dataclass(frozen=True)
class TokenRequest:
    """One call to the endpoint, as recorded for tests."""

    resource: str | None
    client_id: str | None
    status: int


class _IdentityHandler(Handler["IdentityEmulator"]):
    def do_GET(self) -> None:
        em = self.emulator
        q = self.query
        status, body = em._issue(self.path_only, self.headers.get("X-IDENTITY-HEADER"), q)
        with em._lock:
            em.requests.append(TokenRequest(q.get("resource"), q.get("client_id"), status))
        self.send_json(status, body)


class IdentityEmulator(Emulator):
    """App Service style token endpoint.

    ``system_identity`` answers requests without an id; ``user_identities`` answer requests that
    name their ``client_id`` (or ``object_id``). An id that matches none of them gets 400.
    """

    handler_class = _IdentityHandler

    def __init__(
        self,
        secret: bytes | str,
        *,
        tenant_id: str,
        system_identity: ManagedIdentity | None = None,
        user_identities: Iterable[ManagedIdentity] = (),
        identity_header: str | None = None,
        token_lifetime: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.secret = secret
        self.tenant_id = tenant_id
        self.system_identity = system_identity or ManagedIdentity(
            str(uuid.uuid4()), str(uuid.uuid4())
        )
        self.user_identities = list(user_identities)
        self.identity_header = identity_header or uuid.uuid4().hex
        self.token_lifetime = token_lifetime
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        super().__init__(host=host, port=port)

    @property
    def endpoint(self) -> str:
        """Value for ``IDENTITY_ENDPOINT``."""
        return self.url + TOKEN_PATH

    @property
    def request_count(self) -> int:
        """Number of token requests received (any outcome)."""
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def _find(self, q: dict[str, str]) -> ManagedIdentity | None:
        if "client_id" in q:
            return next(
                (
                    i
                    for i in self.user_identities + [self.system_identity]
                    if i.client_id == q["client_id"]
                ),
                None,
            )
        if "object_id" in q:
            return next(
                (
                    i
                    for i in self.user_identities + [self.system_identity]
                    if i.principal_id == q["object_id"]
                ),
                None,
            )
        if "mi_res_id" in q:
            return None  # resource ids are not modelled
        return self.system_identity

    def _issue(self, path: str, header: str | None, q: dict[str, str]) -> tuple[int, dict]:
        def error(status: int, message: str) -> tuple[int, dict]:
            logger.info("identity request refused (%s): %s", status, message)
            return status, {
                "statusCode": status,
                "message": message,
                "correlationId": str(uuid.uuid4()),
            }

        if path.rstrip("/") != TOKEN_PATH:
            return error(404, f"Unknown path {path}")
        if header != self.identity_header:
            return error(401, "Missing or invalid X-IDENTITY-HEADER")
        if q.get("api-version") != "2019-08-01":
            return error(400, "api-version 2019-08-01 is required")
        resource = q.get("resource", "")
        if not resource:
            return error(400, "Required query parameter 'resource' is missing")
        identity = self._find(q)
        if identity is None:
            return error(400, "Unable to load the proper Managed Identity.")
        resource = resource.removesuffix("/.default")
        now = int(time.time())
        token = tokens.mint(
            self.secret,
            audience=resource,
            tenant_id=self.tenant_id,
            principal_id=identity.principal_id,
            client_id=identity.client_id,
            lifetime=self.token_lifetime,
            now=now,
        )
        logger.debug("issued token for %s (client %s)", resource, identity.client_id)
        return 200, {
            "access_token": token,
            "expires_on": str(now + self.token_lifetime),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }
