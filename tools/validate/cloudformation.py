"""CloudFormation: the AWS side (infra/aws/*.yaml, *.json), linted by cfn-lint and read with
cfn-lint's own decoder (cfnlint.decode: the short forms !Sub, !Ref, !GetAtt as plain dicts).

Stages (tools/validate_infra.py runs them; checkov's rules are tools/validate/checkov.py):

* cfn-lint       every template lint clean (cfn-lint in the venv)
* aws-policy     the IAM role: trust pins aud and sub, only the allowed actions, SSE on queues,
                 dead-letter redrive, queue policy conditions on aws:SourceArn/aws:SourceAccount,
                 the outputs, and an AwsSourcesEntry that shared.config's AWS_SOURCES parser takes
* aws-hardening  the role holds exactly the IAM actions of the boto3 operations shared/ calls
                 (read with ast: CODE_CALL_ACTIONS), kms:Decrypt is conditioned, the trust pins
                 the session name the code uses, parameter AllowedPatterns accept and refuse
                 sample values, every queue's policy denies foreign senders / consumers / plain
                 HTTP, and every dead-letter queue has a depth alarm
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import AWS_DIR, ROOT, Stage, rel, tool_command

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


# =================================================================================================
# cfn-lint and the role's policy
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
    cmd = tool_command("cfn-lint", "cfnlint")
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


def decoded_templates(stage: Stage) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each template with its decoded tree; one that cannot be decoded fails ``stage``."""
    for path in cfn_templates():
        try:
            yield path, _decode_cfn(path)
        except ValueError as err:
            stage.fail(str(err))


def _substitute_params(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", lambda m: values.get(m.group(1), "X"), text)


def check_aws_policy() -> Stage:
    stage = Stage("aws-policy")
    for path, tpl in decoded_templates(stage):
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
                                    "CODE_CALL_ACTIONS (tools/validate/cloudformation.py): say "
                                    "which IAM "
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
    for path, tpl in decoded_templates(stage):
        where = rel(path)
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
