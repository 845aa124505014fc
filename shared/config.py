"""Typed settings read once from the environment.

Every value the connector reads is declared here, with its environment variable, its default
and what is expected. ``load_settings()`` reports *every* missing or invalid value in one
``ConfigError`` so an operator fixes them in one pass. ``SETTINGS_DOC`` is the list the README
table, ``local.settings.example.json`` and the Bicep app settings are checked against.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .filters import Filters
from .filters import parse as parse_filters

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class FormatRule:
    """A per-source override: keys matching ``pattern`` are parsed as ``format``."""

    pattern: re.Pattern[str]
    format: str


@dataclass(frozen=True)
class Source:
    """One AWS account/region/SQS queue the connector pulls from."""

    name: str
    queue_url: str
    region: str
    role_arn: str | None = None
    access_key_id_secret: str | None = None
    secret_access_key_secret: str | None = None
    # The allow-list: bucket -> key prefixes ("" = the whole bucket, said explicitly). It fails
    # closed: an empty mapping allows nothing (load_settings refuses one anyway).
    buckets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    format_rules: tuple[FormatRule, ...] = ()
    # key prefix -> sensitive kind (cloudtrail, guardduty, securityhub) that prefix carries,
    # longest prefix first: the only way content without AWS's key layout becomes such rows.
    # A prefix declared for several kinds (an EventBridge stream of findings) has one pair each
    kinds: tuple[tuple[str, str], ...] = ()
    filters: Filters = field(default_factory=Filters)  # shared/filters.py: drop before batching
    # key prefixes whose unrecognised objects go to AWSS3Raw_CL; anything else unrecognised is
    # dead-lettered (the raw table is readable by everyone in the workspace: opt in, per prefix)
    raw_prefixes: tuple[str, ...] = ()

    @property
    def uses_keys(self) -> bool:
        return self.role_arn is None

    def allows(self, bucket: str, key: str) -> bool:
        """True when s3://bucket/key is inside this source's allow-list. The poller, the queue
        trigger and the CLI's replay/backfill all ask: a work item is never trusted alone."""
        prefixes = self.buckets.get(bucket)
        if not prefixes:
            return False
        return any(key.startswith(p) for p in prefixes)

    def kind_for(self, key: str) -> str | None:
        """The kind the source declares for ``key``'s prefix (``"kinds"``), or None (the
        first, when the prefix is declared for several: see ``kinds_for``)."""
        for prefix, kind in self.kinds:
            if key.startswith(prefix):
                return kind
        return None

    def kinds_for(self, key: str) -> frozenset[str]:
        """Every kind the source declares for ``key``'s longest declared prefix."""
        match = None
        out = set()
        for prefix, kind in self.kinds:
            if match is None and key.startswith(prefix):
                match = prefix
            if prefix == match:
                out.add(kind)
        return frozenset(out)

    def allows_raw(self, key: str) -> bool:
        """True when an unrecognised object under ``key`` may go to the raw table."""
        return any(key.startswith(p) for p in self.raw_prefixes)

    def format_for(self, key: str) -> str | None:
        for rule in self.format_rules:
            if rule.pattern.search(key):
                return rule.format
        return None


