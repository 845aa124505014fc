"""GET /api/health through function_app, and the credential paths (federation, Key Vault)."""
from __future__ import annotations

import json

import azure.functions as func
from botocore.exceptions import ClientError

import function_app
from shared import pipeline


def call_health():
    req = func.HttpRequest(method="GET", url="/api/health", body=b"", headers={})
    resp = function_app.health(req)
    return resp.status_code, json.loads(resp.get_body())


def test_health_is_200_with_every_component_when_all_is_well(world):
    world.add_source("keys")
    world.add_source("fed", mode="role")
    world.configure()
    status, body = call_health()
    assert status == 200 and body["status"] == "healthy"
    comps = body["components"]
    endpoint = world.stack.env["LOGS_INGESTION_ENDPOINT"].removeprefix("https://").rstrip("/")
    assert set(comps) == {"settings", "azure_token", "aws:keys", "sqs:keys", "aws:fed",
                          "sqs:fed", "key_vault", "work_queue", "poison_queue",
                          f"circuit:{endpoint}"}
    assert comps[f"circuit:{endpoint}"]["state"] == "closed"
    assert all(c["status"] == "ok" for c in comps.values())
    assert comps["aws:fed"]["mode"] == "federation" and comps["aws:keys"]["mode"] == \
        "keyvault-keys"
    assert comps["sqs:keys"]["backlog"] == 0 and comps["poison_queue"]["depth"] == 0
    assert comps["key_vault"]["secrets"] == 2


def test_health_is_503_naming_the_broken_component(world):
    src = world.add_source("broken")
    src["queueUrl"] = src["queueUrl"].replace("notify-", "missing-")
    world.configure()
    status, body = call_health()
    assert status == 503 and body["status"] == "unhealthy"
    assert body["components"]["sqs:broken"]["status"] == "fail"
    # the endpoint gives the error code, not the text (that is for `python -m shared check`)
    assert "NonExistentQueue" in body["components"]["sqs:broken"]["reason"]
    assert "error" not in body["components"]["sqs:broken"]
    assert body["components"]["aws:broken"]["status"] == "ok"
    _, detail = pipeline.check_health(detail=True)
    assert "NonExistentQueue" in detail["components"]["sqs:broken"]["error"] or \
        "does not exist" in detail["components"]["sqs:broken"]["error"]


def test_health_reports_invalid_settings_as_503(world, monkeypatch):
    monkeypatch.setenv("AWS_SOURCES", "not json")
    pipeline.reset_connector()
    status, body = call_health()
    assert status == 503 and "AWS_SOURCES" in body["components"]["settings"]["reason"]
    _, detail = pipeline.check_health(detail=True)
    assert "AWS_SOURCES: not valid JSON" in detail["components"]["settings"]["error"]


def test_missing_key_vault_secret_is_a_failed_aws_component(world):
    src = world.add_source("nokeys")
    src["accessKeyIdSecret"] = "does-not-exist"
    world.configure()
    status, body = call_health()
    assert status == 503
    assert body["components"]["aws:nokeys"]["reason"].startswith("FatalError")
    _, detail = pipeline.check_health(detail=True)
    assert "does-not-exist" in detail["components"]["aws:nokeys"]["error"]
    assert "does-not-exist" in detail["components"]["key_vault"]["error"]


def test_keys_are_read_again_from_key_vault_once_when_aws_refuses_them(world):
    world.add_source("rotate")
    world.configure()
    conn = pipeline.connector()
    source = conn.settings.source("rotate")
    seen = []

    def call(client):
        creds = client._request_signer._credentials  # read-only look at what signs requests
        seen.append(creds.access_key)
        if len(seen) == 1:
            raise ClientError({"Error": {"Code": "InvalidAccessKeyId", "Message": "rotated"}},
                              "ListBuckets")
        return "ok"

    conn.aws.client(source, "s3")  # keys cached from the vault
    world.stack.keyvault.set_secret("rotate-key-id", "AKIAROTATEDKEY")
    before = world.stack.keyvault.request_count
    assert conn.aws.call(source, "s3", call) == "ok"
    assert seen == ["AKIAEXAMPLEKEY", "AKIAROTATEDKEY"]
    assert world.stack.keyvault.request_count > before


def test_federated_credentials_come_from_sts_with_a_managed_identity_token(world):
    world.add_source("fed2", mode="role")
    world.configure()
    conn = pipeline.connector()
    source = conn.settings.source("fed2")
    ident = conn.aws.call(source, "sts", lambda c: c.get_caller_identity())
    assert ":assumed-role/OIDC_fed2" in ident["Arn"]
    assert "sentinel-s3-fed2" in ident["Arn"]  # our RoleSessionName


def test_an_sts_refusal_during_refresh_names_the_trust_policy_not_s3(world):
    import pytest

    from shared.errors import AwsCredentialError

    world.add_source("stsdeny", mode="role")
    world.configure()
    conn = pipeline.connector()
    source = conn.settings.source("stsdeny")

    def refused(client):  # what botocore raises from an S3 call whose credential refresh failed
        raise ClientError({"Error": {"Code": "InvalidIdentityToken",
                                     "Message": "Incorrect token audience"}},
                          "AssumeRoleWithWebIdentity")

    with pytest.raises(AwsCredentialError) as info:
        conn.aws.call(source, "s3", refused)
    assert "trust policy" in info.value.message and "Incorrect token audience" in \
        info.value.message and info.value.kind == "aws_credentials"
