"""Offline checks of infra/: Bicep, CloudFormation, KQL and app settings.

Run from the repository root with the project venv (``make validate``):

    .venv/bin/python tools/validate_infra.py [--skip-checkov] [--json]

What it checks (each is one "stage"; the summary prints counts per stage):

* bicep-parse    every infra/bicep/**/*.bicep parses with pycep-parser (checkov silently passes a
                 file it cannot parse, so this runs first)
* streams        infra/bicep/streams.bicep is what tools/gen_bicep_streams.py writes from
                 shared/schemas/*.json; DCR limits (10 streams / 10 dataFlows per DCR), stream and
                 column naming rules, every *_CL table has a custom table and TimeGenerated
* app-settings   every setting in shared.config.SETTINGS_DOC (minus local-only ones) is set in
                 main.bicep, nothing else is set except an explicit list of host settings, and no
                 setting Flex Consumption rejects; LOGS_INGESTION_ENDPOINT / DCR_IMMUTABLE_ID come
                 from DCR 1 and DCR_ROUTES from the dcrRoutes output of the streams module
* rbac           role assignments: named role-id variables, guid(scope.id, principalId, roleId)
                 names, principalType ServicePrincipal, the expected roles on the expected scopes
* parameters     main.parameters.example.json names only real parameters, gives every required
                 one, and its awsSources passes shared.config's own AWS_SOURCES parser
* kql            every workbook, alert and DCR-transform query analysed by Kusto.Language
                 (tools/kql_check.js) against tables built from shared/schemas/*.json
* health-values  every Kind / Outcome / CircuitState literal that a workbook or alert query
                 compares with is one the code writes (read from shared/health.py,
                 shared/pipeline.py and shared/ingestion.py with ast), per Kind; the workbook
                 names every object Outcome the code writes
* cfn-lint       infra/aws/*.yaml lint clean
* aws-policy     the IAM role: trust pins aud and sub, only the allowed actions, SSE on queues,
                 dead-letter redrive, queue policy conditions on aws:SourceArn/aws:SourceAccount
* checkov        bicep and cloudformation frameworks: zero failed checks, no parsing errors,
                 every inline skip carries a reason

Exit status 0 when every stage passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BICEP_DIR = ROOT / "infra" / "bicep"
AWS_DIR = ROOT / "infra" / "aws"
SCHEMA_DIR = ROOT / "shared" / "schemas"
HEALTH_PY = ROOT / "shared" / "health.py"
PIPELINE_PY = ROOT / "shared" / "pipeline.py"
INGESTION_PY = ROOT / "shared" / "ingestion.py"
HEALTH_TABLE = "AWSS3ConnectorHealth_CL"
MAIN_BICEP = BICEP_DIR / "main.bicep"
PARAMS_EXAMPLE = BICEP_DIR / "main.parameters.example.json"
WORKBOOK_DIR = BICEP_DIR / "workbooks"
KQL_CHECK = ROOT / "tools" / "kql_check.js"
VENV_BIN = Path(sys.executable).parent

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

# ---- app settings ------------------------------------------------------------------------------
# Read by the code locally but replaced in Azure (identity-based AzureWebJobsStorage__* settings).
LOCAL_ONLY_SETTINGS = {"AzureWebJobsStorage"}
# Read by the Functions host / platform, not by shared.config: allowed in main.bicep.
HOST_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__accountName",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "FUNCTIONS_WORKER_PROCESS_COUNT",  # Python worker processes per instance (both cores)
}
# Flex Consumption rejects or ignores these (functionAppConfig replaces them).
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION", "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE", "SCM_DO_BUILD_DURING_DEPLOYMENT", "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTSHARE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT", "WEBSITE_TIME_ZONE", "TZ",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}

# ---- Azure Monitor limits (azure-monitor-limits-data-collection-rules / custom logs) -----------
MAX_STREAMS_PER_DCR = 10
MAX_DATAFLOWS_PER_DCR = 10
MAX_COLUMNS = 500
MAX_COLUMN_NAME = 45
MAX_TRANSFORM_CHARS = 15_360
RESERVED_COLUMNS = {"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}
STREAM_TYPES = {"string", "int", "long", "real", "boolean", "dynamic", "datetime"}

# Columns every Log Analytics table has besides its own (log-standard-columns).
STANDARD_COLUMNS = {
    "TimeGenerated": "datetime", "TenantId": "string", "Type": "string", "SourceSystem": "string",
    "_ResourceId": "string", "_SubscriptionId": "string", "_BilledSize": "real",
    "_IsBillable": "string", "_TimeReceived": "datetime", "_ItemId": "string",
}
NUMERIC_KUSTO_TYPES = {"int", "long", "real", "decimal"}
# Workbook parameter tokens and what they stand for when a query is analysed offline.
WORKBOOK_TOKENS = {"{TimeRange:grain}": "1h", "{TimeRange}": "ago(1d)"}

# ---- RBAC: role id -> name, and where each must be assigned ------------------------------------
ROLES = {
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
}
EXPECTED_ASSIGNMENTS = {  # (module file, role name, scope resource type)
    ("dcr.bicep", "Monitoring Metrics Publisher", "Microsoft.Insights/dataCollectionRules"),
    ("app-insights.bicep", "Monitoring Metrics Publisher", "Microsoft.Insights/components"),
    ("storage.bicep", "Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("storage.bicep", "Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    ("storage.bicep", "Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    ("keyvault.bicep", "Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
}

# ---- AWS ---------------------------------------------------------------------------------------
ALLOWED_ROLE_ACTIONS = {
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "s3:GetObject",
    "s3:GetObjectVersion", "kms:Decrypt",
}
# boto3 operations shared/ may call -> the IAM actions they are authorised as. The role holds
# exactly what the code calls (stage aws-hardening); an operation missing here fails the stage.
CODE_CALL_ACTIONS = {
    "receive_message": {"sqs:ReceiveMessage"},
    "delete_message": {"sqs:DeleteMessage"},
    "delete_message_batch": {"sqs:DeleteMessage"},
    "change_message_visibility": {"sqs:ChangeMessageVisibility"},
    "change_message_visibility_batch": {"sqs:ChangeMessageVisibility"},
    "get_queue_attributes": {"sqs:GetQueueAttributes"},
    "get_queue_url": {"sqs:GetQueueUrl"},
    "get_object": {"s3:GetObject", "s3:GetObjectVersion"},  # versionId -> GetObjectVersion
    "head_object": {"s3:GetObject", "s3:GetObjectVersion"},
    "list_objects_v2": {"s3:ListBucket"},
    "get_caller_identity": set(),  # needs no permission
    "get_metric_statistics": {"cloudwatch:GetMetricStatistics"},  # `status`: oldest message age
}
# granted by the operator only when used: `s3sentinel backfill` lists the bucket, `s3sentinel
# status` reads the queue's ApproximateAgeOfOldestMessage metric (n/a without it)
OPTIONAL_CODE_ACTIONS = {"s3:ListBucket", "cloudwatch:GetMetricStatistics"}


@dataclass
class Stage:
    name: str
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str) -> None:
        self.problems.append(message)


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# =================================================================================================
# Bicep parsing helpers
# =================================================================================================
def bicep_files() -> list[Path]:
    return sorted(BICEP_DIR.rglob("*.bicep"))


_PARSED: dict[tuple[Path, float, int], dict[str, Any]] = {}


def parse_bicep(path: Path) -> dict[str, Any]:
    """pycep's JSON for one file (cached per path and modification; parsing is slow)."""
    from pycep import BicepParser

    st = path.stat()
    key = (path.resolve(), st.st_mtime, st.st_size)
    if key not in _PARSED:
        _PARSED[key] = BicepParser().parse(file_path=path)
    return _PARSED[key]


def _literal_string(node: Any) -> str | None:
    return node if isinstance(node, str) else None


def _function(node: Any) -> tuple[str, dict[str, Any]] | None:
    if isinstance(node, dict) and isinstance(node.get("function"), dict):
        fn = node["function"]
        return fn.get("type"), fn.get("parameters") or {}
    return None


def check_bicep_parse(files: Iterable[Path] | None = None) -> Stage:
    stage = Stage("bicep-parse")
    files = list(files if files is not None else bicep_files())
    for path in files:
        try:
            parse_bicep(path)
        except Exception as err:  # pycep raises lark errors of several types
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            stage.fail(f"{rel(path)}: pycep cannot parse it: {first}")
    stage.counts["files"] = len(files)
    if not files:
        stage.fail("no .bicep files under infra/bicep")
    return stage