@dataclass(frozen=True)
class Settings:
    sources: tuple[Source, ...]
    logs_ingestion_endpoint: str
    dcr_immutable_id: str
    # table -> (endpoint, DCR immutable id) for tables not in the default DCR
    dcr_routes: Mapping[str, tuple[str, str]]
    storage_connection: str | None
    queue_service_uri: str | None
    table_service_uri: str | None
    azure_client_id: str | None
    aws_web_identity_audience: str | None
    key_vault_url: str | None
    work_queue: str
    poison_queue: str
    checkpoint_table: str
    poll_schedule: str
    poll_time_budget_seconds: float
    sqs_wait_seconds: int
    sqs_visibility_timeout: int
    max_batch_bytes: int
    max_uploads_in_flight: int
    upload_max_attempts: int
    upload_backoff_base_seconds: float
    upload_backoff_max_seconds: float
    circuit_failure_threshold: int
    circuit_cooldown_seconds: float
    max_dequeue_count: int
    invocation_budget_seconds: float  # host.json functionTimeout less a margin
    max_decompressed_bytes: int = 10 * 1024 ** 3
    max_expansion_ratio: float = 1000.0

    @property
    def decompress_limits(self) -> Any:
        """The caps ``decompress`` applies to one object (shared/decompress.py)."""
        from .decompress import Limits

        return Limits(max_bytes=self.max_decompressed_bytes, max_ratio=self.max_expansion_ratio)

    def route(self, table: str) -> tuple[str, str]:
        """(Logs Ingestion endpoint, DCR immutable id) that accepts ``table``."""
        return self.dcr_routes.get(table, (self.logs_ingestion_endpoint, self.dcr_immutable_id))

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class SettingDoc:
    name: str
    required: str  # "yes", "no", or the condition under which it is required
    default: str
    description: str


SETTINGS_DOC: tuple[SettingDoc, ...] = (
    SettingDoc("AWS_SOURCES", "yes", "",
               "JSON list of sources: name, queueUrl, region, roleArn (federation) or "
               "accessKeyIdSecret + secretAccessKeySecret (Key Vault secret names), buckets "
               "(required allow-list {bucket: [prefixes]}; each prefix ends in '/', \"\" = the "
               "whole bucket), formatRules ([{pattern, format}]), rawPrefixes (key prefixes "
               "whose unrecognised objects go to AWSS3Raw_CL; default none: dead-lettered)."),
    SettingDoc("LOGS_INGESTION_ENDPOINT", "yes", "",
               "Logs Ingestion endpoint of the DCR (kind Direct) or of a DCE, https://..."),
    SettingDoc("DCR_IMMUTABLE_ID", "yes", "", "Immutable id of the DCR (dcr-...)."),
    SettingDoc("DCR_ROUTES", "when the streams span several DCRs", "{}",
               "JSON {table: {endpoint, dcrImmutableId}} for tables whose stream is in another "
               "DCR than the default one (a DCR holds at most 10 streams); the Bicep output "
               "dcrRoutes."),
    SettingDoc("AzureWebJobsStorage", "unless __queueServiceUri is set",
               "UseDevelopmentStorage=true",
               "Storage connection string (local/Azurite). In Azure use the identity-based "
               "AzureWebJobsStorage__queueServiceUri / __tableServiceUri settings instead."),
    SettingDoc("AzureWebJobsStorage__queueServiceUri", "in Azure", "",
               "Queue service URI for identity-based storage access."),
    SettingDoc("AzureWebJobsStorage__tableServiceUri", "in Azure", "",
               "Table service URI (checkpoints) for identity-based storage access."),
    SettingDoc("AZURE_CLIENT_ID", "with a user-assigned identity", "",
               "Client id of the user-assigned managed identity the app runs as."),
    SettingDoc("AWS_WEB_IDENTITY_AUDIENCE", "when a source has roleArn", "",
               "App ID URI of the Entra app registration trusted by the AWS IAM OIDC provider."),
    SettingDoc("KEY_VAULT_URL", "when a source uses access keys", "",
               "Key Vault holding the AWS access keys (https://<vault>.vault.azure.net/)."),
    SettingDoc("WORK_QUEUE", "no", "s3-objects", "Azure Storage queue of object references."),
    SettingDoc("POISON_QUEUE", "no", "s3-objects-poison",
               "Queue of dead-lettered items (must be <WORK_QUEUE>-poison, the host's name)."),
    SettingDoc("CHECKPOINT_TABLE", "no", "s3objectcheckpoints",
               "Azure Table with per-object progress and dedup state."),
    SettingDoc("POLL_SCHEDULE", "no", "0 */1 * * * *", "NCRONTAB schedule of the SQS poller."),
    SettingDoc("POLL_TIME_BUDGET_SECONDS", "no", "240",
               "How long one poller run may drain SQS before it stops."),
    SettingDoc("SQS_WAIT_SECONDS", "no", "20", "SQS long-poll wait (0-20)."),
    SettingDoc("SQS_VISIBILITY_TIMEOUT", "no", "300",
               "Seconds a received notification stays hidden while it is forwarded (30-43200)."),
    SettingDoc("MAX_BATCH_BYTES", "no", "1000000",
               "Largest uncompressed JSON body of one upload (<= 1000000)."),
    SettingDoc("MAX_UPLOADS_IN_FLIGHT", "no", "4", "Concurrent uploads per object."),
    SettingDoc("UPLOAD_MAX_ATTEMPTS", "no", "6",
               "Attempts per batch on transient errors before the work item is retried (1-10)."),
    SettingDoc("UPLOAD_BACKOFF_BASE_SECONDS", "no", "1.0",
               "First retry delay (doubles, jittered)."),
    SettingDoc("UPLOAD_BACKOFF_MAX_SECONDS", "no", "60", "Largest retry delay (<= 120)."),
    SettingDoc("MAX_DECOMPRESSED_BYTES", "no", "10737418240",
               "Most bytes one object may decompress to (10 GiB); a larger one is dead-lettered "
               "with both numbers."),
    SettingDoc("MAX_EXPANSION_RATIO", "no", "1000",
               "Most decompressed bytes per stored byte, enforced after the first 16 MiB "
               "(a decompression bomb is dead-lettered with both numbers; 10-100000)."),
    SettingDoc("CIRCUIT_FAILURE_THRESHOLD", "no", "3",
               "Objects in a row that fail transiently (on any instance) before the circuit of "
               "their Logs Ingestion endpoint opens (1-100)."),
    SettingDoc("CIRCUIT_COOLDOWN_SECONDS", "no", "30",
               "How long an open circuit defers work before one trial object (doubles while "
               "trials fail, up to 600; 1-600)."),
)

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
# S3 bucket naming rules (general purpose buckets): 3-63 of a-z 0-9 . -, starting and ending
# with a letter or digit, no "..", not an IP address, none of the reserved prefixes/suffixes.
# An ARN (an access point, another account's bucket) is not a bucket name.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_BUCKET_RESERVED = (("xn--", "sthree-", "amzn-s3-demo-"), ("-s3alias", "--ol-s3", ".mrap",
                                                           "--x-s3", "--table-s3"))
