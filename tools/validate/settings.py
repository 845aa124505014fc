"""Settings: what the Bicep deployment hands the app, held to what the code reads.

The code's side is shared.config (SETTINGS_DOC and its own parsers, imported); the deployment's
side is infra/bicep/main.bicep (read with pycep-parser) and main.parameters.example.json.

Stages (tools/validate_infra.py runs them):

* app-settings  every setting in shared.config.SETTINGS_DOC (minus local-only ones) is set in
                main.bicep, nothing else is set except an explicit list of host settings, and no
                setting Flex Consumption rejects; no key or SAS in a value; identity-based
                storage and App Insights auth; LOGS_INGESTION_ENDPOINT / DCR_IMMUTABLE_ID come
                from DCR 1 and DCR_ROUTES from the dcrRoutes output of the streams module
* parameters    every main.bicep parameter has an @description saying Required. / Optional.;
                main.parameters.example.json names only real parameters, gives every required
                one, and its awsSources passes shared.config's own AWS_SOURCES parser
"""
from __future__ import annotations

import json
import re
from typing import Any

from .common import MAIN_BICEP, PARAMS_EXAMPLE, Stage, function_call, parse_bicep, rel

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

# The app sends each table to the DCR holding its stream: DCR 1 is the default route and
# DCR_ROUTES is the streams module's table -> {endpoint, dcrImmutableId} map (infra/README.md).
DCR_WIRING = {
    "LOGS_INGESTION_ENDPOINT": "streams.outputs.dcrs[0].logsIngestionEndpoint",
    "DCR_IMMUTABLE_ID": "streams.outputs.dcrs[0].immutableId",
    "DCR_ROUTES": "string(streams.outputs.dcrRoutes)",
}


# =================================================================================================
# App settings
# =================================================================================================
def bicep_app_settings() -> dict[str, Any]:
    main = parse_bicep(MAIN_BICEP)
    var = main["variables"].get("appSettings")
    if not var or not isinstance(var.get("value"), dict):
        raise ValueError("main.bicep has no `var appSettings = {...}` object literal")
    return var["value"]


def accessor_path(node: Any) -> str | None:
    """pycep's expression for `a.b[0].c` or `string(a.b)` as that text; None otherwise."""
    if isinstance(node, str):
        return node
    if isinstance(node, int) and not isinstance(node, bool):
        return str(node)
    fn = function_call(node)
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
