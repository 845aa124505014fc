"""Credentials: the app's Azure identity, Key Vault secrets, and AWS sessions per source.

AWS access for a source is either
* federation: a managed-identity token for ``AWS_WEB_IDENTITY_AUDIENCE`` exchanged through STS
  ``AssumeRoleWithWebIdentity``; botocore refreshes it itself before expiry (15 min advisory,
  10 min mandatory), fetching a fresh Azure token each time; or
* access keys read from Key Vault (secret names per source), cached for at most
  ``SECRET_MAX_AGE_SECONDS`` (then read again and the clients rebuilt, so a disabled or rotated
  key stops being used within that time), and read again at once when AWS says they are
  invalid.
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore.session
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from botocore.config import Config
from botocore.credentials import (
    AssumeRoleWithWebIdentityCredentialFetcher,
    CredentialProvider,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from .config import Settings, Source, is_secret_name
from .errors import AwsCredentialError, FatalError
from .logsafe import get_logger

log = get_logger(__name__)  # control characters escaped (logsafe)
T = TypeVar("T")

MONITOR_SCOPE = "https://monitor.azure.com/.default"
AUTH_ERROR_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId",
                    "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
                    "AuthFailure", "InvalidToken"}
# How long a Key Vault secret (and the AWS clients built from it) is used before it is read again.
SECRET_MAX_AGE_SECONDS = 900.0
AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4},
                    connect_timeout=10, read_timeout=60, max_pool_connections=16)


def azure_credential(settings: Settings) -> TokenCredential:
    """The app's managed identity in Azure (and against the local identity emulator)."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT"):
        if settings.azure_client_id:
            return ManagedIdentityCredential(client_id=settings.azure_client_id)
        return ManagedIdentityCredential()
    # developer laptop: az login / VS Code / environment credentials
    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)


def scope_for(audience: str) -> str:
    return audience if audience.endswith("/.default") else audience.rstrip("/") + "/.default"


