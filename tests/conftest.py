"""Shared fixtures: one local stack per test session (moto, Azurite, HTTPS emulators), and a
``world`` per test with its own bucket, SQS queue, Azure queues and checkpoint table."""
from __future__ import annotations

import gzip
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # AWS samples (SOURCES.md there)
ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from devtools.stack import LocalStack

    with LocalStack() as s:
        yield s


class World:
    """One test's AWS and Azure resources on the shared stack, and helpers to drive them."""

    def __init__(self, stack: Any, monkeypatch: pytest.MonkeyPatch):
        self.stack = stack
        self.monkeypatch = monkeypatch
        self.tag = uuid.uuid4().hex[:8]
        for k, v in stack.env.items():
            monkeypatch.setenv(k, v)
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.sns = boto3.client("sns", region_name="us-east-1")
        self.iam = boto3.client("iam", region_name="us-east-1")
        self.sources: list[dict[str, Any]] = []
        self.work_queue = f"work-{self.tag}"
        self.poison_queue = f"{self.work_queue}-poison"
        stack.ingestion.reset()

    # ---- AWS side ------------------------------------------------------------------------
    def add_source(self, name: str = "prod", *, via: str = "direct", mode: str = "keys",
                   prefixes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
        bucket = f"logs-{name}-{self.tag}".lower()
        self.s3.create_bucket(Bucket=bucket)
        queue_url = self.sqs.create_queue(QueueName=f"notify-{name}-{self.tag}")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        if via == "direct":
            config = {"QueueConfigurations": [{"QueueArn": queue_arn,
                                               "Events": ["s3:ObjectCreated:*"]}]}
        elif via == "sns":
            topic = self.sns.create_topic(Name=f"topic-{name}-{self.tag}")["TopicArn"]
            self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
            config = {"TopicConfigurations": [{"TopicArn": topic,
                                               "Events": ["s3:ObjectCreated:*"]}]}
        else:
            raise ValueError(via)
        self.s3.put_bucket_notification_configuration(Bucket=bucket,
                                                      NotificationConfiguration=config)
        self.drain_sqs(queue_url)  # the s3:TestEvent S3 sends after setup
        source: dict[str, Any] = {"name": name, "queueUrl": queue_url, "region": "us-east-1",
                                  "buckets": {bucket: prefixes or [""]}, **extra}
        if mode == "keys":
            source["accessKeyIdSecret"] = f"{name}-key-id"
            source["secretAccessKeySecret"] = f"{name}-secret"
            self.stack.keyvault.set_secret(f"{name}-key-id", "AKIAEXAMPLEKEY")
            self.stack.keyvault.set_secret(f"{name}-secret", "example-secret")
        else:
            role = self.iam.create_role(RoleName=f"OIDC_{name}_{self.tag}",
                                        AssumeRolePolicyDocument="{}")
            source["roleArn"] = role["Role"]["Arn"]
        source["_bucket"] = bucket
        self.sources.append(source)
        return source

    def drain_sqs(self, queue_url: str) -> None:
        while self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages"):
            self.sqs.purge_queue(QueueUrl=queue_url)

    def put(self, source: dict[str, Any], key: str, data: bytes, *, gz: bool = False) -> None:
        self.s3.put_object(Bucket=source["_bucket"], Key=key,
                           Body=gzip.compress(data) if gz else data)

    def send_raw(self, source: dict[str, Any], body: str) -> None:
        self.sqs.send_message(QueueUrl=source["queueUrl"], MessageBody=body)

    # ---- Azure side / the app --------------------------------------------------------------
    def configure(self, **settings: str) -> None:
        public = [{k: v for k, v in s.items() if not k.startswith("_")} for s in self.sources]
        values = {
            "AWS_SOURCES": json.dumps(public), "WORK_QUEUE": self.work_queue,
            "POISON_QUEUE": self.poison_queue, "CHECKPOINT_TABLE": f"ckpt{self.tag}",
            "AWS_WEB_IDENTITY_AUDIENCE": "api://sentinel-s3-test",
            "SQS_WAIT_SECONDS": "0", "POLL_TIME_BUDGET_SECONDS": "30",
            "UPLOAD_BACKOFF_BASE_SECONDS": "0.01", "UPLOAD_BACKOFF_MAX_SECONDS": "0.2",
            "UPLOAD_MAX_ATTEMPTS": "3", "POLL_SCHEDULE": "0 */1 * * * *",
        }
        values.update(settings)
        for k, v in values.items():
            self.monkeypatch.setenv(k, v)
        from shared import pipeline

        pipeline.reset_connector()

    def host(self) -> Any:
        from devtools.hostsim import HostSim

        return HostSim(self.stack.env["AzureWebJobsStorage"], self.work_queue,
                       self.poison_queue)

    def accepted(self, stream: str) -> list[dict[str, Any]]:
        from shared import pipeline

        pipeline.flush_health()  # object health rows are buffered (health.HealthBuffer)
        return self.stack.ingestion.accepted(stream)


@pytest.fixture
def world(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = World(stack, monkeypatch)
    yield w
    from shared import pipeline

    pipeline.reset_connector()
    os.environ.pop("AWS_SOURCES", None)


def fixture_bytes(rel: str) -> bytes:
    path = FIXTURES / rel
    return path.read_bytes()  # a missing fixture is an error, never a skip
