"""No secret in what the connector writes, even at DEBUG.

GIVEN the app's logging at DEBUG (root logger and the connector's own), a federated source
(managed-identity token -> STS AssumeRoleWithWebIdentity -> temporary AWS keys) and a source
whose access keys come from Key Vault, WHEN objects are delivered, one object is
dead-lettered and the health endpoint runs, THEN no secret value the stack used (Key Vault
values, STS SecretAccessKey and SessionToken, the managed-identity tokens for Azure Monitor
and for AWS, the storage account key) appears in the captured log records, the poison
messages or the health rows. AND the search is real: with botocore let back to DEBUG, the
STS session token shows up in the capture.
"""
from __future__ import annotations

import json
import logging
import secrets

from sample_logs import cloudtrail, guardduty


def _frozen(client):
    # the credentials this client signs with (read, not changed)
    return client._request_signer._credentials.get_frozen_credentials()


def _leaks(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value and value in text]


def test_debug_logging_poison_and_health_rows_reveal_no_secret(world, caplog):
    from shared import pipeline
    from shared.credentials import MONITOR_SCOPE, scope_for

    fed = world.add_source("fed", mode="role")
    keys = world.add_source("keys")
    key_id, secret = "AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    world.stack.keyvault.set_secret("keys-key-id", key_id)
    world.stack.keyvault.set_secret("keys-secret", secret)
    k1, d1, n1 = cloudtrail(30)
    k2, d2, n2 = guardduty(5)
    world.put(fed, k1, d1)
    world.put(keys, k2, d2)
    world.put(keys, k1.replace(".json.gz", "bad.json.gz"), b"{\"Records\": [{not json", gz=True)
    world.configure()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("shared").setLevel(logging.DEBUG)
    host = world.host()
    host.run_timer()
    host.drain(max_seconds=60)
    status, _ = pipeline.check_health()
    assert status == 200
    assert len(world.accepted("Custom-AWSCloudTrail")) == n1
    assert len(world.accepted("Custom-AWSGuardDuty")) == n2

    conn = pipeline.connector()
    sts = _frozen(conn.aws.client(conn.settings.source("fed"), "s3"))
    env = world.stack.env
    used = {
        "key vault access key id": key_id,
        "key vault secret access key": secret,
        "sts SecretAccessKey": sts.secret_key,
        "sts SessionToken": sts.token,
        "managed-identity token (Azure Monitor)": conn.azure.get_token(MONITOR_SCOPE).token,
        "managed-identity token (AWS audience)": conn.azure.get_token(
            scope_for(conn.settings.aws_web_identity_audience)).token,
        "storage account key": env["AzureWebJobsStorage"].split("AccountKey=")[1].split(";")[0],
    }
    assert all(used.values()) and sts.access_key != key_id
    records = caplog.records
    assert any(r.levelno == logging.DEBUG for r in records), "DEBUG was captured"
    logged = "\n".join(caplog.text.splitlines()) + "\n".join(
        str(r.__dict__) for r in records)
    assert _leaks(logged, used) == []
    poison = json.dumps(host.poison_items_all())
    assert "bad_format" in poison and _leaks(poison, used) == []
    health = json.dumps(world.accepted("Custom-AWSS3ConnectorHealth"))
    assert '"Kind": "object"' in health and _leaks(health, used) == []

    # the search finds a leak when there is one: botocore at DEBUG logs the STS answer
    caplog.clear()
    logging.getLogger("botocore").setLevel(logging.DEBUG)
    try:
        source = conn.settings.source("fed")
        conn.aws.invalidate(source)
        conn.aws.call(source, "sts", lambda c: c.get_caller_identity())
        fresh = _frozen(conn.aws.client(source, "sts"))
        assert fresh.token in caplog.text
    finally:
        from shared.logsetup import pin_third_party_loggers

        pin_third_party_loggers()
