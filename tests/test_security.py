"""Security hardening (issue 11): the allow-list fails closed, the raw table is opt-in, one
crafted SQS message cannot stall the poller, secret names are names.

Settings tests are pure; the pipeline tests run the real SDKs against moto, Azurite and the
HTTPS emulators (the ``world`` fixture)."""
from __future__ import annotations

import json

import pytest
from sample_logs import guardduty

from shared.config import Source, is_bucket_name, is_secret_name, load_settings
from shared.errors import ConfigError

SOURCE = {"name": "prod", "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
          "region": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/OIDC_Sentinel",
          "buckets": {"org-logs": ["AWSLogs/"]}}
BASE = {"LOGS_INGESTION_ENDPOINT": "https://dce.example/", "DCR_IMMUTABLE_ID": "dcr-0123",
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AWS_WEB_IDENTITY_AUDIENCE": "api://sentinel-aws",
        "KEY_VAULT_URL": "https://kv.vault.azure.net/"}


def problems(**source_fields) -> list[str]:
    src = {k: v for k, v in {**SOURCE, **source_fields}.items() if v is not None}
    try:
        load_settings(dict(BASE, AWS_SOURCES=json.dumps([src])))
    except ConfigError as err:
        return err.problems
    return []


# ---- the allow-list fails closed ------------------------------------------------------------
@pytest.mark.parametrize("buckets, needle", [
    (None, "buckets is required"),
    ({}, "buckets is required"),
    ({"org-logs": []}, "is empty"),
    (["org-logs"], "must map bucket name"),
    ({"org-logs": ["AWSLogs"]}, "must end with '/'"),
    ({"arn:aws:s3:us-east-1:111122223333:accesspoint/ap": [""]}, "not an S3 bucket name"),
    ({"other-s3alias": [""]}, "not an S3 bucket name"),
    ({"10.0.0.1": [""]}, "not an S3 bucket name"),
    ({"org-logs": "AWSLogs/"}, "must be a list"),
])
def test_a_missing_empty_or_loose_allow_list_is_refused_by_name(buckets, needle):
    # GIVEN a source whose allow-list is missing, empty, open-ended or not bucket names
    # WHEN the settings load THEN the source is refused, by name, with what to write instead
    found = problems(buckets=buckets)
    assert any(needle in p and p.startswith("AWS_SOURCES[0] (prod)") for p in found), found


def test_a_prefix_without_slash_would_match_a_sibling_so_it_is_refused():
    # "logs" is a string prefix of "logs-evil/": written as-is it would widen the allow-list
    [problem] = problems(buckets={"org-logs": ["logs"]})
    assert "'logs-other/'" in problem and "use 'logs/'" in problem
    src = load_settings(dict(BASE, AWS_SOURCES=json.dumps([dict(
        SOURCE, buckets={"org-logs": ["logs/"]})]))).sources[0]
    assert src.allows("org-logs", "logs/a.gz") and not src.allows("org-logs", "logs-evil/a.gz")


def test_the_whole_bucket_must_be_said_explicitly_and_nothing_else_is_allowed():
    src = load_settings(dict(BASE, AWS_SOURCES=json.dumps([dict(
        SOURCE, buckets={"org-logs": [""], "vpc-logs": ["AWSLogs/", "flow/"]})]))).sources[0]
    assert src.allows("org-logs", "anything/at/all")
    assert src.allows("vpc-logs", "flow/x") and not src.allows("vpc-logs", "other/x")
    # an access-point ARN or another bucket never matches a configured name
    assert not src.allows("arn:aws:s3:us-east-1:111122223333:accesspoint/org-logs", "x")
    assert not src.allows("org-logs2", "x")


def test_a_source_built_without_buckets_allows_nothing():
    bare = Source(name="s", queue_url="https://q", region="us-east-1")
    assert not bare.allows("any-bucket", "any/key")
    empty = Source(name="s", queue_url="https://q", region="us-east-1",
                   buckets={"b-logs": ()})
    assert not empty.allows("b-logs", "k")


