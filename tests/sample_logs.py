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
    return key, gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode()), n


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


# ---- more formats, for the CPU benchmark (benchmarks/cpu.py) and its smoke test ------------

def alb(n: int, *, region: str = "us-east-2") -> tuple[str, bytes, int]:
    """ALB access log lines as AWS writes them (HTTP and HTTPS listeners, 30 fields)."""
    now = _now()
    lines = []
    paths = ["/", "/api/v1/orders", "/static/app.js", "/login", "/health"]
    for i in range(n):
        t = now - timedelta(seconds=n - i, microseconds=(i * 7919) % 1_000_000)
        created = t - timedelta(milliseconds=i % 900)
        tls = i % 3 != 0
        scheme, port = ("https", 443) if tls else ("http", 80)
        status = random.choice([200, 200, 200, 301, 404, 500])
        lines.append(
            f"{scheme} {t:%Y-%m-%dT%H:%M:%S.%fZ} app/my-loadbalancer/50dc6c495c0c9188 "
            f"192.168.{i % 250}.{i % 200}:{1024 + i % 60000} 10.0.{i % 4}.{i % 250}:80 "
            f"0.{i % 10:03d} 0.{(i * 3) % 1000:03d} 0.000 {status} {status} {i % 900} "
            f"{(i * 37) % 20000} \"GET {scheme}://www.example.com:{port}"
            f"{paths[i % len(paths)]}?id={i} HTTP/1.1\" \"Mozilla/5.0 (X11; Linux x86_64) "
            f"AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\" "
            + ("ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 " if tls else "- - ")
            + f"arn:aws:elasticloadbalancing:{region}:{ACCOUNT}:targetgroup/my-targets/"
            f"73e2d6bc24d8a067 \"Root=1-{int(t.timestamp()):08x}-{uuid.uuid4().hex[:24]}\" "
            f"\"{'www.example.com' if tls else '-'}\" "
            + (f"\"arn:aws:acm:{region}:{ACCOUNT}:certificate/12345678-1234-1234-1234-"
               f"123456789012\" " if tls else "\"-\" ")
            + f"{i % 3} {created:%Y-%m-%dT%H:%M:%S.%fZ} \"forward\" \"-\" \"-\" "
            f"\"10.0.{i % 4}.{i % 250}:80\" \"{status}\" \"-\" \"-\"")
    key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{region}/{now:%Y/%m/%d}/{ACCOUNT}_"
           f"elasticloadbalancing_{region}_app.my-loadbalancer.50dc6c495c0c9188_"
           f"{now:%Y%m%dT%H%M}Z_192.0.2.10_{uuid.uuid4().hex[:8]}.log.gz")
    return key, gzip.compress(("\n".join(lines) + "\n").encode()), n


def waf(n: int, *, region: str = "us-east-1") -> tuple[str, bytes, int]:
    """AWS WAF v2 log lines (JSON lines) with headers, rule groups and labels."""
    now = _now()
    acl = f"arn:aws:wafv2:{region}:{ACCOUNT}:regional/webacl/prod-acl/5933d6d9-9dde-4f82-a8aw"
    lines = []
    for i in range(n):
        block = i % 5 == 0
        lines.append(json.dumps({
            "timestamp": int((now - timedelta(seconds=n - i)).timestamp() * 1000) + i % 1000,
            "formatVersion": 1, "webaclId": acl,
            "terminatingRuleId": "AWS-AWSManagedRulesSQLiRuleSet" if block else "Default_Action",
            "terminatingRuleType": "MANAGED_RULE_GROUP" if block else "REGULAR",
            "action": "BLOCK" if block else "ALLOW",
            "terminatingRuleMatchDetails": [{"conditionType": "SQL_INJECTION",
                                             "sensitivityLevel": "HIGH", "location": "QUERY_STRING",
                                             "matchedData": ["1", "OR", "1"]}] if block else [],
            "httpSourceName": "ALB", "httpSourceId": f"{ACCOUNT}-app/prod/50dc6c495c0c9188",
            "ruleGroupList": [{"ruleGroupId": "AWS#AWSManagedRulesSQLiRuleSet",
                               "terminatingRule": {"ruleId": "SQLi_QUERYARGUMENTS",
                                                   "action": "BLOCK"} if block else None,
                               "nonTerminatingMatchingRules": [], "excludedRules": None}],
            "rateBasedRuleList": [], "nonTerminatingMatchingRules": [],
            "requestHeadersInserted": None, "responseCodeSent": 403 if block else None,
            "httpRequest": {
                "clientIp": f"198.51.100.{i % 250}", "country": random.choice(["US", "DE", "AU"]),
                "headers": [{"name": "Host", "value": "shop.example.com"},
                            {"name": "User-Agent", "value": "Mozilla/5.0 (Windows NT 10.0)"},
                            {"name": "Accept", "value": "text/html,application/xhtml+xml"},
                            {"name": "Cookie", "value": f"session={uuid.uuid4().hex}"}],
                "uri": f"/products/{i % 1000}", "args": "id=1%20OR%201=1" if block else f"p={i}",
                "httpVersion": "HTTP/1.1", "httpMethod": "GET", "requestId": uuid.uuid4().hex},
            "labels": [{"name": "awswaf:managed:aws:sql-database:SQLi_QueryArguments"}]
            if block else [],
            "ja3Fingerprint": "3b5074b1b5d032e5620f69f9f700ff0e"}))
    key = (f"AWSLogs/{ACCOUNT}/WAFLogs/{region}/prod-acl/{now:%Y/%m/%d/%H/%M}/{ACCOUNT}_waflogs_"
           f"{region}_prod-acl_{now:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:8]}.log.gz")
    return key, gzip.compress(("\n".join(lines) + "\n").encode()), n


