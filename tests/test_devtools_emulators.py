"""The local stack against the real SDKs, over sockets (moto, Azurite, the devtools emulators)."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
import requests
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.monitor.ingestion import LogsIngestionClient
from azure.storage.queue import QueueClient

from devtools import tokens
from devtools.logs_ingestion import load_schemas
from devtools.stack import SYSTEM_IDENTITY, USER_IDENTITY, LocalStack

logger = logging.getLogger(__name__)

MONITOR_SCOPE = "https://monitor.azure.com/.default"
STREAM = "Custom-AWSCloudWatch"
RECORD = {"TimeGenerated": "2024-01-01T00:00:00Z", "Message": "x"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as s, s.environ():
        yield s


@pytest.fixture(autouse=True)
def _fresh(stack: LocalStack) -> None:
    stack.ingestion.reset()
    stack.identity.reset()


@pytest.fixture(scope="module")
def credential(stack: LocalStack) -> ManagedIdentityCredential:
    return ManagedIdentityCredential()


def _client(
    stack: LocalStack, credential: ManagedIdentityCredential, **kwargs
) -> LogsIngestionClient:
    return LogsIngestionClient(stack.env["LOGS_INGESTION_ENDPOINT"], credential, **kwargs)


# ---- managed identity ---------------------------------------------------------------------
def test_managed_identity_token_is_cached_and_scoped(stack: LocalStack) -> None:
    credential = ManagedIdentityCredential()
    token = credential.get_token(MONITOR_SCOPE)
    claims = tokens.verify(token.token, stack.identity.secret, "https://monitor.azure.com")
    assert claims["oid"] == SYSTEM_IDENTITY.principal_id
    assert claims["iss"] == f"https://sts.windows.net/{stack.tenant_id}/"
    assert token.expires_on > time.time() + 3000
    credential.get_token(MONITOR_SCOPE)
    assert stack.identity.request_count == 1  # second call served from MSAL's cache

    user = ManagedIdentityCredential(client_id=USER_IDENTITY.client_id).get_token(
        "api://aws-federation/.default"
    )
    assert tokens.decode_unverified(user.token)["oid"] == USER_IDENTITY.principal_id
    assert tokens.decode_unverified(user.token)["aud"] == "api://aws-federation"


def test_managed_identity_rejects_unknown_client_and_bad_header(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CredentialUnavailableError, match="400"):
        ManagedIdentityCredential(client_id=str(uuid.uuid4())).get_token(MONITOR_SCOPE)
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    with pytest.raises(CredentialUnavailableError, match="401"):
        ManagedIdentityCredential().get_token(MONITOR_SCOPE)
    assert [r.status for r in stack.identity.requests] == [400, 401]


# ---- Logs Ingestion -----------------------------------------------------------------------
def test_upload_lands_in_accepted(stack: LocalStack, credential: ManagedIdentityCredential) -> None:
    _client(stack, credential).upload(
        stack.dcr_immutable_id, STREAM, [RECORD, {**RECORD, "Message": None}]
    )
    assert stack.ingestion.accepted(STREAM) == [RECORD, {**RECORD, "Message": None}]
    assert stack.ingestion.accepted("Custom-AWSCloudTrail") == []
    (req,) = stack.ingestion.requests
    assert (req.status, req.record_count, req.principal_id) == (
        204,
        2,
        SYSTEM_IDENTITY.principal_id,
    )
    assert req.uncompressed_size == len(json.dumps([RECORD, {**RECORD, "Message": None}]))


def test_tls_is_verified_through_requests_ca_bundle(
    stack: LocalStack, credential: ManagedIdentityCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        _client(stack, credential, retry_total=0).upload(stack.dcr_immutable_id, STREAM, [RECORD])
    assert stack.ingestion.accepted() == []


@pytest.mark.parametrize(
    "record, fragment",
    [
        ({**RECORD, "Bogus": "y"}, "column 'Bogus' is not declared"),
        ({**RECORD, "TimeGenerated": "yesterday"}, "column 'TimeGenerated' of type 'datetime'"),
        ({**RECORD, "Message": 42}, "column 'Message' of type 'string'"),
    ],
)
def test_schema_violations_are_400(
    stack: LocalStack, credential: ManagedIdentityCredential, record: dict, fragment: str
) -> None:
    with pytest.raises(HttpResponseError) as info:
        _client(stack, credential).upload(stack.dcr_immutable_id, STREAM, [RECORD, record])
    assert info.value.status_code == 400
    assert info.value.error.code == "InvalidPayload"
    assert "Record 1:" in info.value.message and fragment in info.value.message
    assert stack.ingestion.accepted() == []


def test_unknown_stream_dcr_and_principal(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    client = _client(stack, credential)
    with pytest.raises(HttpResponseError) as info:
        client.upload(stack.dcr_immutable_id, "Custom-Nope", [RECORD])
    assert (info.value.status_code, info.value.error.code) == (400, "InvalidStream")
    with pytest.raises(HttpResponseError) as info:
        client.upload("dcr-ffffffffffffffffffffffffffffffff", STREAM, [RECORD])
    assert info.value.status_code == 404
    stack.ingestion.allowed_principals = {USER_IDENTITY.principal_id}
    with pytest.raises(HttpResponseError) as info:
        client.upload(stack.dcr_immutable_id, STREAM, [RECORD])
    assert info.value.status_code == 403
    assert (
        "The authentication token provided does not have access to ingest data for the data "
        f"collection rule with immutable Id '{stack.dcr_immutable_id}'."
    ) in info.value.message
    _client(stack, ManagedIdentityCredential(client_id=USER_IDENTITY.client_id)).upload(
        stack.dcr_immutable_id, STREAM, [RECORD]
    )
    assert len(stack.ingestion.accepted()) == 1


def test_token_is_required_and_checked(stack: LocalStack) -> None:
    url = (
        f"{stack.ingestion.url}/dataCollectionRules/{stack.dcr_immutable_id}"
        f"/streams/{STREAM}?api-version=2023-01-01"
    )
    resp = requests.post(url, json=[RECORD], timeout=10)
    assert (
        resp.status_code == 401 and resp.headers["x-ms-error-code"] == resp.json()["error"]["code"]
    )
    wrong_aud = tokens.mint(
        stack.identity.secret,
        audience="https://vault.azure.net",
        tenant_id=stack.tenant_id,
        principal_id="p",
        client_id="c",
    )
    resp = requests.post(
        url, json=[RECORD], headers={"Authorization": f"Bearer {wrong_aud}"}, timeout=10
    )
    assert resp.status_code == 401 and "audience" in resp.json()["error"]["message"]
    forged = tokens.mint(
        b"not-the-key",
        audience="https://monitor.azure.com",
        tenant_id=stack.tenant_id,
        principal_id="p",
        client_id="c",
    )
    resp = requests.post(
        url, json=[RECORD], headers={"Authorization": f"Bearer {forged}"}, timeout=10
    )
    assert resp.status_code == 401 and "signature" in resp.json()["error"]["message"]
    assert stack.ingestion.accepted() == []


def test_injected_429_reaches_a_client_without_retries(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    stack.ingestion.inject(status=429, retry_after=1, count=2, stream=STREAM)
    client = _client(stack, credential, retry_total=0)
    for _ in range(2):
        with pytest.raises(HttpResponseError) as info:
            client.upload(stack.dcr_immutable_id, STREAM, [RECORD])
        assert info.value.status_code == 429
        assert info.value.response.headers["Retry-After"] == "1"
    assert stack.ingestion.accepted() == []
    client.upload(stack.dcr_immutable_id, STREAM, [RECORD])  # faults used up
    assert [r.status for r in stack.ingestion.requests] == [429, 429, 204]
    assert len(stack.ingestion.accepted()) == 1


def test_faults_only_hit_their_stream_sdk_retries_503_not_resets(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    stack.ingestion.inject(status=503, stream=STREAM)
    stack.ingestion.inject(reset=True, stream=STREAM)
    trail = {"TimeGenerated": "2024-01-01T00:00:00Z"}
    client = _client(stack, credential)
    client.upload(
        stack.dcr_immutable_id, "Custom-AWSCloudTrail", [trail]
    )  # not matched by the faults
    # azure-core retries a POST answered 503, but never a POST whose connection dropped.
    with pytest.raises(ServiceResponseError):
        client.upload(stack.dcr_immutable_id, STREAM, [RECORD])
    assert [(r.stream, r.status) for r in stack.ingestion.requests] == [
        ("Custom-AWSCloudTrail", 204),
        (STREAM, 503),
        (STREAM, 0),
    ]
    assert stack.ingestion.accepted(STREAM) == [] and stack.ingestion.pending_faults() == []
    client.upload(stack.dcr_immutable_id, STREAM, [RECORD])
    assert stack.ingestion.accepted(STREAM) == [RECORD]


def test_latency_fault_delays_but_accepts(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    stack.ingestion.inject(latency=0.3)
    started = time.monotonic()
    _client(stack, credential).upload(stack.dcr_immutable_id, STREAM, [RECORD])
    assert time.monotonic() - started >= 0.3
    assert stack.ingestion.accepted() == [RECORD]


def test_oversize_gzip_body_is_413(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    big = {**RECORD, "Message": "x" * 1_100_000}  # compresses to a few KB, inflates past 1 MiB
    with pytest.raises(HttpResponseError) as info:
        _client(stack, credential).upload(stack.dcr_immutable_id, STREAM, [big])
    size = len(json.dumps([big]))
    assert info.value.status_code == 413
    assert info.value.error.code == "ContentLengthLimitExceeded"
    assert info.value.response.headers["x-ms-error-code"] == "ContentLengthLimitExceeded"
    assert info.value.message.endswith(
        "Maximum allowed content length: 1048576 bytes (1 MB). "
        f"Provided content length: {size} bytes."
    )
    (req,) = stack.ingestion.requests
    assert req.compressed_size < 10_000 and req.uncompressed_size == size


def test_gzip_stream_and_non_array_body(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    client = _client(stack, credential)
    client.upload(
        stack.dcr_immutable_id, STREAM, io.BytesIO(gzip.compress(json.dumps([RECORD]).encode()))
    )
    assert stack.ingestion.accepted() == [RECORD]
    with pytest.raises(HttpResponseError) as info:
        client.upload(stack.dcr_immutable_id, STREAM, io.BytesIO(json.dumps(RECORD).encode()))
    assert (info.value.status_code, info.value.error.code) == (400, "InvalidPayload")


def test_measuring_mode_inflates_but_does_not_parse(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    """parse_records False (benchmarks): sizes measured, 413 and unknown streams still
    answered, the JSON not read (a non-array passes, nothing counted); the default parses."""
    client = _client(stack, credential)
    body = gzip.compress(json.dumps([RECORD, RECORD]).encode())
    stack.ingestion.parse_records = False
    try:
        client.upload(stack.dcr_immutable_id, STREAM, io.BytesIO(body))
        client.upload(stack.dcr_immutable_id, STREAM, io.BytesIO(gzip.compress(b"not json")))
        big = gzip.compress(json.dumps([{**RECORD, "Message": "x" * 1_100_000}]).encode())
        with pytest.raises(HttpResponseError) as info:
            client.upload(stack.dcr_immutable_id, STREAM, io.BytesIO(big))
        assert info.value.status_code == 413
        with pytest.raises(HttpResponseError) as info:
            client.upload(stack.dcr_immutable_id, "Custom-Nope", io.BytesIO(body))
        assert (info.value.status_code, info.value.error.code) == (400, "InvalidStream")
        with pytest.raises(HttpResponseError) as info:
            client.upload(stack.dcr_immutable_id, STREAM, io.BytesIO(body[:-9]))
        assert (info.value.status_code, info.value.error.code) == (400, "InvalidContentEncoding")
    finally:
        stack.ingestion.parse_records = True
    ok, junk, large = stack.ingestion.requests[:3]
    assert (ok.status, ok.record_count, ok.compressed_size) == (204, None, len(body))
    assert ok.uncompressed_size == len(json.dumps([RECORD, RECORD]))
    assert junk.status == 204 and large.uncompressed_size > 1_100_000
    assert stack.ingestion.accepted() == [] and stack.ingestion.records_accepted == 0
    client.upload(stack.dcr_immutable_id, STREAM, io.BytesIO(body))  # default: parsed again
    assert stack.ingestion.accepted() == [RECORD, RECORD]
    assert stack.ingestion.requests[-1].record_count == 2


def test_every_schema_file_is_a_stream(stack: LocalStack, tmp_path) -> None:
    from devtools.logs_ingestion import DEFAULT_SCHEMAS_DIR

    files = list(DEFAULT_SCHEMAS_DIR.glob("*.json"))
    assert files and len(stack.ingestion.streams) == len(files)
    (tmp_path / "x.json").write_text(
        json.dumps(
            {
                "table": "X_CL",
                "stream": "Custom-X",
                "outputStream": "Custom-X_CL",
                "columns": [{"name": "N", "type": "long"}],
            }
        )
    )
    assert load_schemas(tmp_path) == {"Custom-X": {"N": "long"}}


# ---- Key Vault ----------------------------------------------------------------------------
def test_key_vault_challenge_flow_and_rotation(
    stack: LocalStack, credential: ManagedIdentityCredential
) -> None:
    client = SecretClient(stack.env["KEY_VAULT_URL"], credential)
    first = stack.keyvault.set_secret("aws-secret-access-key", "v1")
    assert client.get_secret("aws-secret-access-key").value == "v1"
    statuses = [(r.status, r.authenticated) for r in stack.keyvault.requests]
    assert statuses[:2] == [
        (401, False),
        (200, True),
    ]  # the SDK discovered the challenge, then sent a token
    stack.keyvault.set_secret("aws-secret-access-key", "v2")
    assert client.get_secret("aws-secret-access-key").value == "v2"
    assert client.get_secret("aws-secret-access-key", version=first).value == "v1"
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_secret("missing")
    assert info.value.error.code == "SecretNotFound"


# ---- moto and Azurite ---------------------------------------------------------------------
def test_boto3_s3_and_sqs_hit_moto(stack: LocalStack) -> None:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    assert s3.meta.endpoint_url == stack.moto_url  # AWS_ENDPOINT_URL honoured, no endpoint passed
    s3.create_bucket(Bucket="logs")
    s3.put_object(Bucket="logs", Key="AWSLogs/a b.json", Body=b"{}")
    assert s3.get_object(Bucket="logs", Key="AWSLogs/a b.json")["Body"].read() == b"{}"
    url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in messages] == ["hello"]


def test_storage_queue_on_azurite(stack: LocalStack) -> None:
    queue = QueueClient.from_connection_string(stack.env["AzureWebJobsStorage"], "s3-objects")
    queue.create_queue()
    queue.send_message('{"bucket": "logs"}')
    received = list(queue.receive_messages(max_messages=5))
    assert [m.content for m in received] == ['{"bucket": "logs"}']
    queue.delete_message(received[0])
    assert queue.get_queue_properties().approximate_message_count == 0


def test_table_on_azurite(stack: LocalStack) -> None:
    table = TableClient.from_connection_string(
        stack.env["AzureWebJobsStorage"], table_name="checkpoints"
    )
    table.create_table()
    table.upsert_entity({"PartitionKey": "logs", "RowKey": "key1", "Offset": 10})
    table.upsert_entity({"PartitionKey": "logs", "RowKey": "key1", "Offset": 20})
    assert table.get_entity("logs", "key1")["Offset"] == 20


# ---- lifecycle ----------------------------------------------------------------------------
def test_stop_leaves_no_processes() -> None:
    with LocalStack(moto=False) as other:
        pids = [p.pid for _, p in other._procs]
        assert pids and "AWS_ENDPOINT_URL" not in other.env
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