# =================================================================================================
# Streams / DCR
# =================================================================================================
def load_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        doc["_file"] = path.name
        out[doc["table"]] = doc
    return out


def check_streams() -> Stage:
    import gen_bicep_streams as gen

    stage = Stage("streams")
    for problem in gen.check():
        stage.fail(problem)
    schemas = load_schemas()
    _, groups = gen.generate()
    stage.counts["schemas"] = len(schemas)
    stage.counts["dcrs"] = len(groups)
    stage.counts["streams"] = sum(len(g) for g in groups)
    for i, group in enumerate(groups, 1):
        if len(group) > MAX_STREAMS_PER_DCR:
            stage.fail(f"dcr {i}: {len(group)} streams > {MAX_STREAMS_PER_DCR}")
        if len(group) > MAX_DATAFLOWS_PER_DCR:
            stage.fail(f"dcr {i}: {len(group)} dataFlows > {MAX_DATAFLOWS_PER_DCR}")
    grouped = {s.table for g in groups for s in g}
    for table in sorted(set(schemas) - grouped):
        stage.fail(f"{table}: schema file has no stream in any DCR")
    streams_seen: dict[str, str] = {}
    for table, doc in schemas.items():
        where = f"shared/schemas/{doc['_file']}"
        stream, out = doc.get("stream", ""), doc.get("outputStream", "")
        if not stream.startswith("Custom-"):
            stage.fail(f"{where}: stream {stream!r} must start with Custom-")
        if stream in streams_seen:
            stage.fail(f"{where}: stream {stream!r} also declared by {streams_seen[stream]}")
        streams_seen[stream] = where
        expected_out = f"Custom-{table}" if table.endswith("_CL") else f"Microsoft-{table}"
        if out != expected_out:
            stage.fail(f"{where}: outputStream {out!r}, expected {expected_out!r}")
        cols = doc.get("columns") or []
        if len(cols) > MAX_COLUMNS:
            stage.fail(f"{where}: {len(cols)} columns > {MAX_COLUMNS}")
        names = [c.get("name", "") for c in cols]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            stage.fail(f"{where}: column {dup!r} declared twice")
        for c in cols:
            name, ctype = c.get("name", ""), c.get("type", "")
            if ctype not in STREAM_TYPES:
                stage.fail(f"{where}: column {name!r} has type {ctype!r} (allowed: "
                           f"{', '.join(sorted(STREAM_TYPES))})")
            if len(name) > MAX_COLUMN_NAME:
                stage.fail(f"{where}: column name {name!r} longer than {MAX_COLUMN_NAME}")
            if name in RESERVED_COLUMNS:
                if table.endswith("_CL"):
                    stage.fail(f"{where}: column {name!r} is reserved in custom tables")
                else:
                    stage.notes.append(f"{where}: column {name!r} is on the reserved list for "
                                       "custom tables; it is a real column of the standard "
                                       f"table {table} (only a deployment confirms the DCR "
                                       "accepts it in the input stream)")
        if table.endswith("_CL") and {"name": "TimeGenerated", "type": "datetime"} not in cols:
            stage.fail(f"{where}: a custom table needs TimeGenerated (datetime)")
    # The generated module must load every schema file with loadJsonContent (literal paths).
    streams_bicep = BICEP_DIR / "streams.bicep"
    if streams_bicep.exists():
        text = streams_bicep.read_text()
        for doc in schemas.values():
            if f"loadJsonContent('../../shared/schemas/{doc['_file']}')" not in text:
                stage.fail(f"streams.bicep does not load shared/schemas/{doc['_file']}")
    # The DCR module: kind Direct, API version, transform.
    dcr = parse_bicep(BICEP_DIR / "modules" / "dcr.bicep")
    rules = [r for r in dcr["resources"].values()
             if r.get("type") == "Microsoft.Insights/dataCollectionRules"]
    if len(rules) != 1:
        stage.fail("modules/dcr.bicep: expected one Microsoft.Insights/dataCollectionRules")
    for r in rules:
        if r.get("api_version") != "2023-03-11":
            stage.fail(f"modules/dcr.bicep: api version {r.get('api_version')}, "
                       "expected 2023-03-11")
        if r["config"].get("kind") != "Direct":
            stage.fail("modules/dcr.bicep: DCR kind must be 'Direct' (own logsIngestion endpoint)")
    return stage


def dcr_transforms() -> list[str]:
    """transformKql values in modules/dcr.bicep (string literals only)."""
    text = (BICEP_DIR / "modules" / "dcr.bicep").read_text()
    return re.findall(r"transformKql:\s*'((?:[^'\\]|\\.)*)'", text)


# =================================================================================================
# App settings
# =================================================================================================
def bicep_app_settings() -> dict[str, Any]:
    main = parse_bicep(MAIN_BICEP)
    var = main["variables"].get("appSettings")
    if not var or not isinstance(var.get("value"), dict):
        raise ValueError("main.bicep has no `var appSettings = {...}` object literal")
    return var["value"]


# The app sends each table to the DCR holding its stream: DCR 1 is the default route and
# DCR_ROUTES is the streams module's table -> {endpoint, dcrImmutableId} map (infra/README.md).
DCR_WIRING = {
    "LOGS_INGESTION_ENDPOINT": "streams.outputs.dcrs[0].logsIngestionEndpoint",
    "DCR_IMMUTABLE_ID": "streams.outputs.dcrs[0].immutableId",
    "DCR_ROUTES": "string(streams.outputs.dcrRoutes)",
}


def accessor_path(node: Any) -> str | None:
    """pycep's expression for `a.b[0].c` or `string(a.b)` as that text; None otherwise."""
    if isinstance(node, str):
        return node
    if isinstance(node, int) and not isinstance(node, bool):
        return str(node)
    fn = _function(node)
    if fn and len(fn[1]) == 1:
        inner = accessor_path(next(iter(fn[1].values())))
        return f"{fn[0]}({inner})" if inner else None
    op = node.get("operator") if isinstance(node, dict) else None
    if not isinstance(op, dict):
        return None
    operands = op.get("operands") or {}
    left = accessor_path(operands.get("operand_1"))
    right = accessor_path(operands.get("operand_2"))
    if left is None or right is None:
        return None
    if op.get("type") == "property_accessor":
        return f"{left}.{right}"
    if op.get("type") == "index_accessor":
        return f"{left}[{right}]"
    return None


def _is_streams_module() -> bool:
    module = parse_bicep(MAIN_BICEP).get("modules", {}).get("streams") or {}
    return (module.get("detail") or {}).get("path") == "streams.bicep"


def check_app_settings(settings: dict[str, Any] | None = None) -> Stage:
    """``settings``: name -> value as in main.bicep (default: read main.bicep)."""
    from shared.config import SETTINGS_DOC

    stage = Stage("app-settings")
    if settings is None:
        try:
            settings = bicep_app_settings()
        except Exception as err:
            stage.fail(str(err))
            return stage
    read_by_code = {d.name for d in SETTINGS_DOC}
    required = read_by_code - LOCAL_ONLY_SETTINGS
    set_names = set(settings)
    for name in sorted(required - set_names):
        stage.fail(f"main.bicep: app setting {name} is read by the code (SETTINGS_DOC) but not set")
    for name in sorted(set_names - read_by_code - HOST_SETTINGS):
        stage.fail(f"main.bicep: app setting {name} is read by neither the code nor the host "
                   "(add it to SETTINGS_DOC or to HOST_SETTINGS with a reason)")
    for name in sorted(set_names & FLEX_FORBIDDEN_SETTINGS):
        stage.fail(f"main.bicep: app setting {name} is not supported on Flex Consumption")
    for name in sorted(set_names & LOCAL_ONLY_SETTINGS):
        stage.fail(f"main.bicep: {name} is local-only; use the identity-based "
                   "AzureWebJobsStorage__* settings in Azure")
    for name, value in settings.items():
        if isinstance(value, str) and re.search(r"AccountKey=|SharedAccessSignature=|sig=", value):
            stage.fail(f"main.bicep: app setting {name} carries a key or SAS")
    if settings.get("AzureWebJobsStorage__credential") != "managedidentity":
        stage.fail("main.bicep: AzureWebJobsStorage__credential must be 'managedidentity'")
    auth = settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
    if not (isinstance(auth, str) and "Authorization=AAD" in auth):
        stage.fail("main.bicep: APPLICATIONINSIGHTS_AUTHENTICATION_STRING must use "
                   "Authorization=AAD (App Insights local auth is off)")
    for name, expected in DCR_WIRING.items():
        if name in settings and accessor_path(settings[name]) != expected:
            stage.fail(f"main.bicep: app setting {name} must be {expected} "
                       f"(found {accessor_path(settings[name]) or settings[name]!r})")
    if "DCR_ROUTES" in settings and not _is_streams_module():
        stage.fail("main.bicep: module `streams` must be 'streams.bicep' (DCR_ROUTES reads its "
                   "dcrRoutes output)")
    stage.counts["settings_in_bicep"] = len(set_names)
    stage.counts["settings_read_by_code"] = len(required)
    stage.counts["host_settings"] = len(set_names & HOST_SETTINGS)
    return stage


