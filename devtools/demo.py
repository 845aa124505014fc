"""`make demo`: the connector end to end on this machine, with no Azure or AWS account.

Starts the local stack (moto, Azurite, the HTTPS emulators), wires a bucket to SQS, writes
realistic CloudTrail, VPC Flow and GuardDuty objects plus one truncated object and one bad
notification, runs the timer function and then the queue function with host.json's
retry/poison semantics (one upload outage is injected on the way), and prints what arrived in
each table and what was dead-lettered, with reasons.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    import boto3

    from devtools.hostsim import HostSim
    from devtools.samples import BUCKET, provision_source, put_samples
    from devtools.stack import LocalStack

    t0 = time.monotonic()
    with LocalStack() as stack:
        os.environ.update(stack.env)
        print(f"local stack up in {time.monotonic() - t0:.1f}s: moto {stack.moto_url}, "
              f"Azurite, Logs Ingestion {stack.env['LOGS_INGESTION_ENDPOINT']}")
        sqs = boto3.client("sqs", region_name="us-east-1")
        settings = provision_source(stack)
        os.environ.update(settings)
        os.environ.update({"SQS_WAIT_SECONDS": "1", "POLL_TIME_BUDGET_SECONDS": "30",
                           "UPLOAD_BACKOFF_BASE_SECONDS": "0.05",
                           "UPLOAD_BACKOFF_MAX_SECONDS": "1", "UPLOAD_MAX_ATTEMPTS": "3"})
        bucket = BUCKET
        queue_url = json.loads(settings["AWS_SOURCES"])[0]["queueUrl"]

        objects = put_samples()
        sqs.send_message(QueueUrl=queue_url, MessageBody="{not a notification")
        print(f"wrote {len(objects)} objects to s3://{bucket} "
              f"({sum(n for _, _, n in objects[:-1])} events, one truncated object) "
              "and one malformed SQS message")

        # a short outage of the ingestion service: throttled, then 503s, then a dropped link
        stack.ingestion.inject(429, retry_after=0.2, stream="Custom-AWSVPCFlow")
        stack.ingestion.inject(503, stream="Custom-AWSCloudTrail", count=2)
        stack.ingestion.inject(reset=True, stream="Custom-AWSGuardDuty")

        host = HostSim(stack.env["AzureWebJobsStorage"], "s3-objects", "s3-objects-poison")
        t1 = time.monotonic()
        host.run_timer()
        run = host.drain()
        elapsed = time.monotonic() - t1
        print(f"timer + queue functions: {run.invocations} invocations, {run.succeeded} ok, "
              f"{run.failed} retried by the host, {elapsed:.1f}s")

        from shared import pipeline

        pipeline.flush_health()  # buffered object health rows (sent within 15 s or at exit)
        health = stack.ingestion.accepted("Custom-AWSS3ConnectorHealth")
        per_table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for row in health:
            if row.get("Kind") == "object" and row.get("TargetTable"):
                t = per_table[row["TargetTable"]]
                t["records"].append(row.get("RecordsOut", 0))
                t["batches"].append(row.get("Batches", 0))
                t["latency"].append(row.get("LatencySeconds", 0.0))
        requests = defaultdict(int)
        for r in stack.ingestion.requests:
            requests[r.stream] += 1
        print("\nper table (rows accepted by the Logs Ingestion API):")
        print(f"  {'table':<18} {'records':>8} {'batches':>8} {'requests':>9} "
              f"{'latency p50':>12} {'max':>7}")
        ok = True
        for table in sorted(per_table):
            t = per_table[table]
            accepted = len(stack.ingestion.accepted(f"Custom-{table}"))
            print(f"  {table:<18} {accepted:>8} {int(sum(t['batches'])):>8} "
                  f"{requests['Custom-' + table]:>9} "
                  f"{statistics.median(t['latency']):>11.2f}s {max(t['latency']):>6.2f}s")
        # the truncated object's complete records before the cut are delivered too
        expected = {"AWSCloudTrail": 3800 + objects[-1][2], "AWSVPCFlow": 20000,
                    "AWSGuardDuty": 25}
        for table, n in expected.items():
            got = len(stack.ingestion.accepted(f"Custom-{table}"))
            if got != n:
                print(f"  !! {table}: expected {n} records, got {got}")
                ok = False
        beats = [r for r in health if r.get("Kind") == "heartbeat"]
        if beats:
            b = beats[-1]
            print(f"\nheartbeat: {b['MessagesReceived']} SQS messages, {b['ObjectsEnqueued']} "
                  f"objects enqueued, {b['MessagesPoisoned']} poisoned, SQS backlog "
                  f"{b.get('SqsBacklog')}")
        items = host.poison_items()
        print(f"\npoison queue s3-objects-poison: {len(items)} item(s)")
        for item in items:
            where = (item.get("object") or {}).get("key") or f"SQS body sha256 " \
                f"{item.get('body_sha256', '')[:12]}"
            print(f"  - [{item['stage']}/{item['kind']}] {where}\n      {item['reason'][:160]}")
        if len(items) != 2:
            ok = False
    print("\ndemo " + ("OK" if ok else "FAILED") + f" in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
