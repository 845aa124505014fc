"""Bicep: the Azure side (infra/bicep) read with pycep-parser, the checks checkov has no rule for.

Stages (tools/validate_infra.py runs them; checkov's own rules are tools/validate/checkov.py):

* bicep-parse      every infra/bicep/**/*.bicep parses with pycep-parser (checkov silently
                   passes a file it cannot parse, so this runs first)
* streams          infra/bicep/streams.bicep is what tools/gen_bicep_streams.py writes from
                   shared/schemas/*.json; DCR limits (10 streams / 10 dataFlows per DCR), stream
                   and column naming rules, every *_CL table has a custom table and TimeGenerated;
                   modules/dcr.bicep is one kind Direct DCR at API version 2023-03-11
* rbac             role assignments: named role-id variables, guid(scope.id, principalId, roleId)
                   names, principalType ServicePrincipal, the expected roles on the expected scopes
* azure-hardening  diagnostic settings send the audit logs to the workspace, no basic-auth
                   publishing, and the privateNetworking mode (off by default) wires VNet
                   integration, private endpoints and Deny network ACLs
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .common import BICEP_DIR, MAIN_BICEP, Stage, function_call, load_schemas, parse_bicep, rel

# ---- Azure Monitor limits (azure-monitor-limits-data-collection-rules / custom logs) -----------
MAX_STREAMS_PER_DCR = 10
MAX_DATAFLOWS_PER_DCR = 10
MAX_COLUMNS = 500
MAX_COLUMN_NAME = 45
RESERVED_COLUMNS = {"_ResourceId", "id", "_SubscriptionId", "TenantId", "Type", "UniqueId", "Title"}
STREAM_TYPES = {"string", "int", "long", "real", "boolean", "dynamic", "datetime"}

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

# ---- Azure hardening ---------------------------------------------------------------------------
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


# =================================================================================================
# Parsing
# =================================================================================================
def bicep_files() -> list[Path]:
    return sorted(BICEP_DIR.rglob("*.bicep"))


def _literal_string(node: Any) -> str | None:
    return node if isinstance(node, str) else None


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
            role_def = function_call(props.get("roleDefinitionId"))
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
            name = function_call(cfg.get("name"))
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
# Azure hardening: audit logs to the workspace, no basic-auth publishing, private-network mode
# =================================================================================================
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
