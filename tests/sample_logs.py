"""Realistic log objects built from the shapes AWS writes (used by integration tests and the
demo). Each builder returns (key, bytes, number of events)."""
from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

ACCOUNT = "123456789012"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def cloudtrail(n: int, *, region: str = "us-east-1", pad: int = 0) -> tuple[str, bytes, int]:
    now = _now()
    records = []
    for i in range(n):
        t = now - timedelta(seconds=n - i)
        records.append({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice",
                             "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/alice",
                             "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLE",
                             "sessionContext": {
                                 "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                   "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin",
                                                   "accountId": ACCOUNT, "userName": "Admin"},
                                 "attributes": {"creationDate": _z(t - timedelta(hours=1)),
                                                "mfaAuthenticated": "true"}}},
            "eventTime": _z(t), "eventSource": "s3.amazonaws.com",
            "eventName": random.choice(["GetObject", "ListBuckets", "PutBucketPolicy"]),
            "awsRegion": region, "sourceIPAddress": f"203.0.113.{i % 250}",
            "userAgent": "aws-cli/2.15.0", "requestParameters": {"bucketName": "finance",
                                                                 "pad": "p" * pad},
            "responseElements": None, "requestID": uuid.uuid4().hex[:16].upper(),
            "eventID": str(uuid.uuid4()), "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": "s3.amazonaws.com"}})
    key = (f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{now:%Y/%m/%d}/"
           f"{ACCOUNT}_CloudTrail_{region}_{now:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:16]}.json.gz")
    return key, gzip.compress(json.dumps({"Records": records}).encode()), n


def vpcflow(n: int, *, region: str = "us-east-1") -> tuple[str, bytes, int]:
    now = _now()
    start = int(now.timestamp()) - 120
    lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
             "bytes start end action log-status"]
    for i in range(n):
        lines.append(f"2 {ACCOUNT} eni-0a1b2c3d4e5f{i % 10} 10.0.{i % 200}.{i % 250} "
                     f"198.51.100.{i % 250} {1024 + i % 60000} 443 6 {i % 90 + 1} "
                     f"{(i % 90 + 1) * 1200} {start} {start + 60} "
                     f"{'ACCEPT' if i % 7 else 'REJECT'} OK")
    key = (f"AWSLogs/{ACCOUNT}/vpcflowlogs/{region}/{now:%Y/%m/%d}/"
           f"{ACCOUNT}_vpcflowlogs_{region}_fl-0123456789abcdef0_{now:%Y%m%dT%H%M}Z_"
           f"{uuid.uuid4().hex[:8]}.log.gz")
    return key, gzip.compress(("\n".join(lines) + "\n").encode()), n


def guardduty(n: int, *, region: str = "us-east-1") -> tuple[str, bytes, int]:
    now = _now()
    lines = []
    for i in range(n):
        fid = uuid.uuid4().hex
        lines.append(json.dumps({
            "schemaVersion": "2.0", "accountId": ACCOUNT, "region": region,
            "partition": "aws", "id": fid,
            "arn": f"arn:aws:guardduty:{region}:{ACCOUNT}:detector/d1/finding/{fid}",
            "type": "UnauthorizedAccess:EC2/SSHBruteForce",
            "resource": {"resourceType": "Instance",
                         "instanceDetails": {"instanceId": f"i-0{i:016x}"}},
            "service": {"serviceName": "guardduty", "detectorId": "d1", "count": i + 1,
                        "archived": False,
                        "action": {"actionType": "NETWORK_CONNECTION"}},
            "severity": 5.0 + (i % 4), "createdAt": _z(now - timedelta(minutes=5)),
            "updatedAt": _z(now - timedelta(minutes=1)),
            "title": "SSH brute force attacks against an instance",
            "description": "198.51.100.7 is performing SSH brute force attacks."}))
    key = f"AWSLogs/{ACCOUNT}/GuardDuty/{region}/{now:%Y/%m/%d}/{uuid.uuid4()}.jsonl.gz"
    return key, gzip.compress(("\n".join(lines) + "\n").encode()), n


def bad_cloudtrail() -> tuple[str, bytes, int]:
    """A CloudTrail-named object whose content is cut off inside its last record (a truncated
    upload). The count returned is the records before the cut, which are still delivered."""
    key, data, _ = cloudtrail(3)
    text = gzip.decompress(data)[:-200]
    return key, gzip.compress(text), 2
