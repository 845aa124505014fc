"""The demo source on a running local stack: a bucket wired to SQS, access keys in the Key Vault
emulator, and realistic sample objects. Used by `make demo` (devtools/demo.py) and by
`python -m devtools.stack --samples` (devtools/stack.py), which import this and not each other.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:  # the sample generators live with the tests
    sys.path.insert(0, str(ROOT / "tests"))

BUCKET = "demo-security-logs"


def notified_bucket(s3: object, sqs: object, bucket: str, queue_name: str) -> str:
    """Create ``bucket`` and an SQS queue that S3 notifies of every new object; the queue URL."""
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return queue_url


def provision_source(stack: object) -> dict[str, str]:
    """Create the AWS side of one source on the local stack (bucket -> SQS notifications, access
    keys in the Key Vault emulator) and return the app settings that point at it."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = notified_bucket(s3, sqs, BUCKET, "s3-notifications")
    stack.keyvault.set_secret("demo-aws-key-id", "AKIAEXAMPLEDEMO")
    stack.keyvault.set_secret("demo-aws-secret", "demo-secret")
    return {
        "AWS_SOURCES": json.dumps([{
            "name": "demo", "queueUrl": queue_url, "region": "us-east-1",
            "accessKeyIdSecret": "demo-aws-key-id", "secretAccessKeySecret": "demo-aws-secret",
            "buckets": {BUCKET: ["AWSLogs/"]}}]),
        "WORK_QUEUE": "s3-objects", "POISON_QUEUE": "s3-objects-poison",
        "CHECKPOINT_TABLE": "s3objectcheckpoints", "POLL_SCHEDULE": "0 */1 * * * *",
        "MAX_BATCH_BYTES": "1000000"}


def put_samples(*, bad: bool = True) -> list[tuple[str, bytes, int]]:
    """Write realistic CloudTrail, VPC Flow and GuardDuty objects (and one truncated object)."""
    import boto3
    from sample_logs import bad_cloudtrail, cloudtrail, guardduty, vpcflow

    s3 = boto3.client("s3", region_name="us-east-1")
    objects = [cloudtrail(3000), cloudtrail(800), vpcflow(20000), guardduty(25)]
    if bad:
        objects.append(bad_cloudtrail())
    for key, data, _ in objects:
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return objects
