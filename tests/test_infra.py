"""Offline checks of infra/ (tools/validate_infra.py) under pytest.

GIVEN the Bicep, CloudFormation, workbook and alert files in infra/ and the stream schemas in
shared/schemas, WHEN each validation stage runs, THEN it reports no problem. The negative tests
prove the checks can fail: an unknown KQL column, an unparseable Bicep file, a stale generated
streams.bicep, a missing or unknown app setting, DCR settings not wired to the streams module, a
query comparing Outcome / Kind / CircuitState with a value the code never writes. checkov runs
once per framework (module fixture).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import gen_bicep_streams as gen  # noqa: E402
from validate import bicep, checkov, cloudformation, common, health_values, kql  # noqa: E402
from validate import settings as app_settings  # noqa: E402

NODE = shutil.which("node")
KUSTO = ROOT / "node_modules" / "@kusto" / "language-service-next"
needs_node = pytest.mark.skipif(NODE is None or not KUSTO.exists(),
                                reason="node and node_modules/@kusto/language-service-next needed "
                                       "(npm install)")


def assert_ok(stage: common.Stage) -> None:
    assert stage.ok, f"{stage.name}:\n" + "\n".join(stage.problems)


# ---- Bicep ---------------------------------------------------------------------------------
def test_every_bicep_file_parses_with_pycep():
    stage = bicep.check_bicep_parse()
    assert_ok(stage)
    assert stage.counts["files"] >= 10


def test_unparseable_bicep_is_reported(tmp_path: Path):
    # checkov passes a file it cannot parse, so the parse stage must catch it.
    bad = tmp_path / "bad.bicep"
    bad.write_text("var x = [for y in z if (y): y]\n")  # filtered for: pycep rejects it
    stage = bicep.check_bicep_parse([bad])
    assert not stage.ok
    assert "pycep cannot parse" in stage.problems[0]


def test_streams_bicep_is_generated_from_every_schema_file():
    stage = bicep.check_streams()
    assert_ok(stage)
    schema_files = sorted((ROOT / "shared" / "schemas").glob("*.json"))
    assert stage.counts["streams"] == len(schema_files)
    assert stage.counts["dcrs"] == -(-len(schema_files) // bicep.MAX_STREAMS_PER_DCR)


def test_generator_check_notices_a_new_schema_file(tmp_path: Path):
    schemas = tmp_path / "schemas"
    shutil.copytree(ROOT / "shared" / "schemas", schemas)
    out = tmp_path / "streams.bicep"
    shutil.copy(gen.OUT, out)
    assert gen.check(schemas, out) == []
    (schemas / "AWSNewThing_CL.json").write_text(json.dumps({
        "table": "AWSNewThing_CL", "stream": "Custom-AWSNewThing",
        "outputStream": "Custom-AWSNewThing_CL",
        "columns": [{"name": "TimeGenerated", "type": "datetime"}]}))
    problems = gen.check(schemas, out)
    assert problems and "stale" in problems[0]


def test_generator_keeps_tables_in_their_dcr_and_respects_the_limit():
    def s(name: str) -> gen.Schema:
        return gen.Schema(name, f"Custom-{name}", f"Microsoft-{name}", f"{name}.json")

    existing = [s(f"T{i:02}") for i in range(12)]
    first = gen.assign_groups(existing, [])
    assert [len(g) for g in first] == [10, 2]
    previous = [[x.table for x in g] for g in first]
    # A new table sorting first must not push existing tables into another DCR.
    grown = gen.assign_groups([s("A00")] + existing, previous)
    assert [[x.table for x in g] for g in grown][0] == previous[0]
    assert "A00" in [x.table for x in grown[1]]
    assert all(len(g) <= gen.MAX_STREAMS_PER_DCR for g in grown)
    # The health table goes first on a fresh assignment.
    fresh = gen.assign_groups([s("AWSS3ConnectorHealth_CL")] + existing, [])
    assert fresh[0][0].table == "AWSS3ConnectorHealth_CL"


def test_dcr_streams_and_flows_come_from_the_schema_files():
    text = gen.OUT.read_text()
    for path in sorted((ROOT / "shared" / "schemas").glob("*.json")):
        assert f"loadJsonContent('../../shared/schemas/{path.name}')" in text
    dcr = (ROOT / "infra" / "bicep" / "modules" / "dcr.bicep").read_text()
    assert "kind: 'Direct'" in dcr
    assert "transformKql: 'source'" in dcr
    assert "outputStream: schema.outputStream" in dcr


# ---- app settings, RBAC, parameters --------------------------------------------------------
def test_main_bicep_sets_exactly_the_settings_the_code_and_host_read():
    assert_ok(app_settings.check_app_settings())


def test_app_settings_check_flags_missing_unknown_and_flex_rejected_settings():
    settings = dict(app_settings.bicep_app_settings())
    del settings["DCR_IMMUTABLE_ID"]
    settings["SOMETHING_NOBODY_READS"] = "x"
    settings["FUNCTIONS_WORKER_RUNTIME"] = "python"
    problems = "\n".join(app_settings.check_app_settings(settings).problems)
    assert "DCR_IMMUTABLE_ID is read by the code" in problems
    assert "SOMETHING_NOBODY_READS is read by neither" in problems
    assert "FUNCTIONS_WORKER_RUNTIME is not supported on Flex" in problems


def test_main_bicep_routes_each_table_to_the_dcr_that_holds_its_stream():
    settings = app_settings.bicep_app_settings()
    assert app_settings.accessor_path(settings["DCR_ROUTES"]) == "string(streams.outputs.dcrRoutes)"
    assert app_settings.accessor_path(settings["LOGS_INGESTION_ENDPOINT"]) == \
        "streams.outputs.dcrs[0].logsIngestionEndpoint"
    assert app_settings.accessor_path(settings["DCR_IMMUTABLE_ID"]) == \
        "streams.outputs.dcrs[0].immutableId"
    # The dcrRoutes output of the generated module: every table, to the DCR its stream is in.
    _, groups = gen.generate()
    expected = {s.var: i for i, group in enumerate(groups) for s in group}
    text = gen.OUT.read_text()
    block = text[text.index("output dcrRoutes object = {"):]
    routes = {m[0]: (int(m[1]), int(m[2])) for m in re.findall(
        r"'\$\{(schema_\w+)\.table\}': \{\s*endpoint: dcr\[(\d+)\]\.outputs\.logsIngestionEndpoint"
        r"\s*dcrImmutableId: dcr\[(\d+)\]\.outputs\.immutableId", block)}
    assert routes == {var: (i, i) for var, i in expected.items()}
    assert len(routes) == len(list((ROOT / "shared" / "schemas").glob("*.json")))


def test_app_settings_check_flags_dcr_settings_not_taken_from_the_streams_module():
    settings = dict(app_settings.bicep_app_settings())
    settings["DCR_ROUTES"] = "{}"
    settings["DCR_IMMUTABLE_ID"] = settings["LOGS_INGESTION_ENDPOINT"]
    problems = "\n".join(app_settings.check_app_settings(settings).problems)
    assert "DCR_ROUTES must be string(streams.outputs.dcrRoutes)" in problems
    assert "DCR_IMMUTABLE_ID must be streams.outputs.dcrs[0].immutableId" in problems


def test_role_assignments_are_least_privilege_and_avm_style():
    stage = bicep.check_rbac()
    assert_ok(stage)
    assert stage.counts["role_assignments"] == len(bicep.EXPECTED_ASSIGNMENTS)


def test_parameters_example_matches_main_bicep_and_the_config_parser():
    assert_ok(app_settings.check_parameters())


# ---- KQL -----------------------------------------------------------------------------------
@needs_node
def test_every_workbook_alert_and_transform_query_analyses_without_errors():
    stage = kql.check_kql()
    assert_ok(stage)
    assert stage.counts["workbook"] >= 10
    assert stage.counts["alerts"] == 6
    assert stage.counts["transforms"] == len(list((ROOT / "shared" / "schemas").glob("*.json")))


def _kql(payload: dict) -> tuple[int, dict]:
    proc = subprocess.run([NODE, str(ROOT / "tools" / "kql_check.js")],
                          input=json.dumps(payload), capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout)


@needs_node
def test_kql_checker_fails_on_an_unknown_column():
    tables = kql.kusto_tables()
    code, report = _kql({"tables": tables, "queries": [
        {"name": "good", "query": "AWSS3ConnectorHealth_CL | summarize max(SqsBacklog)"},
        {"name": "bad", "query": "AWSS3ConnectorHealth_CL | where NoSuchColumn > 0"},
    ]})
    assert code == 1
    assert report["errors"] == 1
    good, bad = report["results"]
    assert good["diagnostics"] == []
    assert bad["diagnostics"][0]["severity"] == "Error"
    assert "NoSuchColumn" in bad["diagnostics"][0]["message"]


@needs_node
def test_kql_checker_fails_on_an_unknown_table_and_in_a_transform():
    doc = common.load_schemas()["AWSCloudTrail"]
    code, report = _kql({"tables": kql.kusto_tables(), "queries": [
        {"name": "table", "query": "AWSNoSuchTable | take 1"},
        {"name": "transform", "query": "source | extend X = NotDeclared",
         "tables": {"source": kql.stream_source_table(doc)}},
    ]})
    assert code == 1
    assert report["errors"] == 2


@needs_node
def test_kql_stage_fails_on_a_bad_workbook_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    workbook = json.loads((common.WORKBOOK_DIR / "pipeline-health.workbook.json").read_text())
    workbook["items"].append({"type": 3, "name": "broken", "content": {
        "version": "KqlItem/1.0", "query": "AWSS3ConnectorHealth_CL | summarize sum(Bites)"}})
    (tmp_path / "broken.workbook.json").write_text(json.dumps(workbook))
    monkeypatch.setattr(kql, "WORKBOOK_DIR", tmp_path)
    stage = kql.check_kql()
    assert not stage.ok
    assert any("#broken" in p and "Bites" in p for p in stage.problems)


# ---- health table values: queries vs. what the code writes ----------------------------------
# What shared/health.py + shared/pipeline.py (and CircuitBreaker.state in shared/ingestion.py)
# write to AWSS3ConnectorHealth_CL, as documented in infra/README.md. Hard-coded on purpose: a
# value added to (or removed from) the code fails test_code_writes_the_documented_health_values
# until the workbook and the alert rules were reviewed for it and this list updated.
DOCUMENTED = {
    "Kind": {"object", "heartbeat"},
    "object": {"delivered", "partial", "dead_lettered", "retrying", "skipped", "duplicate",
               "deferred"},
    "heartbeat": {"ok", "error", "paused"},
    "CircuitState": {"closed", "open", "half_open"},
}
QUERIES = ROOT / "infra" / "bicep" / "queries"


def _in_list(query: str, pattern: str) -> set[str]:
    """Strings of the first `<pattern> (...)` list in query."""
    m = re.search(pattern + r"\s*\(([^)]*)\)", query)
    assert m, f"{pattern!r} not in {query}"
    return set(re.findall(r"'([^']*)'", m.group(1)))


def test_code_writes_the_documented_health_values():
    assert health_values.code_health_values() == DOCUMENTED


def test_workbook_and_alerts_compare_only_with_values_the_code_writes():
    stage = health_values.check_health_values()
    assert_ok(stage)
    assert stage.counts["queries"] >= 15
    assert stage.counts["literals"] > 0
    # The same against the documented list, independent of reading the code.
    assert_ok(health_values.check_health_values(values=DOCUMENTED))


def test_health_value_check_flags_values_the_code_never_writes():
    queries = [
        {"name": "x.workbook.json#a",
         "query": "AWSS3ConnectorHealth_CL | where Kind == 'object' and Outcome == 'failed'"},
        {"name": "alerts.bicep#b", "query": "AWSS3ConnectorHealth_CL "
         "| where Kind == 'heartbeat' and Outcome in ('ok', 'delivered')"},
        {"name": "alerts.bicep#c",
         "query": "AWSS3ConnectorHealth_CL | where CircuitState == 'opened' or Kind == 'poll'"},
        {"name": "alerts.bicep#d", "query": "AWSS3ConnectorHealth_CL | where Outcome has 'dead'"},
        {"name": "alerts.bicep#e",  # a value some Kind writes, no Kind selected: fine
         "query": "AWSS3ConnectorHealth_CL | where Outcome !in ('ok', 'duplicate')"},
    ]
    problems = "\n".join(health_values.check_health_values(queries, DOCUMENTED).problems)
    assert "#a: Outcome 'failed' is never written for object rows" in problems
    assert "#b: Outcome 'delivered' is never written for heartbeat rows" in problems
    assert "#c: CircuitState 'opened' is never written" in problems
    assert "#c: Kind 'poll' is never written" in problems
    assert "#d: `Outcome has`: compare Outcome with ==, != or in (...)" in problems
    assert "#e:" not in problems
    assert "workbook: no query names the object Outcome 'deferred'" in problems


def test_code_value_reader_follows_variables_and_conditionals(tmp_path: Path):
    health = tmp_path / "health.py"
    health.write_text(
        "class ObjectStats:\n"
        "    def row(self):\n"
        "        return {'Kind': 'object', 'Outcome': self.outcome}\n"
        "class PollStats:\n"
        "    circuit_state: str = 'closed'\n"
        "    def row(self):\n"
        "        return {'Kind': 'heartbeat', 'Outcome': 'error' if self.error else 'ok'}\n")
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_text(
        "def process(stats, dead):\n"
        "    stats.finish('duplicate', None)\n"
        "    outcome = 'partial' if dead else 'delivered'\n"
        "    stats.finish(outcome, None)\n"
        "    stats.finish('quarantined', None)\n")
    ingestion = tmp_path / "ingestion.py"
    ingestion.write_text(
        "class CircuitBreaker:\n"
        "    @property\n"
        "    def state(self):\n"
        "        if self.n < 3:\n"
        "            return 'closed'\n"
        "        return 'open' if self.t else 'half_open'\n")
    values = health_values.code_health_values(health, pipeline, ingestion)
    assert values == {"Kind": {"object", "heartbeat"}, "heartbeat": {"ok", "error"},
                      "object": {"duplicate", "partial", "delivered", "quarantined"},
                      "CircuitState": {"closed", "open", "half_open"}}
    # An outcome the reader cannot resolve is an error, not a silently smaller set.
    pipeline.write_text("def process(stats, pick):\n    stats.finish(pick(), None)\n")
    with pytest.raises(ValueError, match="cannot tell which strings"):
        health_values.code_health_values(health, pipeline, ingestion)


def test_failure_rate_counts_partial_dead_lettered_and_retrying_attempts_only():
    query = (QUERIES / "alert-failure-rate.kql").read_text()
    attempts = _in_list(query, r"where Kind == 'object' and Outcome in")
    failed = _in_list(query, r"countif\(Outcome in")
    assert failed == {"partial", "dead_lettered", "retrying"}
    assert attempts == failed | {"delivered"}
    assert not attempts & {"duplicate", "skipped", "deferred"}


def test_dead_letter_alert_fires_on_any_poisoned_item():
    query = (QUERIES / "alert-dead-lettered.kql").read_text()
    assert _in_list(query, r"Outcome in") == {"dead_lettered", "partial"}
    for condition in ("RecordsDropped > 0", "MessagesPoisoned > 0", "PoisonDepth > 0"):
        assert condition in query


def test_latency_alert_reads_only_objects_whose_records_were_accepted():
    query = (QUERIES / "alert-latency-p95.kql").read_text()
    assert _in_list(query, r"Outcome in") == {"delivered", "partial"}


def test_a_source_whose_poller_runs_all_fail_has_an_alert_per_source():
    query = (QUERIES / "alert-poller-failing.kql").read_text()
    assert "countif(Outcome == 'ok')" in query and "by SourceName" in query
    rule = common.parse_bicep(common.BICEP_DIR / "modules" / "alerts.bicep")["resources"][
        "pollerFailing"]
    cond = rule["config"]["properties"]["criteria"]["allOf"][0]
    assert cond["metricMeasureColumn"] == "SuccessfulRuns"
    assert (cond["operator"], cond["threshold"]) == ("LessThan", 1)
    assert [d["name"] for d in cond["dimensions"]] == ["SourceName"]


def test_workbook_shows_latest_circuit_state_per_source_and_every_outcome_count():
    items = {i.get("name"): i["content"] for i in json.loads(
        (common.WORKBOOK_DIR / "pipeline-health.workbook.json").read_text())["items"]}
    circuit = items["circuit-state"]["query"]
    assert re.search(r"arg_max\(TimeGenerated, CircuitState\b.*\) by SourceName", circuit)
    totals = items["outcome-totals"]["query"]
    for outcome in DOCUMENTED["object"]:
        assert f"countif(Outcome == '{outcome}')" in totals
    errors = items["poller-errors"]["query"]
    assert "Kind == 'heartbeat' and Outcome == 'error'" in errors


# ---- AWS -----------------------------------------------------------------------------------
def test_cloudformation_is_cfn_lint_clean():
    assert_ok(cloudformation.check_cfn_lint())


def test_aws_role_trust_and_permissions_are_pinned():
    stage = cloudformation.check_aws_policy()
    assert_ok(stage)


# ---- checkov (slowest: one run per framework) ----------------------------------------------
@pytest.fixture(scope="module")
def checkov_reports() -> dict:
    return {"bicep": checkov.run_checkov(common.BICEP_DIR, "bicep"),
            "cloudformation": checkov.run_checkov(common.AWS_DIR, "cloudformation")}


def test_checkov_has_no_failed_checks_and_every_skip_has_a_reason(checkov_reports: dict):
    stage = checkov.check_checkov(reports=checkov_reports)
    assert_ok(stage)
    assert stage.counts["bicep_passed"] > 0
    assert stage.counts["cloudformation_passed"] > 0
    assert stage.counts["parsing_errors"] == 0


@needs_node
def test_alert_measure_column_must_be_a_numeric_result_column():
    query = "AWSS3ConnectorHealth_CL | summarize Items = count(), Last = max(TimeGenerated)"
    stage = kql.check_kql(queries=[
        {"name": "missing", "query": query, "measure": "NotThere"},
        {"name": "not-numeric", "query": query, "measure": "Last"},
        {"name": "fine", "query": query, "measure": "Items"},
    ])
    problems = "\n".join(stage.problems)
    assert "missing: metricMeasureColumn 'NotThere' is not a column" in problems
    assert "not-numeric: metricMeasureColumn 'Last' is datetime" in problems
    assert "fine:" not in problems


def test_aws_sources_entry_output_is_checked_against_the_config_parser():
    bad = {"Fn::Sub": ['{"name":"${SourceName}","queueUrl":"not-a-url","region":"${AWS::Region}",'
                       '"buckets":{"${LogBucketName}":["${LogKeyPrefix}${P2}${P3}${P4}"]}}', {}]}
    problems = "\n".join(cloudformation._check_sources_entry(bad))
    assert "queueUrl must be the SQS queue URL" in problems
    assert "needs roleArn" in problems


def test_security_lake_subscriber_template_wires_object_created_events_to_its_queue():
    # GIVEN the Security Lake subscriber template (validated by cfn-lint, checkov, aws-policy)
    tpl = cloudformation._decode_cfn(common.AWS_DIR / "security-lake-subscriber.yaml")
    res = tpl["Resources"]
    # THEN the lake bucket's EventBridge Object Created events for aws/ and ext/ reach the
    # queue (the notification shape Security Lake sends subscribers), only from that rule
    pattern = res["ObjectCreatedRule"]["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"] and pattern["source"] == ["aws.s3"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "aws/"}, {"prefix": "ext/"}]
    allow = res["NotificationQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["ObjectCreatedRule", "Arn"]}
    # the role reads only the lake's folders; the subscriber is registered with Security Lake
    read = next(s for s in res["ConnectorRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                ["Statement"] if isinstance(s, dict) and s.get("Sid") == "ReadSecurityLakeObjects")
    assert [r["Fn::Sub"].rsplit("/", 2)[-2] for r in read["Resource"]] == ["aws", "ext"]
    assert res["Subscriber"]["Type"] == "AWS::SecurityLake::Subscriber"
    assert cloudformation.check_aws_policy().problems == []
