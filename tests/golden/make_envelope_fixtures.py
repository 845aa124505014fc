"""Build the fixtures of the other CloudTrail / VPC Flow delivery envelopes from AWS's own
examples under ``tests/fixtures`` (the CloudTrail log file examples and the default-format flow
log example), so a test can prove that an event gives the same row however it arrives.

* ``cloudtrail_events.jsonl``: every CloudTrail event of the docExample log files, one JSON
  object per line (the CloudTrail Lake export / Firehose shape).
* ``cloudtrail_eventbridge.json``: the same events, each in the EventBridge envelope CloudTrail
  events arrive in (``detail-type`` by ``eventType``: AwsApiCall -> "AWS API Call via
  CloudTrail", AwsConsoleSignIn -> "AWS Console Signin via CloudTrail", AwsServiceEvent ->
  "AWS Service Event via CloudTrail", AwsCloudTrailInsight -> "AWS Insight via CloudTrail"),
  back to back with no separator as Firehose writes them.
* ``cloudwatch_cloudtrail.json``: one CloudWatch Logs DATA_MESSAGE of a trail's log group whose
  log events are those events (the message is the event's JSON text).
* ``cloudwatch_vpcflow.json``: one DATA_MESSAGE of a flow log's log group, one log event per
  record of the default-format example (CloudWatch Logs has no header line).

Run from the repo root: ``python tests/golden/make_envelope_fixtures.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
AWS = HERE.parent / "fixtures"
OUT = HERE / "fixtures"
DETAIL_TYPE = {"AwsApiCall": "AWS API Call via CloudTrail",
               "AwsConsoleSignIn": "AWS Console Signin via CloudTrail",
               "AwsServiceEvent": "AWS Service Event via CloudTrail",
               "AwsCloudTrailInsight": "AWS Insight via CloudTrail"}


def cloudtrail_events() -> list[dict]:
    events = []
    for path in sorted((AWS / "cloudtrail").glob("*_docExample0[0-9].json")):
        events.extend(json.loads(path.read_text())["Records"])
    return events


def eventbridge(event: dict, n: int) -> dict:
    source = event.get("eventSource") or event.get("insightDetails", {}).get("eventSource", "")
    return {"version": "0", "id": f"6a7e8feb-b491-4cf7-a9f1-bf3703{n:06d}",
            "detail-type": DETAIL_TYPE.get(event.get("eventType"), DETAIL_TYPE["AwsApiCall"]),
            "source": "aws." + source.split(".")[0], "account": event.get("recipientAccountId",
                                                                      "123456789012"),
            "time": event["eventTime"], "region": event.get("awsRegion", "us-east-1"),
            "resources": [], "detail": event}


def data_message(group: str, stream: str, messages: list[tuple[int, str]]) -> dict:
    return {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": group,
            "logStream": stream, "subscriptionFilters": ["to-firehose"],
            "logEvents": [{"id": f"{3195310660696698337880902507980421114328961542429822:d}"
                                 f"{i:04d}", "timestamp": ts, "message": msg}
                          for i, (ts, msg) in enumerate(messages)]}


def _epoch_ms(iso: str) -> int:
    from datetime import datetime
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def main() -> None:
    events = cloudtrail_events()
    (OUT / "cloudtrail_events.jsonl").write_text(
        "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    (OUT / "cloudtrail_eventbridge.json").write_text(
        "".join(json.dumps(eventbridge(e, n), separators=(",", ":"))
                for n, e in enumerate(events)))
    cwl = data_message("aws-cloudtrail-logs-123456789012-1a2b3c4d",
                       "123456789012_CloudTrail_us-east-2",
                       [(_epoch_ms(e["eventTime"]), json.dumps(e, separators=(",", ":")))
                        for e in events])
    (OUT / "cloudwatch_cloudtrail.json").write_text(json.dumps(cwl) + "\n")
    flow = (AWS / "vpcflow" / "123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_"
            "docv2default.log.gz")
    import gzip
    lines = gzip.decompress(flow.read_bytes()).decode().splitlines()[1:]
    cwf = data_message("vpc-flow-logs", "eni-1235b8ca123456789-all",
                       [(int(line.split()[10]) * 1000 + 5000, line) for line in lines if line])
    (OUT / "cloudwatch_vpcflow.json").write_text(json.dumps(cwf) + "\n")
    print(f"{len(events)} CloudTrail events, {len(lines)} flow records")


if __name__ == "__main__":
    main()
