"""Offline checks of the AWS side's hardening (tools/validate_infra.py, stage aws-hardening).

GIVEN infra/aws/connector.yaml, WHEN the stage runs, THEN it passes; and for each rule a copy
of the template with that rule removed fails it, so a rule that comes back out is caught."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from validate import bicep as bicep_checks  # noqa: E402
from validate import cloudformation  # noqa: E402

TEMPLATE = (ROOT / "infra" / "aws" / "connector.yaml").read_text()


def run_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> list[str]:
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "connector.yaml").write_text(text)
    monkeypatch.setattr(cloudformation, "AWS_DIR", aws)
    return cloudformation.check_aws_hardening().problems


def test_the_template_passes_the_hardening_stage():
    # both templates (connector.yaml and security-lake-subscriber.yaml): a queue and its
    # dead-letter queue each; role_actions is the last template's (the subscriber's)
    stage = cloudformation.check_aws_hardening()
    assert stage.ok, "\n".join(stage.problems)
    assert stage.counts["queues"] == 4 and stage.counts["role_actions"] == 6


SUBSCRIBER = (ROOT / "infra" / "aws" / "security-lake-subscriber.yaml").read_text()


def test_the_subscriber_template_passes_the_hardening_stage_alone(tmp_path, monkeypatch):
    assert run_on(tmp_path, monkeypatch, SUBSCRIBER) == []


@pytest.mark.parametrize("old, new, needle", [
    # the role may hide messages again, which the code never does
    ("                  - sqs:DeleteMessage\n                  - sqs:GetQueueAttributes\n",
     "                  - sqs:DeleteMessage\n                  - sqs:ChangeMessageVisibility\n"
     "                  - sqs:GetQueueAttributes\n",
     "sqs:ChangeMessageVisibility is granted but shared/ never calls it"),
    # kms:Decrypt for any object S3 decrypts with the lake key
    ("                    StringLike:\n                      kms:EncryptionContext:aws:s3:arn:",
     "                    StringLike:\n                      aws:PrincipalTag/x:",
     "DecryptSecurityLakeObjects: kms:Decrypt without an encryption-context condition"),
    (',\n                  "sts:RoleSessionName": "sentinel-s3-${SourceName}"', "",
     "must pin sts:RoleSessionName"),
    ('"^[A-Za-z0-9][A-Za-z0-9_.-]{0,51}$"', '"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"',
     "SourceName must allow at most 52 characters"),
    ("    AllowedPattern: \"^(?!.*/\\\\.default$)", "    MinLength: 1\n    Foo: \"",
     "parameter AppIdUri needs an AllowedPattern"),
    # anyone may send: EventBridge for another rule, or any principal with sqs:SendMessage
    ("          - Sid: DenySendExceptFromTheRule\n            Effect: Deny",
     "          - Sid: DenySendExceptFromTheRule\n            Effect: Allow",
     "NotificationQueue: no Deny of sqs:SendMessage"),
    ("          - Sid: DenyConsumeExceptTheConnector\n            Effect: Deny",
     "          - Sid: DenyConsumeExceptTheConnector\n            Effect: Allow",
     "NotificationQueue: no Deny of sqs:ChangeMessageVisibility"),
    ('                aws:SecureTransport: "false"', '                aws:SecureTransport: "true"',
     "NotificationQueue: no Deny of sqs:* without aws:SecureTransport"),
    ("      MetricName: ApproximateNumberOfMessagesVisible",
     "      MetricName: NumberOfMessagesSent", "no CloudWatch alarm on the dead-letter queue"),
])
def test_each_subscriber_rule_removed_fails_the_stage(tmp_path, monkeypatch, old, new, needle):
    assert old in SUBSCRIBER, old
    problems = run_on(tmp_path, monkeypatch, SUBSCRIBER.replace(old, new, 1))
    assert any(needle in p for p in problems), problems


def test_the_subscriber_dead_letter_queue_has_a_policy(tmp_path, monkeypatch):
    start = SUBSCRIBER.index("  DeadLetterQueuePolicy:")
    end = SUBSCRIBER.index("  DeadLetterQueueAlarm:")
    problems = run_on(tmp_path, monkeypatch, SUBSCRIBER[:start] + SUBSCRIBER[end:])
    assert any("DeadLetterQueue: no queue policy" in p for p in problems), problems


def test_a_prefix_parameter_is_checked_only_where_declared_but_app_id_uri_always(
        tmp_path, monkeypatch):
    # the subscriber declares no LogKeyPrefix* (and passes); a template without AppIdUri fails
    assert "LogKeyPrefix" not in SUBSCRIBER
    start = SUBSCRIBER.index("  AppIdUri:\n")
    end = SUBSCRIBER.index("  ManagedIdentityObjectId:\n")
    text = SUBSCRIBER[:start] + SUBSCRIBER[end:]
    problems = run_on(tmp_path, monkeypatch, text)
    assert any("parameter AppIdUri needs an AllowedPattern" in p for p in problems), problems


def test_the_role_holds_exactly_the_actions_the_code_calls():
    used, problems = cloudformation.code_aws_actions()
    assert problems == []
    assert used == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                    "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket",
                    "cloudwatch:GetMetricStatistics"}


def test_an_operation_the_code_starts_calling_must_be_declared(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "m.py").write_text(
        "def f(conn, source):\n"
        "    conn.aws.call(source, 'sqs', lambda c: c.change_message_visibility(X=1))\n"
        "    conn.aws.call(source, 'sqs', lambda c: c.purge_queue(QueueUrl='q'))\n"
        "    conn.work.send('not an AWS call')\n")
    used, problems = cloudformation.code_aws_actions(shared)
    assert used == {"sqs:ChangeMessageVisibility"}
    assert len(problems) == 1 and "purge_queue is not in CODE_CALL_ACTIONS" in problems[0]


@pytest.mark.parametrize("old, new, needle", [
    # a permission the code never uses comes back
    ("                  - sqs:DeleteMessage\n                  - sqs:GetQueueAttributes\n",
     "                  - sqs:DeleteMessage\n                  - sqs:ChangeMessageVisibility\n"
     "                  - sqs:GetQueueAttributes\n",
     "sqs:ChangeMessageVisibility is granted but shared/ never calls it"),
    # the session name is no longer pinned
    (',\n                  "sts:RoleSessionName": "sentinel-s3-${SourceName}"', "",
     "must pin sts:RoleSessionName"),
    # the session name pinned is not the one the code sends
    ('"sts:RoleSessionName": "sentinel-s3-${SourceName}"',
     '"sts:RoleSessionName": "MicrosoftSentinel_${SourceName}"', "must pin sts:RoleSessionName"),
    # kms:Decrypt usable outside S3
    ('                    StringEquals:\n                      kms:ViaService: !Sub '
     '"s3.${AWS::Region}.amazonaws.com"\n',
     '                    StringEquals:\n                      aws:PrincipalType: AssumedRole\n',
     "DecryptLogObjects: kms:Decrypt without kms:ViaService"),
    # anyone may drain the queue
    ("          - Sid: DenyConsumeExceptTheConnector\n            Effect: Deny",
     "          - Sid: DenyConsumeExceptTheConnector\n            Effect: Allow",
     "NotificationQueue: no Deny of sqs:ChangeMessageVisibility"),
    # anyone may send
    ("          - Sid: DenySendExceptFromTheBucketOrTopic\n            Effect: Deny",
     "          - Sid: DenySendExceptFromTheBucketOrTopic\n            Effect: Allow",
     "NotificationQueue: no Deny of sqs:SendMessage"),
    # plain HTTP
    ('                aws:SecureTransport: "false"', '                aws:SecureTransport: "true"',
     "no Deny of sqs:* without aws:SecureTransport"),
    # the dead-letter queue loses its alarm
    ("      MetricName: ApproximateNumberOfMessagesVisible",
     "      MetricName: NumberOfMessagesSent", "no CloudWatch alarm on the dead-letter queue"),
    # the audience check is loosened
    ('    AllowedPattern: "^(?!.*/\\\\.default$)(api://', '    AllowedPattern: "^(.*|api://',
     "AppIdUri accepts"),
    # a prefix without '/' is accepted again
    ('    Default: ""\n    AllowedPattern: "^$|^[^*?,\\"]*/$"\n    ConstraintDescription: empty, '
     "or a key prefix ending with / (no * ? , or quotes)\n  LogKeyPrefix2",
     '    Default: ""\n    AllowedPattern: "^[^*?,]*$"\n  LogKeyPrefix2',
     "LogKeyPrefix accepts 'logs'"),
])
def test_each_rule_removed_fails_the_stage(tmp_path, monkeypatch, old, new, needle):
    assert old in TEMPLATE, old
    problems = run_on(tmp_path, monkeypatch, TEMPLATE.replace(old, new, 1))
    assert any(needle in p for p in problems), problems


def test_the_dead_letter_queue_has_the_same_denies(tmp_path, monkeypatch):
    start = TEMPLATE.index("  DeadLetterQueuePolicy:")
    end = TEMPLATE.index("  DeadLetterQueueAlarm:")
    problems = run_on(tmp_path, monkeypatch, TEMPLATE[:start] + TEMPLATE[end:])
    assert any("DeadLetterQueue: no queue policy" in p for p in problems), problems


# ---- Azure: audit logs, publishing, private-network mode ------------------------------------
def test_the_bicep_passes_the_azure_hardening_stage():
    stage = bicep_checks.check_azure_hardening()
    assert stage.ok, "\n".join(stage.problems)
    assert stage.counts == {"diagnostic_settings": 6, "private_endpoints": 4}


@pytest.mark.parametrize("file, old, new, needle", [
    ("modules/keyvault.bicep", "category: 'AuditEvent'", "category: 'AzurePolicyEvaluationDetails'",
     "keyvault.bicep: diagnostic setting of vault lacks AuditEvent"),
    ("modules/storage.bicep", "  scope: queueService\n", "  scope: storageAccount\n",
     "no diagnostic setting sending StorageDelete, StorageRead, StorageWrite of queueService"),
    ("modules/function-app.bicep", "category: 'FunctionAppLogs'\n        enabled: true",
     "category: 'FunctionAppLogs'\n        enabled: false", "of functionApp to the workspace"),
    ("modules/dcr.bicep", "    workspaceId: logAnalyticsWorkspaceResourceId\n", "",
     "diagnostic setting of dataCollectionRule has no workspaceId"),
    ("modules/function-app.bicep", "  name: 'scm'\n  properties: {\n    allow: false",
     "  name: 'scm'\n  properties: {\n    allow: true", "'scm' must set allow: false"),
    ("modules/storage.bicep", "    publicNetworkAccess: publicNetworkAccess\n",
     "    publicNetworkAccess: 'Enabled'\n", "storageAccount.publicNetworkAccess must be"),
    ("modules/keyvault.bicep",
     "defaultAction: publicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'",
     "defaultAction: 'Allow'", "vault.networkAcls.defaultAction must be Deny"),
    ("main.bicep", "param privateNetworking bool = false", "param privateNetworking bool = true",
     "off by default"),
    ("main.bicep", "  {\n    name: 'vault'\n    target: 'keyVault'\n  }\n", "",
     "no private endpoint for vault"),
    ("main.bicep", "    publicNetworkAccess: dataPlaneAccess\n  }\n}\n\nmodule network",
     "  }\n}\n\nmodule network", "module keyVault must get publicNetworkAccess Disabled"),
    ("modules/network.bicep", "serviceName: 'Microsoft.App/environments'",
     "serviceName: 'Microsoft.Web/serverFarms'", "delegated to Microsoft.App/environments"),
])
def test_each_azure_rule_removed_fails_the_stage(tmp_path, monkeypatch, file, old, new, needle):
    import shutil

    bicep = tmp_path / "bicep"
    shutil.copytree(ROOT / "infra" / "bicep", bicep)
    target = bicep / file
    text = target.read_text()
    assert old in text, old
    target.write_text(text.replace(old, new, 1))
    monkeypatch.setattr(bicep_checks, "BICEP_DIR", bicep)
    monkeypatch.setattr(bicep_checks, "MAIN_BICEP", bicep / "main.bicep")
    problems = bicep_checks.check_azure_hardening().problems
    assert any(needle in p for p in problems), problems