def test_bucket_names_follow_the_s3_rules():
    assert all(map(is_bucket_name, ["abc", "org-logs", "a.b-c", "x" * 63]))
    assert not any(map(is_bucket_name, ["ab", "x" * 64, "Org-Logs", "a..b", "-ab", "ab-",
                                        "192.168.0.1", "xn--abc", "sthree-x", "x--ol-s3",
                                        "arn:aws:s3:::org-logs", "org_logs", ""]))


def test_raw_prefixes_are_validated_and_default_to_none():
    src = load_settings(dict(BASE, AWS_SOURCES=json.dumps([SOURCE]))).sources[0]
    assert src.raw_prefixes == () and not src.allows_raw("AWSLogs/x")
    src = load_settings(dict(BASE, AWS_SOURCES=json.dumps([dict(
        SOURCE, rawPrefixes=["app/"])]))).sources[0]
    assert src.allows_raw("app/x.log") and not src.allows_raw("AWSLogs/x")
    assert any("rawPrefixes" in p and "must end with '/'" in p
               for p in problems(rawPrefixes=["app"]))
    assert any("rawPrefixes must be a list" in p for p in problems(rawPrefixes="app/"))


# ---- Key Vault secret names -----------------------------------------------------------------
@pytest.mark.parametrize("pasted", ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                    "AKIAIOSFODNN7EXAMPLE", "my secret", "x" * 128])
def test_a_pasted_secret_value_is_refused_and_never_echoed(pasted):
    found = problems(roleArn=None, accessKeyIdSecret="aws-key-id", secretAccessKeySecret=pasted)
    assert any("secretAccessKeySecret must be the *name*" in p for p in found), found
    assert not any(pasted in p for p in found)
    found = problems(roleArn=None, accessKeyIdSecret=pasted, secretAccessKeySecret="aws-secret")
    assert any("accessKeyIdSecret must be the *name*" in p for p in found), found
    assert not any(pasted in p for p in found)


def test_secret_names_are_key_vault_names():
    assert is_secret_name("aws-access-key-id") and is_secret_name("K1")
    assert not is_secret_name("a_b") and not is_secret_name("")


# ---- the allow-list again where a work item is processed ------------------------------------
def test_a_work_item_outside_the_allow_list_is_dead_lettered_and_never_read(world):
    from shared import pipeline
    from shared.notifications import ObjectRef
    from shared.poison import read_envelope

    # GIVEN a source allowed to read AWSLogs/ of its bucket, and work items that someone with
    # access to the Azure queue wrote for another bucket and for another prefix
    src = world.add_source("wi", prefixes=["AWSLogs/"])
    world.put(src, "secrets/config.json", b'{"password": "x"}\n')
    world.configure()
    conn = pipeline.connector()
    outside = [ObjectRef(source="wi", bucket=src["_bucket"], key="secrets/config.json"),
               ObjectRef(source="wi", bucket="someone-elses-bucket", key="AWSLogs/x.json")]
    for ref in outside:
        # WHEN the queue function gets it
        stats = pipeline.process_object(conn, ref.to_json())
        # THEN it is dead-lettered at the process stage (before any S3 read) with the reason
        assert stats.outcome == "dead_lettered" and "allow-list" in stats.error
    items = [read_envelope(json.dumps(i)) for i in world.host().poison_items()]
    assert [(e.stage, e.kind) for e in items] == [("process", "work_item_refused")] * 2
    assert all("outside source wi's bucket/prefix allow-list; not read" in e.reason
               for e in items)
    assert all(e.ref is not None for e in items)  # replayable once the allow-list is widened
    assert world.accepted("Custom-AWSS3Raw") == []
    assert not any(r.stream == "Custom-AWSS3Raw" for r in world.stack.ingestion.requests)