# Key Vault secret names: 1-127 of letters, digits and '-'. A secret access key (40 chars with
# '/' or '+') never fits; an access key id (AKIA/ASIA + 16) would, so it is refused by shape.
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_ACCESS_KEY_ID = re.compile(r"^(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}$")


def is_bucket_name(name: object) -> bool:
    """True for a valid S3 bucket name (never an ARN, an access point alias or an IP)."""
    return (isinstance(name, str) and bool(_BUCKET.match(name)) and ".." not in name
            and not _IPV4.match(name) and not name.startswith(_BUCKET_RESERVED[0])
            and not name.endswith(_BUCKET_RESERVED[1]))


def is_secret_name(name: object) -> bool:
    """True for a valid Key Vault secret name."""
    return (isinstance(name, str) and bool(_SECRET_NAME.match(name))
            and not _ACCESS_KEY_ID.match(name))


def _host_max_dequeue_count() -> int:
    """maxDequeueCount from host.json: the code and the host must agree on the last attempt."""
    try:
        host = json.loads((ROOT / "host.json").read_text())
        return int(host["extensions"]["queues"]["maxDequeueCount"])
    except (OSError, KeyError, ValueError, TypeError):
        return 5


def _invocation_budget() -> float:
    """functionTimeout (host.json) less a minute for checkpoints, dead letters and health rows:
    work that would run past it is handed back to the queue, not killed by the host."""
    try:
        value = json.loads((ROOT / "host.json").read_text())["functionTimeout"]
        h, m, sec = (float(x) for x in value.split(":"))
        total = h * 3600 + m * 60 + sec
    except (OSError, KeyError, ValueError, TypeError):
        total = 600.0
    return max(30.0, total - 60.0)


