"""Tiny HS256 JWTs (stdlib only) standing in for Entra ID access tokens.

The managed-identity emulator mints them; the Logs Ingestion and Key Vault emulators verify them.
Claims mirror a v1 Entra token: aud, iss, sub, oid, appid, tid, iat, nbf, exp.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)


class TokenError(ValueError):
    """The token is malformed, forged, expired or meant for another audience."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _sign(signing_input: bytes, secret: bytes | str) -> str:
    return _b64encode(hmac.new(_key(secret), signing_input, hashlib.sha256).digest())


def _same_audience(a: str, b: str) -> bool:
    # Entra accepts "https://monitor.azure.com" and "https://monitor.azure.com/" alike.
    return a.rstrip("/") == b.rstrip("/")


def mint(
    secret: bytes | str,
    *,
    audience: str,
    tenant_id: str,
    principal_id: str,
    client_id: str,
    lifetime: int = 3600,
    now: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Sign a token for ``principal_id`` (object id) / ``client_id``, valid ``lifetime`` s."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant_id}/",
        "tid": tenant_id,
        "sub": principal_id,
        "oid": principal_id,
        "appid": client_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        **(extra or {}),
    }
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_sign(signing_input, secret)}"


def decode_unverified(token: str) -> dict[str, Any]:
    """Return the claims without checking anything (for tests and debugging)."""
    try:
        return json.loads(_b64decode(token.split(".")[1]))
    except (IndexError, ValueError) as exc:
        raise TokenError(f"malformed token: {exc}") from exc


def verify(
    token: str,
    secret: bytes | str,
    audience: str,
    *,
    now: float | None = None,
    leeway: int = 30,
) -> dict[str, Any]:
    """Check signature, algorithm, nbf/exp (with ``leeway`` s) and audience; return the claims."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token: expected three dot-separated parts")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
    except ValueError as exc:
        raise TokenError(f"malformed token: {exc}") from exc
    if header.get("alg") != "HS256":
        raise TokenError(f"unsupported alg {header.get('alg')!r}")
    expected = _sign(f"{parts[0]}.{parts[1]}".encode("ascii"), secret)
    if not hmac.compare_digest(expected, parts[2]):
        raise TokenError("bad signature")
    current = time.time() if now is None else now
    if not isinstance(claims.get("exp"), (int, float)) or current > claims["exp"] + leeway:
        raise TokenError("token expired")
    if isinstance(claims.get("nbf"), (int, float)) and current + leeway < claims["nbf"]:
        raise TokenError("token not yet valid")
    if not isinstance(claims.get("aud"), str) or not _same_audience(claims["aud"], audience):
        raise TokenError(f"audience {claims.get('aud')!r} is not {audience!r}")
    return claims