# ---- the raw table is opt-in ----------------------------------------------------------------
def test_an_unrecognised_object_is_dead_lettered_unless_its_prefix_opts_in_to_raw(world):
    from shared.poison import read_envelope

    # GIVEN one source without rawPrefixes and one that opts app/ in
    closed = world.add_source("noraw")
    opted = world.add_source("withraw", rawPrefixes=["app/"])
    line = b'{"time": "2024-05-01T10:00:00Z", "msg": "hello"}\n'
    world.put(closed, "app/service.jsonl", line)
    world.put(opted, "app/service.jsonl", line)
    world.put(opted, "other/service.jsonl", line)
    world.configure()
    host = world.host()
    host.run_timer()
    host.drain()
    # THEN only the opted-in prefix reaches AWSS3Raw_CL
    raw = world.accepted("Custom-AWSS3Raw")
    assert [(r["SourceName"], r["S3Key"]) for r in raw] == [("withraw", "app/service.jsonl")]
    # AND the other two are dead-lettered saying how to opt in
    items = sorted((read_envelope(json.dumps(i)) for i in host.poison_items()),
                   key=lambda e: (e.source, e.ref.key))
    assert [(e.source, e.ref.key, e.stage) for e in items] == [
        ("noraw", "app/service.jsonl", "parse"), ("withraw", "other/service.jsonl", "parse")]
    assert all("unrecognised format; add a rawPrefixes entry" in e.reason for e in items)


# ---- one crafted message cannot stall the poller --------------------------------------------
def test_a_message_whose_work_item_cannot_be_queued_is_dead_lettered_and_the_run_goes_on(world):
    from shared.poison import read_envelope

    # GIVEN a crafted notification whose object reference is larger than a Storage queue
    # message may be, sent before two genuine notifications
    src = world.add_source("crafted")
    huge = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": src["_bucket"]},
                                "object": {"key": "AWSLogs/" + "k" * 60_000, "size": 1}}}]}
    world.send_raw(src, json.dumps(huge))
    for i in range(2):
        key, data, _ = guardduty(2)
        world.put(src, key.replace(".jsonl.gz", f"-{i}.jsonl.gz"), data)
    world.configure()
    host = world.host()
    # WHEN the timer runs once
    host.run_timer()
    host.drain()
    # THEN the crafted message is dead-lettered with its reason and deleted from SQS, and the
    # genuine objects of the same run are delivered
    assert len(world.accepted("Custom-AWSGuardDuty")) == 4
    [item] = host.poison_items()
    env = read_envelope(json.dumps(item))
    assert env.stage == "notification" and env.body_sha256
    assert not world.sqs.receive_message(QueueUrl=src["queueUrl"]).get("Messages")
    beat = [r for r in world.accepted("Custom-AWSS3ConnectorHealth")
            if r["Kind"] == "heartbeat"][0]
    assert beat["Outcome"] == "ok" and beat["MessagesPoisoned"] == 1
    assert beat["ObjectsEnqueued"] == 2


