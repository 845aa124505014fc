"""What a source's filters save: the share of the row bytes the connector would not send
(what Log Analytics bills: the JSON of the mapped rows), measured by ``inspect --source`` on
realistic objects. ``python -m benchmarks.filter_savings``.

* VPC Flow: the demo's flow log object (``tests/sample_logs.vpcflow``: 20,000 flows from
  private 10.0.0.0/16 addresses to public ones, 6 of 7 accepted), filtered with "drop ACCEPT
  from 10.0.0.0/8".
* CloudTrail: 20,000 events, of which 60 % are the KMS ``Decrypt``/``GenerateDataKey`` calls S3
  makes on behalf of callers for SSE-KMS objects (AWS's documented event shape, read-only,
  ``invokedBy: s3.amazonaws.com``) and 40 % the demo's S3 management events -- the share is an
  assumption about a busy SSE-KMS account, stated here; the bytes follow from it. Filtered with
  "drop EventName in (Decrypt, GenerateDataKey) and ReadOnly".
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sample_logs import ACCOUNT, cloudtrail, vpcflow  # noqa: E402

from shared.cli_inspect import inspect_file  # noqa: E402
from shared.config import Source  # noqa: E402
from shared.filters import parse  # noqa: E402

FILTERS = [
    {"name": "internal-accepts", "table": "AWSVPCFlow",
     "drop": {"all": [{"column": "Action", "eq": "ACCEPT"},
                      {"column": "SrcAddr", "cidr": ["10.0.0.0/8"]}]}},
    {"name": "kms-reads", "table": "AWSCloudTrail",
     "drop": {"all": [{"column": "EventName", "in": ["Decrypt", "GenerateDataKey"]},
                      {"column": "ReadOnly", "eq": True}]}},
]


def kms_event(base: dict, i: int) -> dict:
    name = "Decrypt" if i % 3 else "GenerateDataKey"
    key_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:app",
                         "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/i-0abc",
                         "accountId": ACCOUNT, "accessKeyId": "ASIAEXAMPLE",
                         "invokedBy": "s3.amazonaws.com"},
        "eventTime": base["eventTime"], "eventSource": "kms.amazonaws.com", "eventName": name,
        "awsRegion": "us-east-1", "sourceIPAddress": "s3.amazonaws.com",
        "userAgent": "s3.amazonaws.com",
        "requestParameters": {"encryptionContext": {
            "aws:s3:arn": f"arn:aws:s3:::finance/reports/{uuid.uuid4().hex}.parquet"},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": key_arn},
        "responseElements": None, "requestID": uuid.uuid4().hex,
        "eventID": str(uuid.uuid4()), "readOnly": True,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
        "eventCategory": "Management"}


def cloudtrail_mix(n: int) -> tuple[str, bytes]:
    key, data, _ = cloudtrail(n)
    records = json.loads(gzip.decompress(data))["Records"]
    mixed = [kms_event(r, i) if i % 5 < 3 else r for i, r in enumerate(records)]
    return key, gzip.compress(json.dumps({"Records": mixed}).encode())


def measure() -> list[dict]:
    errors: list[str] = []
    source = Source(name="bench", queue_url="https://q", region="us-east-1", role_arn="x",
                    filters=parse(FILTERS, "bench", errors))
    assert not errors, errors
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, (key, data) in (("VPC Flow (demo flows)", vpcflow(20_000)[:2]),
                                   ("CloudTrail (60 % KMS reads)", cloudtrail_mix(20_000))):
            path = Path(tmp) / key.rsplit("/", 1)[1]
            path.write_bytes(data)
            r = inspect_file(str(path), key=key, source=source, rows=0)
            total = r["bytes_sent"] + r["bytes_filtered"]
            out.append({"object": label, "records": r["records"], "filtered": r["filtered"],
                        "bytes_total": total, "bytes_filtered": r["bytes_filtered"],
                        "share": round(100.0 * r["bytes_filtered"] / total, 1)})
    return out


if __name__ == "__main__":
    print("| object | records | filtered | row bytes | not sent | share of bytes saved |")
    print("|---|---|---|---|---|---|")
    for m in measure():
        print(f"| {m['object']} | {m['records']:,} | {m['filtered']:,} | {m['bytes_total']:,} "
              f"| {m['bytes_filtered']:,} | {m['share']} % |")