# =================================================================================================
# RBAC
# =================================================================================================
def check_rbac() -> Stage:
    stage = Stage("rbac")
    found: set[tuple[str, str, str]] = set()
    count = 0
    for path in bicep_files():
        tree = parse_bicep(path)
        variables = tree.get("variables", {})
        resources = tree.get("resources", {})
        text_lines = path.read_text().splitlines()
        for rname, res in resources.items():
            if res.get("type") != "Microsoft.Authorization/roleAssignments":
                continue
            count += 1
            where = f"{rel(path)}: {rname}"
            cfg = res["config"]
            props = cfg.get("properties", {})
            if props.get("principalType") != "ServicePrincipal":
                stage.fail(f"{where}: principalType must be 'ServicePrincipal'")
            role_def = _function(props.get("roleDefinitionId"))
            role_var = None
            if role_def and role_def[0] == "subscription_resource_id" and \
                    role_def[1].get("resource_type") == "Microsoft.Authorization/roleDefinitions":
                role_var = role_def[1].get("resource_name_1")
            if not role_var or role_var not in variables:
                stage.fail(f"{where}: roleDefinitionId must use a named role-id variable")
                continue
            role_id = _literal_string(variables[role_var].get("value"))
            role_name = ROLES.get(role_id or "")
            if role_name is None:
                stage.fail(f"{where}: role id {role_id!r} is not one of the expected roles")
                continue
            decl = next((i for i, line in enumerate(text_lines)
                         if re.match(rf"\s*var\s+{re.escape(role_var)}\s*=", line)), None)
            comment = text_lines[decl - 1] if decl else ""
            if role_name.lower() not in comment.lower():
                stage.fail(f"{rel(path)}: variable {role_var} needs a comment naming the role "
                           f"({role_name}) on the line above")
            name = _function(cfg.get("name"))
            scope_ref = cfg.get("scope")
            ok_name = False
            if name and name[0] == "guid":
                args = list(name[1].values())
                ok_name = (len(args) == 3 and args[2] == role_var and args[1] == "principalId"
                           and _is_id_of(args[0], scope_ref))
            if not ok_name:
                stage.fail(f"{where}: name must be guid(<scope>.id, principalId, {role_var})")
            scope_type = resources.get(scope_ref, {}).get("type") if isinstance(scope_ref, str) \
                else None
            if not scope_type:
                stage.fail(f"{where}: scope must be the one resource the role is for")
                continue
            found.add((path.name, role_name, scope_type))
    for expected in sorted(EXPECTED_ASSIGNMENTS - found):
        stage.fail(f"missing role assignment: {expected[1]} on {expected[2]} in {expected[0]}")
    for extra in sorted(found - EXPECTED_ASSIGNMENTS):
        stage.fail(f"unexpected role assignment: {extra[1]} on {extra[2]} in {extra[0]}")
    stage.counts["role_assignments"] = count
    return stage


def _is_id_of(node: Any, resource: Any) -> bool:
    """True when node is the expression `<resource>.id`."""
    if not isinstance(node, dict) or not isinstance(resource, str):
        return False
    op = node.get("operator") or {}
    operands = op.get("operands") or {}
    return (op.get("type") == "property_accessor" and operands.get("operand_1") == resource
            and operands.get("operand_2") == "id")


# =================================================================================================
# Parameters example
# =================================================================================================
def check_parameters() -> Stage:
    from shared.config import load_settings
    from shared.errors import ConfigError

    stage = Stage("parameters")
    params = parse_bicep(MAIN_BICEP)["parameters"]
    for pname, p in params.items():
        if not any(d.get("type") == "description" for d in p.get("decorators", [])):
            stage.fail(f"main.bicep: parameter {pname} has no @description")
            continue
        desc = next(d["argument"] for d in p["decorators"] if d.get("type") == "description")
        kind = "Required." if p.get("default") is None else "Optional."
        if not str(desc).startswith(kind):
            stage.fail(f"main.bicep: @description of {pname} should start with {kind!r}")
    try:
        example = json.loads(PARAMS_EXAMPLE.read_text())["parameters"]
    except (OSError, ValueError, KeyError) as err:
        stage.fail(f"{rel(PARAMS_EXAMPLE)}: unreadable ({err})")
        return stage
    for name in sorted(set(example) - set(params)):
        stage.fail(f"{rel(PARAMS_EXAMPLE)}: {name} is not a parameter of main.bicep")
    for name, p in params.items():
        if p.get("default") is None and name not in example:
            stage.fail(f"{rel(PARAMS_EXAMPLE)}: required parameter {name} is missing")
    sources = example.get("awsSources", {}).get("value")
    env = {
        "AWS_SOURCES": json.dumps(sources),
        "LOGS_INGESTION_ENDPOINT": "https://example.ingest.monitor.azure.com",
        "DCR_IMMUTABLE_ID": "dcr-00000000000000000000000000000000",
        "AzureWebJobsStorage__queueServiceUri": "https://st.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://st.table.core.windows.net",
        "AWS_WEB_IDENTITY_AUDIENCE": example.get("awsWebIdentityAudience", {}).get("value", ""),
        "KEY_VAULT_URL": "https://kv.vault.azure.net/",
    }
    try:
        load_settings(env)
    except ConfigError as err:
        # Only what the example is responsible for; other settings are faked above.
        for msg in getattr(err, "problems", None) or [str(err)]:
            if msg.startswith(("AWS_SOURCES", "AWS_WEB_IDENTITY_AUDIENCE")):
                stage.fail(f"{rel(PARAMS_EXAMPLE)}: rejected by shared.config: {msg}")
    stage.counts["parameters"] = len(params)
    stage.counts["example_values"] = len(example)
    return stage


