"""Poller throughput with a real network's latency: SQS (moto) -> the work queue (Azurite), both
behind devtools.delayproxy (``rtt`` added to every exchange).

naive: ReceiveMessage(1) -> parse -> put on the work queue -> DeleteMessage, one at a time.
ours:  shared.pipeline.poll_source (10 per receive, forwarded concurrently, batch delete).
"""
from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from devtools.delayproxy import DelayProxy


def _notification(i: int) -> str:
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": "2026-12-01T21:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "bench-logs"},
               "object": {"key": f"AWSLogs/123456789012/CloudTrail/us-east-1/obj{i}.json.gz",
                          "size": 2048, "eTag": f"e{i:08x}", "sequencer": f"{i:016X}"}}}]})


def _fill(sqs: Any, url: str, n: int, start: int) -> None:
    for i in range(start, start + n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": _notification(i + j)} for j in range(10)])


def run(rig: Any, *, quick: bool, smoke: bool = False, rtt: float = 0.03) -> dict[str, Any]:
    import boto3
    from azure.storage.queue import QueueClient

    from shared import pipeline
    from shared.notifications import parse_body

    # ours drains rounds of 300: moto's ReceiveMessage slows with the queue's depth (it scans
    # every message; SQS does not), so a 1,500-deep queue measured moto, not the poller
    n_naive, n_ours, rounds = (10, 40, 1) if smoke else (40, 300, 1) if quick else (100, 300, 4)
    moto_port = int(rig.stack.moto_url.rsplit(":", 1)[1])
    conn_str = rig.stack.storage_connection_string
    queue_port = int(re.search(r"QueueEndpoint=http://127.0.0.1:(\d+)", conn_str)[1])
    with DelayProxy("127.0.0.1", moto_port, rtt=rtt) as sqs_proxy, \
            DelayProxy("127.0.0.1", queue_port, rtt=rtt) as queue_proxy:
        slow_storage = conn_str.replace(f"127.0.0.1:{queue_port}",
                                        f"127.0.0.1:{queue_proxy.port}")
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{sqs_proxy.port}",
               "AzureWebJobsStorage": slow_storage, "SQS_WAIT_SECONDS": "0",
               "POLL_TIME_BUDGET_SECONDS": "500", "WORK_QUEUE": "bench-poll",
               "POISON_QUEUE": "bench-poll-poison"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            sqs = boto3.client("sqs", region_name="us-east-1",
                               endpoint_url=f"http://127.0.0.1:{sqs_proxy.port}")
            url = rig.queue_url.replace(rig.stack.moto_url, f"http://127.0.0.1:{sqs_proxy.port}")
            direct = boto3.client("sqs", region_name="us-east-1", endpoint_url=rig.stack.moto_url)
            direct.purge_queue(QueueUrl=rig.queue_url)
            work = QueueClient.from_connection_string(slow_storage, "bench-poll-naive")
            work.create_queue()

            _fill(direct, rig.queue_url, n_naive, 0)
            t = time.perf_counter()
            done = 0
            while done < n_naive:
                msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                           WaitTimeSeconds=0).get("Messages", [])
                for m in msgs:
                    for ref in parse_body(m["Body"], source="bench").objects:
                        work.send_message(ref.to_json())
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    done += 1
            naive = n_naive / (time.perf_counter() - t)

            pipeline.reset_connector()
            conn = pipeline.connector()
            source = conn.settings.sources[0]
            spent = enqueued = 0.0
            for r in range(rounds):
                _fill(direct, rig.queue_url, n_ours, 10_000 * (r + 1))
                t = time.perf_counter()
                stats = pipeline.poll_source(conn, source, time.monotonic() + 600)
                spent += time.perf_counter() - t
                enqueued += stats.objects_enqueued
                # >=: SQS is at-least-once (moto too, with concurrent receivers)
                assert stats.error is None and stats.objects_enqueued >= n_ours, stats
                assert stats.messages_deleted >= n_ours, stats
            ours = enqueued / spent
        finally:
            pipeline.reset_connector()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return {"rtt_ms": rtt * 1000, "naive_per_s": round(naive, 1), "ours_per_s": round(ours, 1),
            "ratio": round(ours / naive, 2),
            "messages": {"naive": n_naive, "ours": n_ours * rounds}}