class KeyVaultSecrets:
    """Secret values by name, cached for ``max_age`` seconds; ``get(name, fresh=True)`` reads
    the vault again. ``clock`` is injectable so a test can move time on."""

    def __init__(self, vault_url: str, credential: TokenCredential, *,
                 max_age: float = SECRET_MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        from azure.keyvault.secrets import SecretClient

        self._client = SecretClient(vault_url=vault_url, credential=credential)
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.max_age = max_age
        self.clock = clock

    def get(self, name: str, *, fresh: bool = False) -> str:
        if not is_secret_name(name):  # never sent, never echoed: it may be a pasted value
            raise FatalError("a Key Vault secret name in AWS_SOURCES is not a valid name")
        with self._lock:
            cached = self._cache.get(name)
            if not fresh and cached and self.clock() - cached[1] < self.max_age:
                return cached[0]
        try:
            value = self._client.get_secret(name).value
        except ResourceNotFoundError as err:
            raise FatalError(f"Key Vault secret {name!r} does not exist") from err
        except AzureError as err:
            raise AwsCredentialError(f"cannot read Key Vault secret {name!r}: {err}") from err
        if not value:
            raise FatalError(f"Key Vault secret {name!r} is empty")
        with self._lock:
            self._cache[name] = (value, self.clock())
        return value


class _WebIdentityProvider(CredentialProvider):
    """botocore credential provider: Azure managed-identity token -> AssumeRoleWithWebIdentity."""

    METHOD = "azure-managed-identity-web-identity"
    CANONICAL_NAME = "AzureManagedIdentityWebIdentity"

    def __init__(self, fetcher: AssumeRoleWithWebIdentityCredentialFetcher):
        super().__init__()
        self._fetcher = fetcher

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(method=self.METHOD,
                                              refresh_using=self._fetcher.fetch_credentials)


def session_name(source: Source) -> str:
    """RoleSessionName: 2-64 of [\\w+=,.@-]."""
    return re.sub(r"[^\w+=,.@-]", "-", f"sentinel-s3-{source.name}")[:64]


class AwsSessions:
    """boto3 clients per source, built once, rebuilt after an invalid-credentials answer."""

    def __init__(self, settings: Settings, azure: TokenCredential,
                 secrets: KeyVaultSecrets | None):
        self._settings = settings
        self._azure = azure
        self.secrets = secrets
        self._clients: dict[tuple[str, str], Any] = {}
        self._built: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def client(self, source: Source, service: str) -> Any:
        key = (source.name, service)
        with self._lock:
            if key in self._clients and source.uses_keys and self.secrets is not None and \
                    self.secrets.clock() - self._built[key] >= self.secrets.max_age:
                # keys from Key Vault are re-read on a schedule: a key disabled or rotated in
                # the vault stops being used within max_age, even if AWS still accepts it
                del self._clients[key]
            if key not in self._clients:
                self._clients[key] = self._session(source).client(service, config=AWS_CONFIG)
                self._built[key] = self.secrets.clock() if self.secrets else 0.0
            return self._clients[key]

    def invalidate(self, source: Source) -> None:
        with self._lock:
            for key in [k for k in self._clients if k[0] == source.name]:
                del self._clients[key]

    def _session(self, source: Source, *, fresh_secrets: bool = False) -> boto3.Session:
        if source.role_arn:
            return boto3.Session(botocore_session=self._federated(source),
                                 region_name=source.region)
        if self.secrets is None or not (source.access_key_id_secret
                                         and source.secret_access_key_secret):
            raise FatalError(f"source {source.name}: no roleArn and no Key Vault key secrets")
        return boto3.Session(
            aws_access_key_id=self.secrets.get(source.access_key_id_secret, fresh=fresh_secrets),
            aws_secret_access_key=self.secrets.get(source.secret_access_key_secret,
                                                    fresh=fresh_secrets),
            region_name=source.region)

    def _federated(self, source: Source) -> botocore.session.Session:
        audience = self._settings.aws_web_identity_audience
        if not audience:
            raise FatalError("AWS_WEB_IDENTITY_AUDIENCE is required for roleArn sources")
        scope = scope_for(audience)

        def token() -> str:
            try:
                return self._azure.get_token(scope).token
            except AzureError as err:
                raise AwsCredentialError(f"no managed-identity token for {audience}: {err}") \
                    from err

        sts_session = botocore.session.Session()  # unsigned STS calls need no credentials
        sts_session.set_config_variable("region", source.region)
        fetcher = AssumeRoleWithWebIdentityCredentialFetcher(
            client_creator=sts_session.create_client, web_identity_token_loader=token,
            role_arn=source.role_arn, extra_args={"RoleSessionName": session_name(source)})
        session = botocore.session.Session()
        session.set_config_variable("region", source.region)
        resolver = session.get_component("credential_provider")
        resolver.insert_before("env", _WebIdentityProvider(fetcher))
        return session

    def call(self, source: Source, service: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)``; on an invalid-credentials answer re-read keys once and retry."""
        try:
            return fn(self.client(source, service))
        except ClientError as err:
            if getattr(err, "operation_name", "") == "AssumeRoleWithWebIdentity":
                # raised from inside the S3/SQS call while botocore refreshed the credentials
                msg = err.response.get("Error", {}).get("Message", "")
                raise AwsCredentialError(
                    f"source {source.name}: STS refused AssumeRoleWithWebIdentity for "
                    f"{source.role_arn} ({error_code(err)}: {msg}); check the role's trust "
                    f"policy (audience {self._settings.aws_web_identity_audience}, subject = "
                    "the managed identity's object id) and the IAM OIDC provider for "
                    "sts.windows.net/<tenant>/", code=error_code(err)) from err
            if not is_auth_error(err):
                raise
            log.warning("source %s: AWS refused the credentials (%s); reading them again",
                        source.name, error_code(err))
            self.invalidate(source)
            if source.uses_keys:
                with self._lock:
                    session = self._session(source, fresh_secrets=True)
                    self._clients[(source.name, service)] = session.client(service,
                                                                           config=AWS_CONFIG)
                    self._built[(source.name, service)] = self.secrets.clock() \
                        if self.secrets else 0.0
            try:
                return fn(self.client(source, service))
            except ClientError as again:
                if is_auth_error(again):
                    raise AwsCredentialError(
                        f"source {source.name}: AWS refused the credentials twice "
                        f"({error_code(again)}); check the role trust policy or the keys in "
                        "Key Vault") from again
                raise
        except BotoCoreError as err:
            if "credential" in type(err).__name__.lower() or "token" in str(err).lower():
                raise AwsCredentialError(f"source {source.name}: {err}") from err
            raise


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_auth_error(err: ClientError) -> bool:
    return error_code(err) in AUTH_ERROR_CODES