# =================================================================================================
# KQL
# =================================================================================================
def kusto_tables(schemas: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Table name -> "(Col:type, ...)" as the real tables look (own columns + standard ones)."""
    schemas = schemas if schemas is not None else load_schemas()
    out = {}
    for table, doc in schemas.items():
        cols = {c["name"]: c["type"] for c in doc["columns"]}
        for name, ctype in STANDARD_COLUMNS.items():
            cols.setdefault(name, ctype)
        out[table] = "(" + ", ".join(f"['{n}']:{t}" for n, t in cols.items()) + ")"
    return out


def stream_source_table(doc: dict[str, Any]) -> str:
    """The `source` table a transform sees: exactly the declared stream columns."""
    return "(" + ", ".join(f"['{c['name']}']:{c['type']}" for c in doc["columns"]) + ")"


def workbook_queries(path: Path) -> list[dict[str, str]]:
    doc = json.loads(path.read_text())
    out = []

    def walk(items: list[dict[str, Any]], trail: str) -> None:
        for i, item in enumerate(items):
            name = item.get("name") or str(i)
            content = item.get("content") or {}
            if item.get("type") == 3 and "query" in content:
                query = content["query"]
                for token, value in WORKBOOK_TOKENS.items():
                    query = query.replace(token, value)
                out.append({"name": f"{rel(path)}#{trail}{name}", "query": query})
            if item.get("type") == 12:  # group
                walk(content.get("items") or [], f"{trail}{name}/")

    walk(doc.get("items") or [], "")
    return out


def alert_queries() -> list[dict[str, str]]:
    """Queries of the scheduledQueryRules: literal strings or loadTextContent files."""
    out = []
    path = BICEP_DIR / "modules" / "alerts.bicep"
    tree = parse_bicep(path)
    for rname, res in tree["resources"].items():
        if res.get("type") != "Microsoft.Insights/scheduledQueryRules":
            continue
        for j, cond in enumerate(res["config"]["properties"]["criteria"]["allOf"]):
            q = cond.get("query")
            fn = _function(q)
            item: dict[str, Any] = {"name": f"{rel(path)}#{rname}[{j}]", "query": ""}
            if fn and fn[0] == "load_text_content":
                file = path.parent / fn[1]["file_path"]
                item = {"name": f"{rel(path)}#{rname}[{j}] ({rel(file.resolve())})",
                        "query": file.read_text()}
            elif isinstance(q, str):
                item["query"] = q
            else:
                item["error"] = "query is neither a literal nor loadTextContent(...)"
            if cond.get("metricMeasureColumn"):
                item["measure"] = cond["metricMeasureColumn"]
            out.append(item)
    return out


def all_queries() -> tuple[list[dict[str, Any]], dict[str, str]]:
    schemas = load_schemas()
    queries: list[dict[str, Any]] = []
    for wb in sorted(WORKBOOK_DIR.glob("*.json")):
        queries += workbook_queries(wb)
    queries += alert_queries()
    for transform in dcr_transforms():
        for doc in schemas.values():
            queries.append({"name": f"modules/dcr.bicep#transformKql ({doc['stream']})",
                            "query": transform,
                            "tables": {"source": stream_source_table(doc)}})
    return queries, kusto_tables(schemas)


def run_kql_check(tables: dict[str, str], queries: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH (Node 20 runs tools/kql_check.js)")
    if not (ROOT / "node_modules" / "@kusto" / "language-service-next").exists():
        raise RuntimeError("node_modules/@kusto/language-service-next is missing: run npm install")
    payload = json.dumps({"tables": tables,
                          "queries": [{k: v for k, v in q.items() if k in ("name", "query",
                                                                            "tables")}
                                      for q in queries]})
    proc = subprocess.run([node, str(KQL_CHECK)], input=payload, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"kql_check.js failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def check_kql(queries: list[dict[str, Any]] | None = None,
              tables: dict[str, str] | None = None) -> Stage:
    """Analyse ``queries`` (default: every workbook, alert and transform query) against
    ``tables`` (default: built from shared/schemas)."""
    stage = Stage("kql")
    if queries is None:
        queries, default_tables = all_queries()
        tables = tables or default_tables
    tables = tables if tables is not None else kusto_tables()
    for q in queries:
        if q.get("error"):
            stage.fail(f"{q['name']}: {q['error']}")
        if len(q["query"]) > MAX_TRANSFORM_CHARS and "transformKql" in q["name"]:
            stage.fail(f"{q['name']}: transformKql longer than {MAX_TRANSFORM_CHARS} chars")
        leftover = re.findall(r"\{[A-Za-z][A-Za-z0-9_]*(?::[a-z]+)?\}", q["query"])
        if leftover and "transformKql" not in q["name"]:
            stage.fail(f"{q['name']}: unknown workbook parameter(s) {sorted(set(leftover))}")
    try:
        report = run_kql_check(tables, queries)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
        stage.fail(str(err))
        return stage
    for q, result in zip(queries, report["results"], strict=True):
        measure = q.get("measure")
        if measure:
            types = {c["name"]: c["type"] for c in result.get("columns", [])}
            if measure not in types:
                stage.fail(f"{result['name']}: metricMeasureColumn {measure!r} is not a column "
                           f"of the result ({', '.join(types) or 'none'})")
            elif types[measure] not in NUMERIC_KUSTO_TYPES:
                stage.fail(f"{result['name']}: metricMeasureColumn {measure!r} is "
                           f"{types[measure]}, not numeric")
        for d in result["diagnostics"]:
            line = (f"{result['name']}: {d['severity']} {d['code']} at {d['line']}:{d['column']}: "
                    f"{d['message']}")
            if d["severity"] == "Error":
                stage.fail(line)
            else:
                stage.notes.append(line)
    stage.counts["queries"] = report["analysed"]
    stage.counts["workbook"] = sum(1 for q in queries if "workbook" in q["name"])
    stage.counts["alerts"] = sum(1 for q in queries if "alerts.bicep" in q["name"])
    stage.counts["transforms"] = sum(1 for q in queries if "transformKql" in q["name"])
    stage.counts["errors"] = report["errors"]
    stage.counts["warnings"] = report["warnings"]
    return stage


# =================================================================================================
# Health table values: what the queries compare with vs. what the code writes
# =================================================================================================
HEALTH_COLUMNS = ("Kind", "Outcome", "CircuitState")


def _string_values(node: ast.AST, scope: ast.AST, where: str) -> set[str]:
    """The strings an expression can evaluate to: literals, `a if c else b`, `a or b`, and
    names assigned in ``scope`` (the enclosing function or module)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _string_values(node.body, scope, where) | _string_values(node.orelse, scope, where)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_string_values(v, scope, where) for v in node.values))
    if isinstance(node, ast.Name):
        values = [a.value for a in ast.walk(scope)
                  if isinstance(a, ast.Assign | ast.AnnAssign) and a.value is not None
                  and any(isinstance(t, ast.Name) and t.id == node.id
                          for t in (a.targets if isinstance(a, ast.Assign) else [a.target]))]
        if values:
            return set().union(*(_string_values(v, scope, where) for v in values))
    raise ValueError(f"{where}: cannot tell which strings {ast.unparse(node)!r} can be "
                     "(update validate_infra.code_health_values)")


def _functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


def code_health_values(health: Path = HEALTH_PY, pipeline: Path = PIPELINE_PY,
                       ingestion: Path = INGESTION_PY) -> dict[str, set[str]]:
    """Values the code writes to the health table, read from its source with ast:

    * ``Kind``: the "Kind" literal of each row() dict in shared/health.py;
    * ``Outcome`` per Kind: the "Outcome" value of that dict when it is literal (heartbeat:
      ``"error" if ... else "ok"``), else the first argument of every ``<stats>.finish(...)``
      in shared/pipeline.py (object rows);
    * ``CircuitState``: PollStats' default plus what ``CircuitBreaker.state`` returns.
    """
    values: dict[str, set[str]] = {"Kind": set(), "CircuitState": set()}
    htree = ast.parse(health.read_text())
    ptree = ast.parse(pipeline.read_text())
    finish_outcomes: set[str] = set()
    for fn in _functions(ptree):
        for call in ast.walk(fn):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "finish" and call.args):
                finish_outcomes |= _string_values(call.args[0], fn,
                                                  f"{rel(pipeline)}:{call.lineno}")
    for fn in _functions(htree):
        for d in ast.walk(fn):
            if not isinstance(d, ast.Dict):
                continue
            row = {k.value: v for k, v in zip(d.keys, d.values, strict=True)
                   if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            kind = row.get("Kind")
            if not (isinstance(kind, ast.Constant) and isinstance(kind.value, str)):
                continue
            values["Kind"].add(kind.value)
            outcome = row.get("Outcome")
            if isinstance(outcome, ast.Attribute):  # self.outcome: set by finish(...)
                values[kind.value] = set(finish_outcomes)
            elif outcome is not None:
                values[kind.value] = _string_values(outcome, fn, f"{rel(health)}:{d.lineno}")
    for cls in (n for n in ast.walk(htree) if isinstance(n, ast.ClassDef)):
        for st in cls.body:
            if (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)
                    and st.target.id == "circuit_state" and st.value is not None):
                values["CircuitState"] |= _string_values(st.value, cls, rel(health))
    itree = ast.parse(ingestion.read_text())
    for cls in (n for n in ast.walk(itree) if isinstance(n, ast.ClassDef)
                and n.name == "CircuitBreaker"):
        for fn in (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "state"):
            for ret in (r for r in ast.walk(fn) if isinstance(r, ast.Return) and r.value):
                values["CircuitState"] |= _string_values(ret.value, fn, rel(ingestion))
    for key in ("Kind", "CircuitState", *sorted(values["Kind"])):
        if not values.get(key):
            raise ValueError(f"found no {key} values in the code (update "
                             "validate_infra.code_health_values)")
    return values


_KQL_STRING = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"


def _unquote(literal: str) -> str:
    return literal[1:-1]


def kql_literals(query: str, column: str) -> tuple[set[str], list[str]]:
    """Strings ``column`` is compared with (==, !=, =~, !~, in, !in, in~, !in~) in ``query``,
    and the comparisons that cannot be checked that way (has, contains, startswith, ...)."""
    col = rf"(?<![\w.]){re.escape(column)}(?![\w])"
    found: set[str] = set()
    for m in re.finditer(rf"{col}\s*(?:==|!=|=~|!~)\s*({_KQL_STRING})", query):
        found.add(_unquote(m.group(1)))
    for m in re.finditer(rf"({_KQL_STRING})\s*(?:==|!=|=~|!~)\s*{col}", query):
        found.add(_unquote(m.group(1)))
    for m in re.finditer(rf"{col}\s+!?in~?\s*\(([^)]*)\)", query):
        found |= {_unquote(s) for s in re.findall(_KQL_STRING, m.group(1))}
    unchecked = [m.group(0) for m in re.finditer(
        rf"{col}\s+!?(?:has\w*|contains\w*|startswith\w*|endswith\w*|matches\s+regex)\b",
        query)]
    return found, unchecked


