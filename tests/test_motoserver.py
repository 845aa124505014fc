"""The local SQS (devtools/motoserver.py) hands a message to one receiver at a time, as SQS
does: moto alone gave 1-2 of 400 messages to two of 8 concurrent receivers in 2 of 5 runs, and
the poller's 8 receive lanes then forwarded a notification twice."""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import boto3


def _queue(world) -> tuple[object, str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs, sqs.create_queue(QueueName=f"atomic-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def test_concurrent_receivers_never_get_the_same_message(world) -> None:
    # GIVEN queues of 100 messages, drained by 8 receivers at once (the poller's lanes)
    duplicates, seen_total = 0, 0
    for _ in range(10):
        sqs, url = _queue(world)
        for i in range(0, 100, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(j), "MessageBody": f"m{i + j}"} for j in range(10)])
        seen: Counter[str] = Counter()
        lock = threading.Lock()

        def lane(url: str = url, seen: Counter[str] = seen, lock: threading.Lock = lock) -> None:
            client = boto3.client("sqs", region_name="us-east-1")
            while True:
                got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                             WaitTimeSeconds=0, VisibilityTimeout=300)
                if not got.get("Messages"):
                    return
                with lock:
                    seen.update(m["MessageId"] for m in got["Messages"])

        threads = [threading.Thread(target=lane) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # THEN every message was received exactly once
        duplicates += sum(n - 1 for n in seen.values())
        seen_total += len(seen)
        sqs.delete_queue(QueueUrl=url)
    assert (seen_total, duplicates) == (1000, 0)


def test_a_long_poll_still_waits_for_a_message_and_does_not_block_other_receivers(world) -> None:
    sqs, url = _queue(world)
    other, other_url = _queue(world)
    other.send_message(QueueUrl=other_url, MessageBody="ready")
    got: dict[str, object] = {}

    def poll() -> None:
        t = time.monotonic()
        resp = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        got["body"] = [m["Body"] for m in resp.get("Messages", [])]
        got["waited"] = time.monotonic() - t

    waiting = threading.Thread(target=poll)
    waiting.start()
    time.sleep(0.5)
    # WHEN another receiver asks meanwhile, it is answered at once (the lock is not held)
    t = time.monotonic()
    assert [m["Body"] for m in other.receive_message(QueueUrl=other_url)["Messages"]] == ["ready"]
    assert time.monotonic() - t < 2
    sqs.send_message(QueueUrl=url, MessageBody="late")
    waiting.join(10)
    # THEN the long poll returned the message sent after it began, before its timeout
    assert got["body"] == ["late"] and 0.4 < got["waited"] < 5
    # and an empty long poll waits its whole timeout
    t = time.monotonic()
    assert not sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
    assert time.monotonic() - t >= 0.9