class _Reader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.errors: list[str] = []

    def str(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.env.get(name, "").strip()
        if not value:
            if required:
                self.errors.append(f"{name}: missing ({_doc(name)})")
            return default
        if value.startswith("@Microsoft.KeyVault("):
            self.errors.append(f"{name}: the Key Vault reference was not resolved by the host "
                               "(check the identity's Key Vault Secrets User role)")
            return default
        return value

    def number(self, name: str, default: float, conv: Callable[[str], Any],
               lo: float, hi: float) -> Any:
        raw = self.env.get(name, "").strip()
        if not raw:
            return conv(str(default))
        try:
            value = conv(raw)
        except ValueError:
            self.errors.append(f"{name}: {raw!r} is not a number ({_doc(name)})")
            return conv(str(default))
        if not lo <= value <= hi:
            self.errors.append(f"{name}: {value} is outside {lo}..{hi}")
        return value

    def match(self, name: str, value: str, pattern: re.Pattern[str], expected: str) -> None:
        if not pattern.match(value):
            self.errors.append(f"{name}: {value!r} is not {expected}")


def _doc(name: str) -> str:
    for d in SETTINGS_DOC:
        if d.name == name:
            return d.description
    return ""


def _parse_sources(r: _Reader) -> tuple[Source, ...]:
    raw = r.str("AWS_SOURCES", required=True)
    if raw is None:
        return ()
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as err:
        r.errors.append(f"AWS_SOURCES: not valid JSON ({err.msg} at char {err.pos})")
        return ()
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        r.errors.append("AWS_SOURCES: expected a non-empty JSON list of source objects")
        return ()
    sources: list[Source] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"AWS_SOURCES[{i}]"
        if not isinstance(item, dict):
            r.errors.append(f"{where}: expected an object")
            continue
        name = str(item.get("name") or f"source{i}")
        where = f"AWS_SOURCES[{i}] ({name})"
        if not _SOURCE_NAME.match(name):
            r.errors.append(f"{where}: name must be 1-63 of [A-Za-z0-9_.-]")
        if name in names:
            r.errors.append(f"{where}: duplicate source name")
        names.add(name)
        queue_url = item.get("queueUrl")
        if not isinstance(queue_url, str) or not queue_url.startswith(("https://", "http://")):
            r.errors.append(f"{where}: queueUrl must be the SQS queue URL (https://sqs...)")
            queue_url = ""
        region = item.get("region")
        if not isinstance(region, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", region):
            r.errors.append(f"{where}: region must be an AWS region such as us-east-1")
            region = "us-east-1"
        role_arn = item.get("roleArn") or None
        key_id = item.get("accessKeyIdSecret") or None
        secret = item.get("secretAccessKeySecret") or None
        if role_arn and (key_id or secret):
            r.errors.append(f"{where}: give roleArn or the two Key Vault secret names, not both")
        elif not role_arn and not (key_id and secret):
            r.errors.append(f"{where}: needs roleArn (federation) or accessKeyIdSecret and "
                            "secretAccessKeySecret (Key Vault secret names)")
        if role_arn and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", role_arn):
            r.errors.append(f"{where}: roleArn {role_arn!r} is not an IAM role ARN")
        for field_name, value in (("accessKeyIdSecret", key_id),
                                  ("secretAccessKeySecret", secret)):
            if value and not is_secret_name(value):
                # never echo it: a pasted secret value is the likely mistake
                r.errors.append(f"{where}: {field_name} must be the *name* of a Key Vault secret "
                                "(1-127 of letters, digits and '-'); the value given is not a "
                                "name and is not shown")
        buckets = _parse_buckets(r, where, item.get("buckets"))
        raw_prefixes = _parse_prefixes(r, f"{where}: rawPrefixes", item.get("rawPrefixes", []),
                                       allow_empty_list=True)
        rules: list[FormatRule] = []
        for j, rule in enumerate(item.get("formatRules") or []):
            try:
                rules.append(FormatRule(re.compile(rule["pattern"]), str(rule["format"])))
            except (KeyError, TypeError, re.error) as err:
                r.errors.append(f"{where}: formatRules[{j}] needs a valid regex 'pattern' and a "
                                f"'format' ({err})")
        kinds = _parse_kinds(r, where, item.get("kinds"))
        filters = parse_filters(item.get("filters"), where, r.errors)
        sources.append(Source(name=name, queue_url=queue_url, region=region, role_arn=role_arn,
                              access_key_id_secret=key_id, secret_access_key_secret=secret,
                              buckets=buckets, format_rules=tuple(rules), kinds=kinds,
                              filters=filters, raw_prefixes=raw_prefixes))
    return tuple(sources)


def _parse_kinds(r: _Reader, where: str, raw: Any) -> tuple[tuple[str, str], ...]:
    """``"kinds": {"<key prefix>": "cloudtrail" | "guardduty" | "securityhub" | [kind, ...]}``:
    the prefixes whose objects (or records, in an object of several kinds) may become rows of
    those tables by their content (shared/formats/provenance)."""
    if raw is None:
        return ()
    from .formats.provenance import KINDS

    if not isinstance(raw, dict):
        r.errors.append(f"{where}: kinds must map key prefix -> kind ({', '.join(sorted(KINDS))})")
        return ()
    out = []
    for prefix, value in raw.items():
        listed = value if isinstance(value, list) and value else [value]
        for kind in listed:
            if not isinstance(kind, str) or kind not in KINDS:
                r.errors.append(f"{where}: kinds[{prefix!r}] is {value!r}; expected one of "
                                f"{', '.join(sorted(KINDS))} (or a list of them)")
                break
        else:
            out.extend((prefix, kind) for kind in dict.fromkeys(listed))
    return tuple(sorted(out, key=lambda pk: -len(pk[0])))


def _parse_prefixes(r: _Reader, where: str, value: Any, *,
                    allow_empty_list: bool = False) -> tuple[str, ...]:
    """A list of key prefixes, each "" (everything) or ending in '/': a prefix such as "logs"
    would also match "logs-evil/...", so it is refused rather than silently widened."""
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        r.errors.append(f"{where} must be a list of key prefixes (strings)")
        return ()
    if not value and not allow_empty_list:
        r.errors.append(f"{where} is empty: list the key prefixes to read, or [\"\"] for the "
                        "whole bucket")
        return ()
    for p in value:
        if p and not p.endswith("/"):
            r.errors.append(f"{where}: prefix {p!r} must end with '/' (as written it also "
                            f"matches {p + '-other/'!r}); use {p + '/'!r}")
    return tuple(value)


def _parse_buckets(r: _Reader, where: str, value: Any) -> dict[str, tuple[str, ...]]:
    """The required allow-list {bucket: [prefixes]}; nothing outside it is read."""
    if value is None or value == {}:
        r.errors.append(f"{where}: buckets is required: {{\"<bucket>\": [\"<prefix>/\"]}} "
                        "names every bucket and key prefix this source may read (\"\" = the "
                        "whole bucket); nothing outside it is read")
        return {}
    if not isinstance(value, dict):
        r.errors.append(f"{where}: buckets must map bucket name -> list of key prefixes "
                        "(a JSON object)")
        return {}
    buckets: dict[str, tuple[str, ...]] = {}
    for bucket, prefixes in value.items():
        if not is_bucket_name(bucket):
            r.errors.append(f"{where}: buckets key {bucket[:80]!r} is not an S3 bucket name "
                            "(3-63 of a-z 0-9 . -; not an ARN or access point alias)")
            continue
        buckets[bucket] = _parse_prefixes(r, f"{where}: buckets[{bucket!r}]", prefixes)
    return buckets


def _parse_routes(r: _Reader) -> dict[str, tuple[str, str]]:
    raw = r.str("DCR_ROUTES")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        r.errors.append(f"DCR_ROUTES: not valid JSON ({err.msg} at char {err.pos})")
        return {}
    if not isinstance(data, dict):
        r.errors.append("DCR_ROUTES: expected a JSON object {table: {endpoint, dcrImmutableId}}")
        return {}
    from .schemas import all_schemas

    known = all_schemas()
    routes = {}
    for table, target in data.items():
        endpoint = target.get("endpoint") if isinstance(target, dict) else None
        rule = target.get("dcrImmutableId") if isinstance(target, dict) else None
        if table not in known:
            r.errors.append(f"DCR_ROUTES: unknown table {table!r}")
        elif not (isinstance(endpoint, str) and endpoint.startswith("https://")
                  and isinstance(rule, str) and rule.startswith("dcr-")):
            r.errors.append(f"DCR_ROUTES[{table!r}]: needs endpoint (https://...) and "
                            "dcrImmutableId (dcr-...)")
        else:
            routes[table] = (endpoint.rstrip("/"), rule)
    return routes


def load_sources(env: Mapping[str, str] | None = None) -> tuple[Source, ...]:
    """Only AWS_SOURCES, validated like ``load_settings`` does (for ``inspect --source``)."""
    r = _Reader(os.environ if env is None else env)
    sources = _parse_sources(r)
    if r.errors:
        raise ConfigError(r.errors)
    return sources


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise one ConfigError listing all problems."""
    r = _Reader(os.environ if env is None else env)
    sources = _parse_sources(r)
    endpoint = r.str("LOGS_INGESTION_ENDPOINT", required=True) or ""
    if endpoint and not endpoint.startswith("https://"):
        r.errors.append("LOGS_INGESTION_ENDPOINT: must start with https:// (the SDK refuses to "
                        "send a bearer token over http)")
    dcr_id = r.str("DCR_IMMUTABLE_ID", required=True) or ""
    if dcr_id and not dcr_id.startswith("dcr-"):
        r.errors.append(f"DCR_IMMUTABLE_ID: {dcr_id!r} should look like dcr-<32 hex>")
    routes = _parse_routes(r)
    conn = r.str("AzureWebJobsStorage")
    queue_uri = r.str("AzureWebJobsStorage__queueServiceUri")
    table_uri = r.str("AzureWebJobsStorage__tableServiceUri")
    if not conn and not queue_uri:
        r.errors.append("AzureWebJobsStorage: missing (set a connection string, or "
                        "AzureWebJobsStorage__queueServiceUri and __tableServiceUri for identity)")
    if queue_uri and not conn and not table_uri:
        r.errors.append("AzureWebJobsStorage__tableServiceUri: missing (checkpoints need it)")
    audience = r.str("AWS_WEB_IDENTITY_AUDIENCE")
    vault = r.str("KEY_VAULT_URL")
    if audience and not re.match(r"^(api|https)://[^\s/][^\s]*$", audience):
        r.errors.append("AWS_WEB_IDENTITY_AUDIENCE: must be an App ID URI such as "
                        "api://<app-id> (the aud the AWS role trusts)")
    if any(s.role_arn for s in sources) and not audience:
        r.errors.append("AWS_WEB_IDENTITY_AUDIENCE: missing (a source uses roleArn; set the App ID "
                        "URI trusted by the AWS OIDC provider)")
    if any(s.uses_keys and s.access_key_id_secret for s in sources) and not vault:
        r.errors.append("KEY_VAULT_URL: missing (a source reads its AWS keys from Key Vault)")
    if vault and not vault.startswith("https://"):
        r.errors.append("KEY_VAULT_URL: must start with https://")
    work_queue = r.str("WORK_QUEUE", "s3-objects") or "s3-objects"
    poison_queue = r.str("POISON_QUEUE", f"{work_queue}-poison") or f"{work_queue}-poison"
    r.match("WORK_QUEUE", work_queue, _QUEUE_NAME, "a valid queue name (3-63 of a-z0-9-)")
    r.match("POISON_QUEUE", poison_queue, _QUEUE_NAME, "a valid queue name (3-63 of a-z0-9-)")
    if poison_queue != f"{work_queue}-poison":
        # the host moves a work item that crashed on its last attempt to <queue>-poison: any
        # other name splits the dead letters, and `replay` and the health depth miss those
        r.errors.append(f"POISON_QUEUE: must be {work_queue}-poison (the Functions host's "
                        f"poison queue for WORK_QUEUE), not {poison_queue!r}")
    table = r.str("CHECKPOINT_TABLE", "s3objectcheckpoints") or "s3objectcheckpoints"
    r.match("CHECKPOINT_TABLE", table, _TABLE_NAME, "a valid table name (3-63 alphanumerics)")
    schedule = r.str("POLL_SCHEDULE", "0 */1 * * * *") or "0 */1 * * * *"
    if len(schedule.split()) != 6:
        r.errors.append(f"POLL_SCHEDULE: {schedule!r} must have 6 NCRONTAB fields "
                        "(second minute hour day month day-of-week)")
    settings = Settings(
        sources=sources,
        logs_ingestion_endpoint=endpoint.rstrip("/"),
        dcr_immutable_id=dcr_id,
        dcr_routes=routes,
        storage_connection=conn,
        queue_service_uri=queue_uri,
        table_service_uri=table_uri,
        azure_client_id=r.str("AZURE_CLIENT_ID"),
        aws_web_identity_audience=audience,
        key_vault_url=vault,
        work_queue=work_queue,
        poison_queue=poison_queue,
        checkpoint_table=table,
        poll_schedule=schedule,
        poll_time_budget_seconds=r.number("POLL_TIME_BUDGET_SECONDS", 240, float, 1, 570),
        sqs_wait_seconds=r.number("SQS_WAIT_SECONDS", 20, int, 0, 20),
        sqs_visibility_timeout=r.number("SQS_VISIBILITY_TIMEOUT", 300, int, 30, 43200),
        max_batch_bytes=r.number("MAX_BATCH_BYTES", 1_000_000, int, 1024, 1_000_000),
        max_uploads_in_flight=r.number("MAX_UPLOADS_IN_FLIGHT", 4, int, 1, 32),
        upload_max_attempts=r.number("UPLOAD_MAX_ATTEMPTS", 6, int, 1, 10),
        upload_backoff_base_seconds=r.number("UPLOAD_BACKOFF_BASE_SECONDS", 1.0, float, 0, 60),
        upload_backoff_max_seconds=r.number("UPLOAD_BACKOFF_MAX_SECONDS", 60, float, 0, 120),
        circuit_failure_threshold=r.number("CIRCUIT_FAILURE_THRESHOLD", 3, int, 1, 100),
        circuit_cooldown_seconds=r.number("CIRCUIT_COOLDOWN_SECONDS", 30, float, 1, 600),
        max_dequeue_count=_host_max_dequeue_count(),
        invocation_budget_seconds=_invocation_budget(),
        max_decompressed_bytes=r.number("MAX_DECOMPRESSED_BYTES", 10 * 1024 ** 3, int,
                                        1024 ** 2, 1024 ** 4),
        max_expansion_ratio=r.number("MAX_EXPANSION_RATIO", 1000, float, 10, 100_000),
    )
    if r.errors:
        raise ConfigError(r.errors)
    return settings