def check_health_values(queries: list[dict[str, Any]] | None = None,
                        values: dict[str, set[str]] | None = None) -> Stage:
    """Workbook and alert queries compare Kind / Outcome / CircuitState only with values the
    code writes (Outcome per the Kind the query selects), and the workbook names every object
    Outcome the code writes."""
    stage = Stage("health-values")
    try:
        values = values if values is not None else code_health_values()
    except (OSError, SyntaxError, ValueError) as err:
        stage.fail(str(err))
        return stage
    if queries is None:
        queries = [q for q in all_queries()[0] if "transformKql" not in q["name"]]
    kinds = values["Kind"]
    every_outcome = set().union(*(values[k] for k in kinds))
    checked = literals = 0
    workbook_outcomes: set[str] = set()
    for q in queries:
        if HEALTH_TABLE not in q["query"]:
            continue
        checked += 1
        name = q["name"]
        found = {c: kql_literals(q["query"], c) for c in HEALTH_COLUMNS}
        for column, (_, unchecked) in found.items():
            for text in unchecked:
                stage.fail(f"{name}: `{text}`: compare {column} with ==, != or in (...) so the "
                           "value can be checked against the code")
        q_kinds, _ = found["Kind"]
        for kind in sorted(q_kinds - kinds):
            stage.fail(f"{name}: Kind {kind!r} is never written (code: {sorted(kinds)})")
        selected = q_kinds & kinds
        allowed = set().union(*(values[k] for k in selected)) if selected else every_outcome
        outcomes, _ = found["Outcome"]
        for outcome in sorted(outcomes - allowed):
            which = " or ".join(sorted(selected)) if selected else "any Kind"
            stage.fail(f"{name}: Outcome {outcome!r} is never written for {which} rows "
                       f"(code: {sorted(allowed)})")
        states, _ = found["CircuitState"]
        for state in sorted(states - values["CircuitState"]):
            stage.fail(f"{name}: CircuitState {state!r} is never written "
                       f"(code: {sorted(values['CircuitState'])})")
        literals += sum(len(v) for v, _ in found.values())
        if "workbook" in name:
            workbook_outcomes |= outcomes
    if any("workbook" in q["name"] for q in queries):
        for outcome in sorted(values.get("object", set()) - workbook_outcomes):
            stage.fail(f"workbook: no query names the object Outcome {outcome!r} the code writes "
                       "(add it to the outcome-totals tile)")
    stage.counts["queries"] = checked
    stage.counts["literals"] = literals
    for key in ("Kind", "CircuitState", *sorted(kinds)):
        stage.counts[f"code_{key.lower()}"] = len(values[key])
    return stage


# =================================================================================================
# CloudFormation
# =================================================================================================
def cfn_templates() -> list[Path]:
    return sorted(p for p in AWS_DIR.glob("*.y*ml")) + sorted(AWS_DIR.glob("*.json"))


def check_cfn_lint() -> Stage:
    stage = Stage("cfn-lint")
    files = cfn_templates()
    stage.counts["templates"] = len(files)
    if not files:
        stage.fail("no CloudFormation template under infra/aws")
        return stage
    exe = VENV_BIN / "cfn-lint"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cfnlint"]
    proc = subprocess.run(cmd + [str(f) for f in files], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    if proc.returncode != 0:
        for line in (proc.stdout + proc.stderr).strip().splitlines():
            stage.fail(line)
        if not stage.problems:
            stage.fail(f"cfn-lint exited {proc.returncode}")
    return stage


def _decode_cfn(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches or template is None:
        raise ValueError(f"{rel(path)}: cannot decode: {matches}")
    return template


def _substitute_params(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", lambda m: values.get(m.group(1), "X"), text)


def check_aws_policy() -> Stage:
    stage = Stage("aws-policy")
    for path in cfn_templates():
        try:
            tpl = _decode_cfn(path)
        except ValueError as err:
            stage.fail(str(err))
            continue
        resources = tpl.get("Resources", {})
        roles = {k: v for k, v in resources.items() if v.get("Type") == "AWS::IAM::Role"}
        queues = {k: v for k, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"}
        qpolicies = [v for v in resources.values() if v.get("Type") == "AWS::SQS::QueuePolicy"]
        providers = [v for v in resources.values() if v.get("Type") == "AWS::IAM::OIDCProvider"]
        where = rel(path)
        if not providers or "Condition" not in providers[0]:
            stage.fail(f"{where}: needs an IAM OIDC provider created under a condition (it may "
                       "already exist)")
        for name, role in roles.items():
            trust = role["Properties"]["AssumeRolePolicyDocument"]
            if isinstance(trust, dict) and "Fn::Sub" in trust:
                body = trust["Fn::Sub"]
                body = body if isinstance(body, str) else body[0]
                doc = json.loads(_substitute_params(body, {
                    "AzureTenantId": "11111111-1111-1111-1111-111111111111",
                    "AppIdUri": "api://audience", "ManagedIdentityObjectId": "object-id",
                    "AWS::Partition": "aws", "AWS::AccountId": "123456789012"}))
            else:
                doc = trust
            stmts = doc.get("Statement", [])
            if len(stmts) != 1:
                stage.fail(f"{where}: {name}: trust policy should have one statement")
            for st in stmts:
                cond = st.get("Condition", {}).get("StringEquals", {})
                fed = str(st.get("Principal", {}).get("Federated", ""))
                if st.get("Action") != "sts:AssumeRoleWithWebIdentity":
                    stage.fail(f"{where}: {name}: trust action must be "
                               "sts:AssumeRoleWithWebIdentity")
                if "oidc-provider/sts.windows.net/" not in fed:
                    stage.fail(f"{where}: {name}: trust principal must be the sts.windows.net "
                               "OIDC provider")
                if cond.get("sts.windows.net/11111111-1111-1111-1111-111111111111/:aud") \
                        != "api://audience":
                    stage.fail(f"{where}: {name}: trust policy must pin :aud to the App ID URI")
                if cond.get("sts.windows.net/11111111-1111-1111-1111-111111111111/:sub") \
                        != "object-id":
                    stage.fail(f"{where}: {name}: trust policy must pin :sub to the managed "
                               "identity's object id")
            actions: set[str] = set()
            for pol in role["Properties"].get("Policies", []):
                for st in _statements(pol["PolicyDocument"]):
                    acts = st.get("Action")
                    acts = [acts] if isinstance(acts, str) else acts or []
                    actions.update(acts)
                    res = st.get("Resource")
                    if res == "*" or (isinstance(res, list) and "*" in res):
                        stage.fail(f"{where}: {name}: statement {st.get('Sid')} on Resource '*'")
            for act in sorted(actions - ALLOWED_ROLE_ACTIONS):
                stage.fail(f"{where}: {name}: action {act} is not needed by the connector")
            for act in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                        "s3:GetObject"):
                if act not in actions:
                    stage.fail(f"{where}: {name}: action {act} is missing")
            stage.counts["role_actions"] = len(actions)
        for name, q in queues.items():
            props = q.get("Properties", {})
            if not (props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId")):
                stage.fail(f"{where}: {name}: queue without server-side encryption")
        if not any("RedrivePolicy" in q.get("Properties", {}) for q in queues.values()):
            stage.fail(f"{where}: the notification queue needs a RedrivePolicy (dead-letter queue)")
        text = path.read_text()
        for key in ("aws:SourceArn", "aws:SourceAccount"):
            if not qpolicies or key not in text:
                stage.fail(f"{where}: queue policy must condition sqs:SendMessage on {key}")
        outputs = tpl.get("Outputs", {})
        for out in ("RoleArn", "QueueUrl", "AwsSourcesEntry"):
            if out not in outputs:
                stage.fail(f"{where}: output {out} is missing")
        entry = outputs.get("AwsSourcesEntry", {}).get("Value")
        if entry is not None:
            for problem in _check_sources_entry(entry, path.name):
                stage.fail(f"{where}: output AwsSourcesEntry: {problem}")
        stage.counts["resources"] = stage.counts.get("resources", 0) + len(resources)
    return stage


# the buckets AwsSourcesEntry must list once rendered with the sample values below, per template
# (the connector: the bucket and its prefixes; the Security Lake subscriber: the lake's folders)
EXPECTED_BUCKETS = {"security-lake-subscriber.yaml": {"logs-bucket": ["aws/", "ext/"]}}


def _check_sources_entry(value: Any, template_name: str = "connector.yaml") -> list[str]:
    """Render the AwsSourcesEntry !Sub with sample values; shared.config must accept it."""
    from shared.config import load_settings
    from shared.errors import ConfigError

    sub = value.get("Fn::Sub") if isinstance(value, dict) else None
    if sub is None:
        return ["expected a !Sub producing one AWS_SOURCES element"]
    template = sub if isinstance(sub, str) else sub[0]
    sample = {
        "SourceName": "prod-us-east-1", "AWS::Region": "us-east-1",
        "NotificationQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "ConnectorRole.Arn": "arn:aws:iam::123456789012:role/connector",
        "LogBucketName": "logs-bucket", "LogKeyPrefix": "AWSLogs/",
        "P2": '","vpc/', "P3": "", "P4": "",
    }
    text = _substitute_params(template, sample)
    try:
        entry = json.loads(text)
    except ValueError as err:
        return [f"not JSON once substituted ({err}): {text}"]
    env = {"AWS_SOURCES": json.dumps([entry]),
           "LOGS_INGESTION_ENDPOINT": "https://example.ingest.monitor.azure.com",
           "DCR_IMMUTABLE_ID": "dcr-00000000000000000000000000000000",
           "AzureWebJobsStorage": "UseDevelopmentStorage=true",
           "AWS_WEB_IDENTITY_AUDIENCE": "api://audience"}
    problems = []
    expected = EXPECTED_BUCKETS.get(template_name, {"logs-bucket": ["AWSLogs/", "vpc/"]})
    if entry.get("buckets") != expected:
        problems.append(f"buckets {entry.get('buckets')} do not list the bucket and its prefixes")
    try:
        load_settings(env)
    except ConfigError as err:
        problems += [f"rejected by shared.config: {m}"
                     for m in getattr(err, "problems", [str(err)]) if m.startswith("AWS_SOURCES")]
    return problems


def _statements(doc: Any) -> list[dict[str, Any]]:
    out = []
    for st in doc.get("Statement", []) if isinstance(doc, dict) else []:
        if isinstance(st, dict) and "Fn::If" in st:
            for branch in st["Fn::If"][1:]:
                if isinstance(branch, dict) and "Effect" in branch:
                    out.append(branch)
        elif isinstance(st, dict):
            out.append(st)
    return out


# =================================================================================================
# AWS hardening: who may send, consume and purge; least privilege; KMS; the trust's session name
# =================================================================================================
AWS_CLIENT_NAMES = {"c", "client", "s3", "sqs", "sts"}
CONSUME_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue",
                   "sqs:ChangeMessageVisibility"}


def code_aws_actions(shared: Path = ROOT / "shared") -> tuple[set[str], list[str]]:
    """IAM actions of the boto3 operations shared/ calls. Every AWS call goes through
    ``AwsSessions.call(source, service, lambda c: c.<operation>(...))`` (or a function whose
    parameter is the client: ``def pages(s3): s3.get_paginator("list_objects_v2")``), so the
    operations are the attribute calls on such a parameter."""
    actions: set[str] = set()
    problems: list[str] = []
    for path in sorted(shared.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.Lambda, ast.FunctionDef)):
                continue
            params = {a.arg for a in fn.args.args} & AWS_CLIENT_NAMES
            if not params:
                continue
            for node in ast.walk(fn):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name)
                        and node.func.value.id in params):
                    continue
                name = node.func.attr
                if name == "get_paginator" and node.args and \
                        isinstance(node.args[0], ast.Constant):
                    name = node.args[0].value
                if name in CODE_CALL_ACTIONS:
                    actions |= CODE_CALL_ACTIONS[name]
                else:
                    problems.append(f"{rel(path)}:{node.lineno}: AWS operation {name} is not in "
                                    "CODE_CALL_ACTIONS (tools/validate_infra.py): say which IAM "
                                    "action it needs")
    return actions, problems


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_ref_to(node: Any, logical_id: str) -> bool:
    """!Ref X or !GetAtt X.Arn / [X, Arn]."""
    if not isinstance(node, dict):
        return False
    if node.get("Ref") == logical_id:
        return True
    att = node.get("Fn::GetAtt")
    if isinstance(att, str):
        att = att.split(".", 1)
    return isinstance(att, list) and att and att[0] == logical_id