def s3access(n: int) -> tuple[str, bytes, int]:
    """S3 server access log lines (all 26 documented fields)."""
    now = _now()
    owner = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
    ops = [("REST.GET.OBJECT", "GET"), ("REST.PUT.OBJECT", "PUT"), ("REST.HEAD.OBJECT", "HEAD")]
    lines = []
    for i in range(n):
        t = now - timedelta(seconds=n - i)
        op, verb = ops[i % 3]
        obj = f"reports/2026/{i % 12 + 1:02d}/report-{i}.csv"
        lines.append(
            f"{owner} amzn-s3-demo-bucket1 [{t:%d/%b/%Y:%H:%M:%S} +0000] 192.0.2.{i % 250} "
            f"arn:aws:sts::{ACCOUNT}:assumed-role/etl/session-{i % 20} "
            f"{uuid.uuid4().hex[:16].upper()} {op} {obj} \"{verb} /amzn-s3-demo-bucket1/{obj} "
            f"HTTP/1.1\" 200 - {(i * 131) % 50000} {(i * 131) % 50000} {i % 90 + 1} {i % 40} "
            f"\"-\" \"aws-sdk-java/2.20.0 Linux/5.10 OpenJDK_64-Bit_Server_VM/17\" - "
            f"{uuid.uuid4().hex}{uuid.uuid4().hex[:12]}= SigV4 ECDHE-RSA-AES128-GCM-SHA256 "
            f"AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSv1.2 - -")
    key = f"s3-access-logs/{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4().hex[:16].upper()}"
    return key, gzip.compress(("\n".join(lines) + "\n").encode()), n


def cloudwatch(n: int, *, per_message: int = 50) -> tuple[str, bytes, int]:
    """CloudWatch Logs subscription data written by Firehose: one gzip member per
    DATA_MESSAGE of ``per_message`` log events, members back to back."""
    now = _now()
    members = []
    done = 0
    while done < n:
        k = min(per_message, n - done)
        events = []
        for j in range(k):
            i = done + j
            ts = int((now - timedelta(seconds=n - i)).timestamp() * 1000)
            events.append({"id": str(37000000000000000000000000000000000000000000000000000000 + i),
                           "timestamp": ts,
                           "message": f"{ts} INFO [req-{uuid.uuid4().hex[:12]}] GET "
                                      f"/api/v1/orders/{i} status=200 duration_ms={i % 300} "
                                      f"user=u{i % 97}"})
        members.append(gzip.compress(json.dumps({
            "owner": ACCOUNT, "logGroup": "/aws/lambda/orders-api",
            "logStream": f"2026/01/01/[$LATEST]{uuid.uuid4().hex}",
            "subscriptionFilters": ["to-sentinel"], "messageType": "DATA_MESSAGE",
            "logEvents": events}).encode()))
        done += k
    key = f"firehose/{now:%Y/%m/%d/%H}/sentinel-stream-1-{now:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}"
    return key, b"".join(members), n
