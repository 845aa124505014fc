"""Settings: one typed object; every problem reported at once, by name."""
import json

import pytest

from shared.config import SETTINGS_DOC, load_settings
from shared.errors import ConfigError

SOURCE = {"name": "prod", "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
          "region": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/OIDC_Sentinel",
          "buckets": {"logs": ["AWSLogs/"]},
          "formatRules": [{"pattern": "^custom/", "format": "raw"}]}
BASE = {"AWS_SOURCES": json.dumps([SOURCE]),
        "LOGS_INGESTION_ENDPOINT": "https://dce.example/",
        "DCR_IMMUTABLE_ID": "dcr-0123", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "AWS_WEB_IDENTITY_AUDIENCE": "api://sentinel-aws"}


def test_valid_settings_parse_into_typed_values():
    s = load_settings(BASE)
    assert s.logs_ingestion_endpoint == "https://dce.example"
    assert s.work_queue == "s3-objects" and s.poison_queue == "s3-objects-poison"
    assert s.max_batch_bytes == 1_000_000 and s.max_dequeue_count == 5
    src = s.source("prod")
    assert src.role_arn.endswith("OIDC_Sentinel") and not src.uses_keys
    assert src.allows("logs", "AWSLogs/1/x") and not src.allows("logs", "other/x")
    assert not src.allows("elsewhere", "AWSLogs/1/x")
    assert src.format_for("custom/a.log") == "raw" and src.format_for("AWSLogs/x") is None


def test_every_problem_is_reported_at_once():
    env = {"AWS_SOURCES": json.dumps([{"name": "a", "queueUrl": "nope", "region": "mars"}]),
           "LOGS_INGESTION_ENDPOINT": "http://plain", "MAX_BATCH_BYTES": "2000000",
           "SQS_WAIT_SECONDS": "soon", "POLL_SCHEDULE": "*/5 * * * *"}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = "\n".join(info.value.problems)
    for needle in ["queueUrl", "region", "roleArn", "LOGS_INGESTION_ENDPOINT", "https",
                   "DCR_IMMUTABLE_ID", "AzureWebJobsStorage", "MAX_BATCH_BYTES",
                   "SQS_WAIT_SECONDS", "POLL_SCHEDULE"]:
        assert needle in text, needle
    assert len(info.value.problems) >= 9


def test_key_vault_mode_requires_the_vault_url_and_audience_only_for_roles():
    src = dict(SOURCE, roleArn=None, accessKeyIdSecret="id", secretAccessKeySecret="secret")
    env = dict(BASE, AWS_SOURCES=json.dumps([src]))
    env.pop("AWS_WEB_IDENTITY_AUDIENCE")
    with pytest.raises(ConfigError, match="KEY_VAULT_URL"):
        load_settings(env)
    s = load_settings(dict(env, KEY_VAULT_URL="https://kv.vault.azure.net/"))
    assert s.sources[0].uses_keys


def test_unresolved_key_vault_reference_is_named():
    env = dict(BASE, DCR_IMMUTABLE_ID="@Microsoft.KeyVault(SecretUri=https://kv/secrets/x)")
    with pytest.raises(ConfigError, match="DCR_IMMUTABLE_ID: the Key Vault reference"):
        load_settings(env)


def test_several_sources_and_duplicate_names():
    two = [SOURCE, dict(SOURCE, name="dev", region="eu-west-1")]
    assert [s.name for s in load_settings(dict(BASE, AWS_SOURCES=json.dumps(two))).sources] == \
        ["prod", "dev"]
    with pytest.raises(ConfigError, match="duplicate"):
        load_settings(dict(BASE, AWS_SOURCES=json.dumps([SOURCE, SOURCE])))


def test_example_settings_file_lists_every_setting_the_code_reads():
    from pathlib import Path
    values = json.loads((Path(__file__).parents[1] / "local.settings.example.json")
                        .read_text())["Values"]
    documented = {d.name for d in SETTINGS_DOC}
    missing = documented - set(values) - {"AzureWebJobsStorage__queueServiceUri",
                                          "AzureWebJobsStorage__tableServiceUri",
                                          "AZURE_CLIENT_ID"}
    assert not missing, missing
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert [d.name for d in SETTINGS_DOC if f"`{d.name}`" not in readme] == []


def test_dcr_routes_are_validated_and_default_to_the_main_dcr():
    routes = {"AWSVPCFlow": {"endpoint": "https://dcr2.example", "dcrImmutableId": "dcr-2"}}
    s = load_settings(dict(BASE, DCR_ROUTES=json.dumps(routes)))
    assert s.route("AWSVPCFlow") == ("https://dcr2.example", "dcr-2")
    assert s.route("AWSCloudTrail") == ("https://dce.example", "dcr-0123")
    bad = {"NoSuchTable": {}, "AWSWAF": {"endpoint": "http://x"}}
    with pytest.raises(ConfigError) as info:
        load_settings(dict(BASE, DCR_ROUTES=json.dumps(bad)))
    assert "unknown table 'NoSuchTable'" in info.value.message
    assert "DCR_ROUTES['AWSWAF']" in info.value.message