def _conditions(st: dict[str, Any], operator: str) -> dict[str, Any]:
    return (st.get("Condition") or {}).get(operator) or {}


def check_queue_policy(where: str, queue_id: str, doc: dict[str, Any], role_id: str,
                       *, sender_checked: bool = True) -> list[str]:
    """The deny statements one queue policy must have."""
    problems = []
    stmts = _statements(doc)
    denies = [st for st in stmts if st.get("Effect") == "Deny" and st.get("Principal") == "*"]

    def on_queue(st: dict[str, Any]) -> bool:
        return any(_is_ref_to(r, queue_id) for r in _as_list(st.get("Resource")))

    send = [st for st in denies if on_queue(st) and "sqs:SendMessage" in _as_list(st["Action"])
            and "aws:PrincipalArn" in _conditions(st, "ArnNotEquals")]
    if not send:
        problems.append(f"{where}: {queue_id}: no Deny of sqs:SendMessage unless aws:SourceArn is "
                        "the sender (or the principal the connector role)")
    for st in send:
        cond = _conditions(st, "ArnNotEquals")
        if sender_checked and "aws:SourceArn" not in cond:
            problems.append(f"{where}: {queue_id}: the SendMessage deny does not test "
                            "aws:SourceArn")
        if not _is_ref_to(cond.get("aws:PrincipalArn"), role_id):
            problems.append(f"{where}: {queue_id}: the SendMessage deny exempts a principal "
                            "other than the connector role")
    consume = [st for st in denies if on_queue(st)
               and CONSUME_ACTIONS <= set(_as_list(st["Action"]))]
    if not consume:
        problems.append(f"{where}: {queue_id}: no Deny of {', '.join(sorted(CONSUME_ACTIONS))} "
                        "for everyone but the connector role")
    for st in consume:
        if not _is_ref_to(_conditions(st, "ArnNotEquals").get("aws:PrincipalArn"), role_id):
            problems.append(f"{where}: {queue_id}: the consume deny must exempt only the "
                            "connector role (ArnNotEquals aws:PrincipalArn)")
    tls = [st for st in denies if on_queue(st) and "sqs:*" in _as_list(st["Action"])
           and str(_conditions(st, "Bool").get("aws:SecureTransport")).lower() == "false"]
    if not tls:
        problems.append(f"{where}: {queue_id}: no Deny of sqs:* without aws:SecureTransport")
    return problems


def _pattern_of(tpl: dict[str, Any], param: str) -> re.Pattern[str] | None:
    pattern = tpl.get("Parameters", {}).get(param, {}).get("AllowedPattern")
    return re.compile(pattern) if pattern else None


# values each parameter pattern must accept / refuse (CloudFormation anchors nothing itself)
PARAMETER_CASES = {
    "AppIdUri": (["api://11111111-2222-3333-4444-555555555555", "api://sentinel-s3",
                  "https://contoso.onmicrosoft.com/sentinel"],
                 ["", "sentinel", "api://x/.default", "api://a b", "http://contoso.com/app",
                  "api://x\"", "https://contoso.com/app/.default "]),
    "LogKeyPrefix": (["", "AWSLogs/", "AWSLogs/123456789012/CloudTrail/"],
                     ["logs", "AWSLogs/*", "a/b", 'a"/']),
    "LogKeyPrefix2": (["", "vpc/"], ["vpc"]),
    "LogKeyPrefix3": (["", "vpc/"], ["vpc"]),
    "LogKeyPrefix4": (["", "vpc/"], ["vpc"]),
}
# every template declares these (the trust pins the audience); the others are checked where a
# template declares them (the Security Lake subscriber has no LogKeyPrefix*: its folders are fixed)
REQUIRED_PARAMETERS = {"AppIdUri"}


