"""Per-source filters (shared/filters.py): syntax, semantics, start-up errors by name, the
pipeline hook (filtered records counted, never sent, never confused with lost), inspect."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from sample_logs import cloudtrail, vpcflow

from shared.cli_inspect import inspect_file, main
from shared.config import load_settings
from shared.errors import ConfigError

KMS = {"name": "kms-reads", "table": "AWSCloudTrail",
       "drop": {"all": [{"column": "EventName", "in": ["Decrypt", "GenerateDataKey"]},
                        {"column": "ReadOnly", "eq": True}]}}
INTERNAL = {"name": "internal-accepts", "table": "AWSVPCFlow",
            "drop": {"all": [{"column": "Action", "eq": "ACCEPT"},
                             {"column": "SrcAddr", "cidr": ["10.0.0.0/8"]}]}}


def source(filters, **extra) -> dict:
    return {"name": "s", "queueUrl": "https://sqs.us-east-1.amazonaws.com/1/q",
            "region": "us-east-1", "accessKeyIdSecret": "a", "secretAccessKeySecret": "b",
            "buckets": {"logs": [""]}, "filters": filters, **extra}


def settings(*sources):
    return load_settings({"AWS_SOURCES": json.dumps(list(sources)),
                          "LOGS_INGESTION_ENDPOINT": "https://x", "DCR_IMMUTABLE_ID": "dcr-1",
                          "KEY_VAULT_URL": "https://v", "AzureWebJobsStorage": "x"})


def rules(*filters):
    return settings(source(list(filters))).sources[0].filters


def test_drop_rule_filters_matching_rows_of_its_table_only() -> None:
    f = rules(KMS)
    assert f.rule_for("AWSCloudTrail", {"EventName": "Decrypt", "ReadOnly": True}) == "kms-reads"
    assert f.rule_for("AWSCloudTrail", {"EventName": "Decrypt", "ReadOnly": False}) is None
    assert f.rule_for("AWSCloudTrail", {"EventName": "Decrypt"}) is None  # absent = not true
    assert f.rule_for("AWSCloudTrail", {"EventName": "Encrypt", "ReadOnly": True}) is None
    assert f.rule_for("AWSVPCFlow", {"EventName": "Decrypt", "ReadOnly": True}) is None


def test_keep_cidr_any_not_prefix_regex_numbers_and_first_rule_wins() -> None:
    f = rules(
        {"name": "prod-only", "table": ["AWSCloudTrail"],
         "keep": {"column": "RecipientAccountId", "in": ["111122223333"]}},
        {"name": "v6-or-big", "table": "AWSVPCFlow",
         "drop": {"any": [{"column": "SrcAddr", "cidr": ["2001:db8::/32"]},
                          {"column": "Bytes", "gt": 1_000_000}]}},
        {"name": "no-probes", "table": "AWSVPCFlow",
         "drop": {"all": [{"column": "DstPort", "in": [22, 3389]},
                          {"not": {"column": "Action", "eq": "ACCEPT"}}]}},
        {"name": "health-checks", "table": "AWSALBAccessLogs",
         "drop": {"any": [{"column": "UserAgent", "prefix": "ELB-HealthChecker/"},
                          {"column": "RequestRaw", "regex": "/healthz? HTTP"}]}},
    )
    assert f.rule_for("AWSCloudTrail", {"RecipientAccountId": "999999999999"}) == "prod-only"
    assert f.rule_for("AWSCloudTrail", {}) == "prod-only"  # keep: no account, not kept
    assert f.rule_for("AWSCloudTrail", {"RecipientAccountId": "111122223333"}) is None
    assert f.rule_for("AWSVPCFlow", {"SrcAddr": "2001:db8::1", "Bytes": 1}) == "v6-or-big"
    assert f.rule_for("AWSVPCFlow", {"SrcAddr": "10.0.0.1", "Bytes": 2_000_000}) == "v6-or-big"
    assert f.rule_for("AWSVPCFlow", {"SrcAddr": "not an ip", "Bytes": 10}) is None
    assert f.rule_for("AWSVPCFlow", {"DstPort": 22, "Action": "REJECT"}) == "no-probes"
    assert f.rule_for("AWSVPCFlow", {"DstPort": 22, "Action": "ACCEPT"}) is None
    assert f.rule_for("AWSALBAccessLogs", {"UserAgent": "ELB-HealthChecker/2.0"}) == \
        "health-checks"
    health = {"RequestRaw": "GET https://a:443/api/healthz HTTP/1.1"}
    assert f.rule_for("AWSALBAccessLogs", health) == "health-checks"
    assert f.rule_for("AWSALBAccessLogs", {"RequestRaw": "GET https://a:443/x HTTP/1.1"}) is None


@pytest.mark.parametrize("rule, problem", [
    ({"name": "x", "table": "AWSCloudTrial", "drop": {"column": "EventName", "eq": "A"}},
     "unknown table 'AWSCloudTrial'"),
    ({"name": "x", "table": "AWSCloudTrail", "drop": {"column": "EventNam", "eq": "A"}},
     "unknown column 'EventNam'"),
    ({"name": "x", "table": "AWSCloudTrail", "drop": {"column": "EventName", "like": "A"}},
     "needs exactly one op"),
    ({"name": "x", "table": "AWSVPCFlow", "drop": {"column": "SrcAddr", "cidr": ["10.0.0/33"]}},
     "SrcAddr cidr:"),
    ({"name": "x", "table": "AWSCloudTrail", "drop": {"column": "EventName", "regex": "("}},
     "EventName regex:"),
    ({"name": "x", "table": "AWSCloudTrail", "drop": {"column": "EventName", "eq": "A"},
      "keep": {"column": "EventName", "eq": "B"}}, "exactly one of drop or keep"),
    ({"table": "AWSCloudTrail", "drop": {"column": "EventName", "eq": "A"}}, "needs a name"),
    ({"name": "x", "table": "AWSVPCFlow", "drop": {"all": []}}, "non-empty list"),
])
def test_every_bad_rule_is_reported_at_start_up_by_source_and_rule(rule, problem) -> None:
    with pytest.raises(ConfigError) as err:
        settings(source([rule]))
    assert any(p.startswith("AWS_SOURCES[0] (s): filters[0") and problem in p
               for p in err.value.problems), err.value.problems


def test_duplicate_rule_names_and_several_problems_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        settings(source([KMS, KMS, {"name": "y", "table": "Nope", "drop": {"not": 1}}]))
    text = "\n".join(err.value.problems)
    assert "duplicate rule name" in text and "unknown table 'Nope'" in text


def test_inspect_with_source_shows_what_would_be_dropped(tmp_path, monkeypatch) -> None:
    key, data, n = vpcflow(700)
    path = tmp_path / key.rsplit("/", 1)[1]
    path.write_bytes(data)
    monkeypatch.setenv("AWS_SOURCES", json.dumps([source([INTERNAL])]))
    s = settings(source([INTERNAL])).sources[0]
    result = inspect_file(str(path), key=key, source=s)
    assert result["records"] == n == 700
    assert result["filtered"] == 600 and result["filtered_by_rule"] == {"internal-accepts": 600}
    assert 0 < result["bytes_filtered"] and result["bytes_sent"] > 0
    assert main([str(path), "--key", key, "--source", "s"]) == 0
    assert main([str(path), "--source", "nope"]) == 2


# ---- end to end ------------------------------------------------------------------------------

def test_e2e_filtered_records_are_counted_per_object_and_per_rule_never_sent(world):
    # GIVEN a source filtering internal accepted flows, and a flow log + a CloudTrail object
    src = world.add_source("filt", filters=[INTERNAL, KMS])
    key, data, n = vpcflow(700)
    world.put(src, key, data)
    ct_key, ct_data, ct_n = cloudtrail(30)
    world.put(src, ct_key, ct_data)
    # WHEN the functions run, and the timer runs again (its heartbeat carries the counts)
    world.configure()
    host = world.host()
    host.run_timer()
    result = host.drain()
    host.run_timer()
    # THEN the filtered flows were not sent, and the health row says how many and by which rule
    flows = world.accepted("Custom-AWSVPCFlow")
    assert len(flows) == 100 and all(r["Action"] == "REJECT" for r in flows)
    assert len(world.accepted("Custom-AWSCloudTrail")) == ct_n  # no KMS reads among them
    rows = {r["TargetTable"]: r for r in world.accepted("Custom-AWSS3ConnectorHealth")
            if r["Kind"] == "object"}
    vpc = rows["AWSVPCFlow"]
    assert vpc["Outcome"] == "delivered" and vpc["RecordsIn"] == n
    assert vpc["RecordsOut"] == 100 and vpc["RecordsFiltered"] == 600
    assert vpc["FilteredByRule"] == {"internal-accepts": 600} and vpc["RecordsDropped"] == 0
    assert "RecordsFiltered" in rows["AWSCloudTrail"] and \
        rows["AWSCloudTrail"]["RecordsFiltered"] == 0
    beats = [r for r in world.accepted("Custom-AWSS3ConnectorHealth") if r["Kind"] == "heartbeat"]
    assert Counter(json.dumps(b.get("FilteredByRule")) for b in beats) == Counter(
        {"null": 1, json.dumps({"internal-accepts": 600}): 1})
    assert host.poison_items() == [] and result.failed == 0
