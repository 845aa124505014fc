"""``s3sentinel check``: every component the app needs, one line each, with what to fix.

The component checks are the app's own (``pipeline.check_health``, behind GET /api/health);
this adds one probe per DCR stream (an empty upload: accepted by a stream the DCR declares,
refused with 403 without the role, 404 for a wrong DCR, 400 ``InvalidStream`` for a missing
stream) and turns each failure into a hint that says what to change.
"""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .credentials import MONITOR_SCOPE
from .health import HEALTH_TABLE
from .schemas import all_schemas, stream_of

API_VERSION = "2023-01-01"


def hint(name: str, error: str, conn: Any = None) -> str:
    """What to fix, for a failed component ``name`` with error text ``error``."""
    text = error or ""
    low = text.lower()
    audience = getattr(getattr(conn, "settings", None), "aws_web_identity_audience", None)
    if name == "settings":
        return "set the listed app settings (local.settings.json Values, or the app settings)"
    if name == "azure_token":
        return ("the managed identity gave no token: set AZURE_CLIENT_ID to the user-assigned "
                "identity's client id and assign that identity to the app")
    if name.startswith("aws:"):
        if "assumerolewithwebidentity" in low or "trust policy" in low:
            aud = audience or "<AWS_WEB_IDENTITY_AUDIENCE>"
            return ("STS refused the token: the IAM role's trust policy must allow "
                    f"sts:AssumeRoleWithWebIdentity with condition aud = {aud}"
                    " and sub = the managed identity's object (principal) id, through the IAM "
                    "OIDC provider sts.windows.net/<tenant>/")
        if "key vault" in low or "secret" in low:
            return "the access keys in Key Vault are missing or invalid: store a valid key pair"
        return "AWS refused the credentials: check the roleArn / access keys of this source"
    if name.startswith("sqs:"):
        if "nonexistentqueue" in low or "does not exist" in low:
            return "queueUrl names no queue: use the connector stack's output for this source"
        if "accessdenied" in low or "not authorized" in low:
            return ("the SQS queue policy (or the role's policy) must allow sqs:ReceiveMessage, "
                    "sqs:DeleteMessage and sqs:GetQueueAttributes for the role")
        return "SQS did not answer: check queueUrl and region"
    if name == "key_vault":
        if "forbidden" in low or "403" in low:
            return ("grant the app's identity 'Key Vault Secrets User' on the vault (Key Vault "
                    "RBAC)")
        if "notfound" in low or "not found" in low:
            return "create the secrets the sources name (accessKeyIdSecret/secretAccessKeySecret)"
        return "Key Vault did not answer: check KEY_VAULT_URL"
    if name in ("work_queue", "poison_queue"):
        if "authorization" in low or "403" in low:
            return "grant the app's identity 'Storage Queue Data Contributor' on the account"
        return "the storage queue service did not answer: check AzureWebJobsStorage"
    if name.startswith("dcr:"):
        if "403" in text:
            return ("grant 'Monitoring Metrics Publisher' on the DCR to the app's identity "
                    "(role assignment; propagation can take 30 min)")
        if "InvalidStream" in text:
            table = name.split(":", 1)[1]
            return (f"the DCR has no stream {stream_of(table)} (or no table {table}): deploy "
                    "infra/bicep, or route this table to its DCR with DCR_ROUTES")
        if "404" in text:
            return "no such DCR here: check DCR_IMMUTABLE_ID / LOGS_INGESTION_ENDPOINT / DCR_ROUTES"
        if "401" in text:
            return "the token was refused: the identity's token is not for monitor.azure.com"
        return "the Logs Ingestion endpoint did not answer: check LOGS_INGESTION_ENDPOINT"
    return "read the error"


def _probe(conn: Any, token: str, table: str) -> dict[str, Any]:
    endpoint, rule = conn.settings.route(table)
    url = (f"{endpoint.rstrip('/')}/dataCollectionRules/{rule}/streams/{stream_of(table)}"
           f"?api-version={API_VERSION}")
    request = urllib.request.Request(url, data=b"[]", method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    start = time.monotonic()
    out: dict[str, Any] = {"name": f"dcr:{table}", "stream": stream_of(table), "dcr": rule}
    try:
        with urllib.request.urlopen(request, timeout=15, context=_tls()) as resp:
            out.update(ok=True, status=resp.status)
    except urllib.error.HTTPError as err:
        body = err.read(2000).decode("utf-8", "replace")
        code = err.headers.get("x-ms-error-code") or ""
        try:
            message = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = body[:300]
        out.update(ok=False, status=err.code, error=f"{err.code} {code}: {message}")
    except OSError as err:
        out.update(ok=False, error=f"{type(err).__name__}: {err}")
    out["ms"] = round((time.monotonic() - start) * 1000, 1)
    return out


def _tls() -> Any:
    import os
    import ssl

    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=bundle) if bundle else None


def run_checks(conn: Any | None = None, *, streams: bool = True) -> dict[str, Any]:
    """Every component: {"ok", "components": [{name, ok, ms, detail, error, hint}]}."""
    from .errors import ConnectorError
    from .pipeline import check_health, connector

    if conn is None:
        try:
            conn = connector()
        except ConnectorError as err:
            return {"ok": False, "components": [{
                "name": "settings", "ok": False, "ms": 0.0, "detail": {}, "error": err.message,
                "hint": hint("settings", err.message)}]}
    _, body = check_health(conn, detail=True)
    rows = []
    for name, c in body["components"].items():
        detail = {k: v for k, v in c.items() if k not in ("status", "ms", "error")}
        rows.append({"name": name, "ok": c["status"] == "ok", "ms": c.get("ms", 0.0),
                     "detail": detail, "error": c.get("error")})
    token_ok = next((r["ok"] for r in rows if r["name"] == "azure_token"), False)
    if streams and token_ok:
        token = conn.azure.get_token(MONITOR_SCOPE).token
        tables = [HEALTH_TABLE] + sorted(t for t in all_schemas() if t != HEALTH_TABLE)
        with ThreadPoolExecutor(max_workers=6) as pool:
            for probe in pool.map(lambda t: _probe(conn, token, t), tables):
                rows.append({"name": probe["name"], "ok": probe["ok"], "ms": probe["ms"],
                             "detail": {"stream": probe["stream"],
                                        **({} if probe["dcr"] == conn.settings.dcr_immutable_id
                                           else {"dcr": probe["dcr"]})},
                             "error": probe.get("error")})
    for row in rows:
        row["hint"] = None if row["ok"] else hint(row["name"], row["error"] or "", conn)
    return {"ok": all(r["ok"] for r in rows), "components": rows}


_SECRETISH = re.compile(r"(?i)(sig|key|token|secret)=[^&;\s]+")


def scrub(text: str) -> str:
    """No shared-key or SAS fragment in what the check prints."""
    return _SECRETISH.sub(lambda m: m.group(1) + "=***", text)