def check_aws_hardening() -> Stage:
    stage = Stage("aws-hardening")
    used, problems = code_aws_actions()
    for p in problems:
        stage.fail(p)
    stage.counts["code_actions"] = len(used)
    for path in cfn_templates():
        where = rel(path)
        try:
            tpl = _decode_cfn(path)
        except ValueError as err:
            stage.fail(str(err))
            continue
        resources = tpl.get("Resources", {})
        roles = [k for k, v in resources.items() if v.get("Type") == "AWS::IAM::Role"]
        queues = [k for k, v in resources.items() if v.get("Type") == "AWS::SQS::Queue"]
        if len(roles) != 1:
            stage.fail(f"{where}: expected one connector role, found {len(roles)}")
            continue
        role_id = roles[0]
        role = resources[role_id]["Properties"]
        # least privilege: the role holds what the code calls, nothing more
        actions: set[str] = set()
        for pol in role.get("Policies", []):
            for st in _statements(pol["PolicyDocument"]):
                acts = set(_as_list(st.get("Action")))
                actions |= acts
                if "kms:Decrypt" in acts:
                    cond = st.get("Condition") or {}
                    if "kms:ViaService" not in cond.get("StringEquals", {}):
                        stage.fail(f"{where}: {st.get('Sid')}: kms:Decrypt without kms:ViaService")
                    context = [k for op in cond.values() for k in op
                               if k.startswith("kms:EncryptionContext:")]
                    if not context:
                        stage.fail(f"{where}: {st.get('Sid')}: kms:Decrypt without an "
                                   "encryption-context condition")
        for act in sorted(actions - used - {"kms:Decrypt"}):
            stage.fail(f"{where}: {role_id}: {act} is granted but shared/ never calls it")
        for act in sorted(used - actions - OPTIONAL_CODE_ACTIONS):
            stage.fail(f"{where}: {role_id}: shared/ calls an operation needing {act}, which "
                       "the role lacks")
        stage.counts["role_actions"] = len(actions)
        # the trust pins the session name the code uses
        trust = role["AssumeRolePolicyDocument"]
        body = trust["Fn::Sub"] if isinstance(trust, dict) and "Fn::Sub" in trust else None
        if body is None:
            stage.fail(f"{where}: {role_id}: trust policy must be a !Sub JSON document")
        else:
            from shared.config import Source
            from shared.credentials import session_name

            body = body if isinstance(body, str) else body[0]
            name = "prod-us-east-1." + "x" * 37  # the longest SourceName the pattern allows
            doc = json.loads(_substitute_params(body, {"SourceName": name}))
            pinned = {st.get("Condition", {}).get("StringEquals", {}).get("sts:RoleSessionName")
                      for st in doc.get("Statement", [])}
            expected = session_name(Source(name=name, queue_url="", region="us-east-1"))
            if pinned != {expected}:
                stage.fail(f"{where}: {role_id}: trust policy must pin sts:RoleSessionName to "
                           f"the connector's session name {expected!r} (found {pinned})")
            source_pattern = _pattern_of(tpl, "SourceName")
            if source_pattern is None or not source_pattern.match(name) or \
                    source_pattern.match(name + "x"):
                stage.fail(f"{where}: SourceName must allow at most {len(name)} characters "
                           "(sentinel-s3-<name> is at most 64, STS's limit)")
        for param, (good, bad) in PARAMETER_CASES.items():
            if param not in REQUIRED_PARAMETERS and param not in tpl.get("Parameters", {}):
                continue
            pattern = _pattern_of(tpl, param)
            if pattern is None:
                stage.fail(f"{where}: parameter {param} needs an AllowedPattern")
                continue
            for value in good:
                if not pattern.fullmatch(value):
                    stage.fail(f"{where}: {param} refuses the valid value {value!r}")
            for value in bad:
                if pattern.fullmatch(value):
                    stage.fail(f"{where}: {param} accepts {value!r}")
        # every queue has a policy with the denies; the dead-letter queue has an alarm
        policies: dict[str, dict[str, Any]] = {}
        for res in resources.values():
            if res.get("Type") == "AWS::SQS::QueuePolicy":
                for q in res["Properties"].get("Queues", []):
                    if isinstance(q, dict) and "Ref" in q:
                        policies[q["Ref"]] = res["Properties"]["PolicyDocument"]
        dlqs = {v["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                for v in resources.values() if v.get("Type") == "AWS::SQS::Queue"
                and "RedrivePolicy" in v.get("Properties", {})}
        for queue_id in queues:
            if queue_id not in policies:
                stage.fail(f"{where}: {queue_id}: no queue policy")
                continue
            for p in check_queue_policy(where, queue_id, policies[queue_id], role_id):
                stage.fail(p)
        alarms = [v["Properties"] for v in resources.values()
                  if v.get("Type") == "AWS::CloudWatch::Alarm"]
        for dlq in dlqs:
            if not any(a.get("MetricName") == "ApproximateNumberOfMessagesVisible" and
                       any(_is_ref_to(d.get("Value"), dlq) for d in a.get("Dimensions", []))
                       for a in alarms):
                stage.fail(f"{where}: {dlq}: no CloudWatch alarm on the dead-letter queue depth "
                           "(ApproximateNumberOfMessagesVisible)")
        stage.counts["queues"] = stage.counts.get("queues", 0) + len(queues)
    return stage


# =================================================================================================
# Azure hardening: audit logs to the workspace, no basic-auth publishing, private-network mode
# =================================================================================================
# module file -> (symbol of the resource a diagnostic setting is scoped to, log categories)
REQUIRED_DIAGNOSTICS = [
    ("keyvault.bicep", "vault", {"AuditEvent"}),
    ("storage.bicep", "blobService", {"StorageRead", "StorageWrite", "StorageDelete"}),
    ("storage.bicep", "queueService", {"StorageRead", "StorageWrite", "StorageDelete"}),
    ("storage.bicep", "tableService", {"StorageRead", "StorageWrite", "StorageDelete"}),
    ("function-app.bicep", "functionApp", {"FunctionAppLogs"}),
    ("dcr.bicep", "dataCollectionRule", {"LogErrors"}),
]
PRIVATE_ENDPOINT_GROUPS = {"blob", "queue", "table", "vault"}


def _body(node: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's own config, under any condition / loop wrapper."""
    config = node.get("config", {})
    while isinstance(config, dict) and "config" in config and \
            ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def _condition(node: dict[str, Any]) -> Any:
    return node.get("config", {}).get("condition")


def _mentions(node: Any, name: str) -> bool:
    return name in json.dumps(node, default=str)


def check_azure_hardening() -> Stage:
    stage = Stage("azure-hardening")
    modules = BICEP_DIR / "modules"
    for file, target, categories in REQUIRED_DIAGNOSTICS:
        tree = parse_bicep(modules / file)
        found = False
        for res in tree.get("resources", {}).values():
            body = _body(res)
            if res.get("type") != "Microsoft.Insights/diagnosticSettings" or \
                    body.get("scope") != target:
                continue
            props = body.get("properties", {})
            enabled = {lg.get("category") for lg in props.get("logs", []) if lg.get("enabled")}
            if not props.get("workspaceId"):
                stage.fail(f"{file}: diagnostic setting of {target} has no workspaceId")
            elif not categories <= enabled:
                stage.fail(f"{file}: diagnostic setting of {target} lacks "
                           f"{', '.join(sorted(categories - enabled))}")
            else:
                found = True
        if not found:
            stage.fail(f"{file}: no diagnostic setting sending {', '.join(sorted(categories))} "
                       f"of {target} to the workspace")
        stage.counts["diagnostic_settings"] = stage.counts.get("diagnostic_settings", 0) + found
    # publishing: no FTP / SCM basic authentication
    app = parse_bicep(modules / "function-app.bicep")
    policies = {_body(r).get("name"): _body(r).get("properties", {}).get("allow")
                for r in app.get("resources", {}).values()
                if r.get("type") == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"}
    for name in ("ftp", "scm"):
        if policies.get(name) is not False:
            stage.fail(f"function-app.bicep: basicPublishingCredentialsPolicies '{name}' must "
                       "set allow: false (no basic-auth publishing)")
    site = next((_body(r) for r in app.get("resources", {}).values()
                 if r.get("type") == "Microsoft.Web/sites"), {})
    if not _mentions(site.get("properties", {}).get("virtualNetworkSubnetId"),
                     "virtualNetworkSubnetResourceId"):
        stage.fail("function-app.bicep: the site's virtualNetworkSubnetId must come from "
                   "virtualNetworkSubnetResourceId (VNet integration in private-network mode)")
    # the data plane follows publicNetworkAccess, and Deny follows Disabled
    for file, symbol in (("storage.bicep", "storageAccount"), ("keyvault.bicep", "vault")):
        tree = parse_bicep(modules / file)
        props = _body(tree["resources"][symbol]).get("properties", {})
        if props.get("publicNetworkAccess") != "publicNetworkAccess":
            stage.fail(f"{file}: {symbol}.publicNetworkAccess must be the publicNetworkAccess "
                       "parameter (Disabled in private-network mode)")
        acl = props.get("networkAcls", {}).get("defaultAction")
        if not (_mentions(acl, "publicNetworkAccess") and _mentions(acl, "Deny")):
            stage.fail(f"{file}: {symbol}.networkAcls.defaultAction must be Deny when public "
                       "access is Disabled")
    # main.bicep: the mode is a parameter, off by default, and wires every part
    main = parse_bicep(MAIN_BICEP)
    param = main.get("parameters", {}).get("privateNetworking", {})
    if param.get("type") != "bool" or param.get("default") is not False:
        stage.fail("main.bicep: param privateNetworking bool = false is missing (off by default)")
    mods = main.get("modules", {})
    for name in ("storage", "keyVault"):
        value = _body(mods.get(name, {})).get("params", {}).get("publicNetworkAccess")
        resolved = main.get("variables", {}).get(value, {}).get("value") \
            if isinstance(value, str) else value
        if not (_mentions(resolved, "privateNetworking") and _mentions(resolved, "Disabled")):
            stage.fail(f"main.bicep: module {name} must get publicNetworkAccess Disabled when "
                       "privateNetworking is true")
    network = mods.get("network", {})
    if _condition(network) != "privateNetworking" or \
            _body(network) == {} or "network.bicep" not in json.dumps(network.get("detail")):
        stage.fail("main.bicep: module network (modules/network.bicep) must be deployed "
                   "if (privateNetworking)")
    endpoints = [m for m in mods.values() if "private-endpoint.bicep" in
                 json.dumps(m.get("detail"))]
    groups: set[str] = set()
    for m in endpoints:
        if _condition(m) != "privateNetworking":
            stage.fail("main.bicep: private endpoints must be deployed if (privateNetworking)")
        loop = m.get("config", {}).get("loop_type", {}).get("detail", {})
        items = main.get("variables", {}).get(loop.get("array_name", ""), {}).get("value", [])
        groups |= {item.get("name") for item in items if isinstance(item, dict)}
    for group in sorted(PRIVATE_ENDPOINT_GROUPS - groups):
        stage.fail(f"main.bicep: no private endpoint for {group}")
    app_params = _body(mods.get("functionApp", {})).get("params", {})
    if not _mentions(app_params.get("virtualNetworkSubnetResourceId"), "privateNetworking"):
        stage.fail("main.bicep: the Function App must get the network's app subnet when "
                   "privateNetworking is true")
    net = parse_bicep(modules / "network.bicep")
    delegations = {d.get("properties", {}).get("serviceName")
                   for r in net.get("resources", {}).values()
                   if r.get("type") == "Microsoft.Network/virtualNetworks"
                   for sub in _body(r).get("properties", {}).get("subnets", [])
                   if sub.get("name") == "app"
                   for d in sub.get("properties", {}).get("delegations", [])}
    if "Microsoft.App/environments" not in delegations:
        stage.fail("network.bicep: the app subnet must be delegated to Microsoft.App/environments "
                   "(Flex Consumption VNet integration)")
    stage.counts["private_endpoints"] = len(groups)
    return stage


# =================================================================================================
# checkov
# =================================================================================================
def run_checkov(directory: Path, framework: str) -> dict[str, Any]:
    exe = VENV_BIN / "checkov"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "checkov.main"]
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd + ["-d", str(directory), "--framework", framework, "-o", "json",
                                 "--skip-download", "--compact"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    out = proc.stdout.strip()
    if not out:
        raise RuntimeError(f"checkov {framework} printed nothing (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-400:]}")
    data = json.loads(out)
    if isinstance(data, list):  # one report per framework
        data = next((d for d in data if d.get("check_type") == framework), data[0])
    if "results" not in data:  # nothing scanned: {"passed": 0, "failed": 0, ...}
        data = {"summary": data, "results": {}}
    return data


def check_checkov(frameworks: Iterable[tuple[str, Path]] | None = None,
                  reports: dict[str, dict[str, Any]] | None = None) -> Stage:
    stage = Stage("checkov")
    frameworks = list(frameworks or [("bicep", BICEP_DIR), ("cloudformation", AWS_DIR)])
    totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    for framework, directory in frameworks:
        try:
            data = reports[framework] if reports and framework in reports \
                else run_checkov(directory, framework)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as err:
            stage.fail(str(err))
            continue
        summary = data.get("summary", {})
        results = data.get("results", {})
        for key in totals:
            stage.counts[f"{framework}_{key}"] = int(summary.get(key, 0))
            totals[key] += int(summary.get(key, 0))
        if summary.get("resource_count", 0) == 0:
            stage.fail(f"checkov {framework}: no resources scanned under {rel(directory)}")
        for c in results.get("failed_checks", []):
            stage.fail(f"checkov {framework}: {c['check_id']} {c.get('check_name', '')} "
                       f"FAILED for {c.get('resource')} ({c.get('file_path')}:"
                       f"{(c.get('file_line_range') or ['?'])[0]})")
        for path in results.get("parsing_errors", []) or []:
            stage.fail(f"checkov {framework}: cannot parse {path}")
        for c in results.get("skipped_checks", []):
            reason = (c.get("check_result") or {}).get("suppress_comment") or ""
            if not reason.strip() or reason.strip() == "No comment provided":
                stage.fail(f"checkov {framework}: {c['check_id']} skipped without a reason "
                           f"({c.get('resource')})")
    for key, value in totals.items():
        stage.counts[key] = value
    return stage


# =================================================================================================
# Driver
# =================================================================================================
CHECKS: list[tuple[str, Callable[[], Stage]]] = [
    ("bicep-parse", check_bicep_parse),
    ("streams", check_streams),
    ("app-settings", check_app_settings),
    ("rbac", check_rbac),
    ("parameters", check_parameters),
    ("kql", check_kql),
    ("health-values", check_health_values),
    ("cfn-lint", check_cfn_lint),
    ("aws-policy", check_aws_policy),
    ("aws-hardening", check_aws_hardening),
    ("azure-hardening", check_azure_hardening),
    ("checkov", check_checkov),
]


def run(skip: set[str] | None = None) -> list[Stage]:
    stages = []
    parsed_ok = True
    for name, fn in CHECKS:
        if skip and name in skip:
            continue
        if name != "bicep-parse" and not parsed_ok and name in {"streams", "app-settings",
                                                                  "rbac", "parameters", "kql",
                                                                  "health-values", "checkov",
                                                                  "azure-hardening"}:
            stages.append(Stage(name, problems=["not run: a .bicep file does not parse"]))
            continue
        start = time.monotonic()
        try:
            stage = fn()
        except Exception as err:  # a crash is a failure of that stage, not of the run
            stage = Stage(name, problems=[f"crashed: {type(err).__name__}: {err}"])
        stage.seconds = time.monotonic() - start
        stages.append(stage)
        if name == "bicep-parse":
            parsed_ok = stage.ok
    return stages


def summary(stages: list[Stage]) -> str:
    lines = []
    for st in stages:
        counts = ", ".join(f"{k}={v}" for k, v in st.counts.items())
        status = "ok  " if st.ok else "FAIL"
        lines.append(f"{status} {st.name:<15} {st.seconds:5.1f}s  {counts}")
        for p in st.problems:
            lines.append(f"       - {p}")
        for n in st.notes:
            lines.append(f"       . {n}")
    failed = [s.name for s in stages if not s.ok]
    lines.append(f"{len(stages) - len(failed)}/{len(stages)} stages passed"
                 + (f"; failed: {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Offline checks of infra/ (see module doc).")
    parser.add_argument("--skip-checkov", action="store_true", help="skip the checkov stage")
    parser.add_argument("--json", action="store_true", help="print the stages as JSON")
    args = parser.parse_args(argv)
    skip = {"checkov"} if args.skip_checkov else set()
    stages = run(skip)
    if args.json:
        print(json.dumps([st.__dict__ for st in stages], indent=1))
    else:
        print(summary(stages))
    return 0 if all(s.ok for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