# ---- SSE-KMS: encryption stays on, the connector reads it -----------------------------------
def test_an_sse_kms_encrypted_object_is_read_and_delivered(world):
    import boto3

    # GIVEN a bucket whose objects are encrypted with a customer managed KMS key
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(Description="log bucket key")["KeyMetadata"]["KeyId"]
    src = world.add_source("ssekms")
    key, data, n = guardduty(3)
    world.s3.put_object(Bucket=src["_bucket"], Key=key, Body=data,
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    head = world.s3.head_object(Bucket=src["_bucket"], Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
    world.configure()
    host = world.host()
    # WHEN the connector runs THEN every record arrives, nothing is dead-lettered
    host.run_timer()
    result = host.drain()
    assert len(world.accepted("Custom-AWSGuardDuty")) == n
    assert result.failed == 0 and host.poison_items() == []


def test_no_document_tells_operators_to_read_tokens_from_debug_logs():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", *sorted((root / "infra").rglob("*.md"))]:
        for sentence in re.split(r"(?<=[.!?])\s", doc.read_text()):
            assert not (re.search(r"\btokens?\b", sentence, re.I)
                        and re.search(r"\bDEBUG\b", sentence)), (doc.name, sentence)


@pytest.mark.parametrize("audience", ["sentinel", "api:// x", "http://contoso/app", "api:///x"])
def test_the_web_identity_audience_must_be_an_app_id_uri(audience):
    with pytest.raises(ConfigError, match="AWS_WEB_IDENTITY_AUDIENCE: must be an App ID URI"):
        load_settings(dict(BASE, AWS_SOURCES=json.dumps([SOURCE]),
                           AWS_WEB_IDENTITY_AUDIENCE=audience))
    assert load_settings(dict(BASE, AWS_SOURCES=json.dumps([SOURCE]),
                              AWS_WEB_IDENTITY_AUDIENCE="api://sentinel-s3-test"))


# ---- Key Vault keys are re-read on a schedule -----------------------------------------------
def test_key_vault_keys_and_their_clients_are_refreshed_every_max_age(world):
    from shared import pipeline

    # GIVEN a source with access keys in Key Vault, and a clock the test moves
    world.add_source("sched")
    world.configure()
    conn = pipeline.connector()
    source = conn.settings.source("sched")
    now = [1000.0]
    conn.aws.secrets.clock = lambda: now[0]
    assert conn.aws.secrets.max_age == 900

    def signer_key(client):
        return client._request_signer._credentials.access_key  # read-only look

    first = conn.aws.client(source, "s3")
    assert signer_key(first) == "AKIAEXAMPLEKEY"
    # WHEN the key is rotated (or disabled and replaced) in the vault while AWS still accepts
    # the old one
    world.stack.keyvault.set_secret("sched-key-id", "AKIAROTATEDKEY2")
    before = world.stack.keyvault.request_count
    now[0] += 899
    # THEN the cached client is used until max_age ...
    assert conn.aws.client(source, "s3") is first
    assert world.stack.keyvault.request_count == before
    # ... and after it the vault is read again and a new client signs with the new key
    now[0] += 2
    second = conn.aws.client(source, "s3")
    assert second is not first and signer_key(second) == "AKIAROTATEDKEY2"
    assert world.stack.keyvault.request_count > before


def test_an_invalid_secret_name_is_refused_before_any_vault_call_and_not_echoed(world):
    from shared import pipeline
    from shared.errors import FatalError

    world.add_source("names")
    world.configure()
    conn = pipeline.connector()
    before = world.stack.keyvault.request_count
    pasted = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    with pytest.raises(FatalError) as info:
        conn.aws.secrets.get(pasted)
    assert pasted not in str(info.value) and world.stack.keyvault.request_count == before


# ---- /api/health says little; the check CLI says everything ---------------------------------
def test_the_health_endpoint_shows_no_account_arn_or_error_text_the_cli_does(world, capsys):
    import azure.functions as func

    import function_app
    from shared.__main__ import main

    world.add_source("fedh", mode="role")
    broken = world.add_source("brokenh")
    broken["queueUrl"] = broken["queueUrl"].replace("notify-", "missing-")
    world.configure()
    resp = function_app.health(func.HttpRequest(method="GET", url="/api/health", body=b"",
                                                headers={}))
    text = resp.get_body().decode()
    body = json.loads(text)
    assert resp.status_code == 503
    assert "123456789012" not in text and "arn:aws" not in text
    comp = body["components"]["sqs:brokenh"]
    assert set(comp) == {"status", "ms", "reason"} and comp["status"] == "fail"
    assert "(AWS.SimpleQueueService.NonExistentQueue)" in comp["reason"]
    assert "python -m shared check" in comp["reason"] and "does not exist" not in comp["reason"]
    assert body["components"]["aws:fedh"]["mode"] == "federation"
    # the operator's CLI has the identity and the raw text
    assert main(["check", "--json"]) == 1
    cli = {c["name"]: c for c in json.loads(capsys.readouterr().out)["components"]}
    assert cli["aws:fedh"]["detail"]["account"] == "123456789012"
    assert cli["aws:fedh"]["detail"]["arn"].startswith("arn:aws:sts::123456789012:")
    assert cli["sqs:brokenh"]["error"]


# ---- control characters in keys cannot forge log lines --------------------------------------
def test_printable_escapes_every_control_and_direction_character():
    from shared.logsafe import printable

    assert printable("a\nb\r\x1b[31m\u202etxt.exe\x00\x7f\x85") == \
        "a\\nb\\r\\x1b[31m\\u202etxt.exe\\x00\\x7f\\x85"
    assert printable("AWSLogs/ünïcode key+x.json.gz") == "AWSLogs/ünïcode key+x.json.gz"


def test_a_key_with_newlines_and_escapes_is_logged_escaped(world, caplog):
    import logging
    import re
    from urllib.parse import quote_plus

    # GIVEN a notification (anyone who can write to the queue) whose key carries a newline, a
    # forged log line, an ANSI escape and a direction override
    src = world.add_source("ctl")
    evil = "app/x\n2026-01-01 CRITICAL forged line\x1b[2J\u202e.log"
    world.send_raw(src, json.dumps({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": src["_bucket"]}, "object": {"key": quote_plus(evil)}}}]}))
    world.configure()
    host = world.host()
    # WHEN it is polled and processed (the object is not there: dead-lettered)
    with caplog.at_level(logging.INFO):
        host.run_timer()
        host.drain()
    # THEN it is named in the log, escaped, and no line carries a raw control character
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(("shared",
                                                                             "function_app"))]
    assert any("app/x\\n2026-01-01 CRITICAL forged line\\x1b[2J\\u202e.log" in m
               for m in messages), messages
    assert not [m for m in messages if re.search("[\x00-\x1f\x7f\u202e]", m)]


def test_a_message_that_breaks_forwarding_is_dead_lettered_alone_and_the_run_goes_on(world,
                                                                                      monkeypatch):
    from azure.core.exceptions import HttpResponseError

    from shared import pipeline
    from shared.poison import read_envelope

    # GIVEN three notifications: one that crashes forwarding (a bug or input nobody foresaw),
    # one the work queue refuses (413), and a genuine one
    src = world.add_source("settle")
    for marker in ("crash", "refuse"):
        world.send_raw(src, json.dumps({"Records": [{
            "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": src["_bucket"]}, "object": {"key": f"AWSLogs/{marker}"}}}]}))
    key, data, n = guardduty(2)
    world.put(src, key, data)
    world.configure()
    real_parse, real_send = pipeline.parse_body, pipeline.Queue.send

    def parse(body, **kw):
        if "AWSLogs/crash" in body:
            raise RuntimeError("parser bug")
        return real_parse(body, **kw)

    def send(self, text, **kw):
        if self.name == world.work_queue and "AWSLogs/refuse" in text:
            err = HttpResponseError(message="The request body is too large")
            err.status_code, err.error_code = 413, "RequestBodyTooLarge"
            raise err
        return real_send(self, text, **kw)

    monkeypatch.setattr(pipeline, "parse_body", parse)
    monkeypatch.setattr(pipeline.Queue, "send", send)
    host = world.host()
    # WHEN the timer runs
    host.run_timer()
    host.drain()
    # THEN each is settled alone: two dead-lettered with their reasons, one delivered, SQS empty
    reasons = sorted(read_envelope(json.dumps(i)).reason for i in host.poison_items())
    assert len(reasons) == 2
    assert "unexpected RuntimeError while forwarding: parser bug" in reasons[1]
    assert "work queue refused it (413 RequestBodyTooLarge)" in reasons[0]
    assert len(world.accepted("Custom-AWSGuardDuty")) == n
    assert not world.sqs.receive_message(QueueUrl=src["queueUrl"]).get("Messages")
    beat = [r for r in world.accepted("Custom-AWSS3ConnectorHealth")
            if r["Kind"] == "heartbeat"][0]
    assert beat["Outcome"] == "ok" and beat["MessagesPoisoned"] == 2
