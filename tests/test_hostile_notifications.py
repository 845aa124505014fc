"""Sloppy and crafted notifications (issues 8 and 11): validated in the notification parser,
rejected at once with a reason (stage notification), never retried, settled per record and per
message so a crafted message neither poisons its good neighbours nor stalls the poller."""
from __future__ import annotations

import json
from typing import Any

import pytest
from sample_logs import guardduty

from shared.errors import NotificationError
from shared.notifications import ObjectRef, parse_body, validate_ref

GD = "Custom-AWSGuardDuty"
HEALTH = "Custom-AWSS3ConnectorHealth"


def s3_record(bucket: Any, key: Any, *, size: Any = 10, source: str = "aws:s3") -> dict:
    return {"eventSource": source, "eventName": "ObjectCreated:Put",
            "eventTime": "2026-12-01T00:00:00Z",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}}


BAD_RECORDS = {
    "empty_key": (lambda b: s3_record(b, ""), "object key is empty"),
    "numeric_key": (lambda b: s3_record(b, 12345), "object key is a int"),
    "key_over_1024_bytes_70kb": (lambda b: s3_record(b, "k" * 70_000),
                                 "longer than S3's 1024 bytes"),
    "negative_size": (lambda b: s3_record(b, "AWSLogs/x.log", size=-5), "not a byte count"),
    "absurd_size": (lambda b: s3_record(b, "AWSLogs/x.log", size=10 ** 20), "not a byte count"),
    "size_not_a_number": (lambda b: s3_record(b, "AWSLogs/x.log", size="huge"),
                          "not a byte count"),
    "bucket_arn": (lambda b: s3_record(f"arn:aws:s3:::{b}", "AWSLogs/x.log"),
                   "is not an S3 bucket name"),
    "access_point_arn": (lambda b: s3_record(
        "arn:aws:s3:us-east-1:999999999999:accesspoint/other", "AWSLogs/x.log"),
        "is not an S3 bucket name"),
    "bucket_with_slash": (lambda b: s3_record(f"{b}/../other", "AWSLogs/x.log"),
                          "is not an S3 bucket name"),
    "bucket_not_a_string": (lambda b: s3_record(["x"], "AWSLogs/x.log"),
                            "is not an S3 bucket name"),
    "not_from_s3": (lambda b: s3_record(b, "AWSLogs/x.log", source="aws:ec2"),
                    "is not an S3 event"),
}


@pytest.fixture(scope="module")
def polled(stack: Any) -> dict[str, Any]:
    from conftest import World

    with pytest.MonkeyPatch.context() as mp:
        world = World(stack, mp)
        src = world.add_source("sloppy")
        bucket = src["_bucket"]
        # one SQS message per bad record, sent before the good objects' notifications
        for name, (make, _) in BAD_RECORDS.items():
            world.send_raw(src, json.dumps({"_case": name, "Records": [make(bucket)]}))
        # three records in one body, the middle one not from S3: the two good objects go on
        # (a second bucket without notifications: the body below is their only announcement)
        quiet = f"quiet-{world.tag}"
        world.s3.create_bucket(Bucket=quiet)
        src["buckets"][quiet] = [""]
        k1, d1, n1 = guardduty(2)
        k2, d2, n2 = guardduty(3)
        world.s3.put_object(Bucket=quiet, Key=k1, Body=d1)
        world.s3.put_object(Bucket=quiet, Key=k2, Body=d2)
        world.send_raw(src, json.dumps({"Records": [
            s3_record(quiet, k1, size=len(d1)), s3_record(quiet, "x", source="aws:ec2"),
            s3_record(quiet, k2, size=len(d2))]}))
        # EventBridge with an impossible key
        world.send_raw(src, json.dumps({"source": "aws.s3", "detail-type": "Object Created",
                                        "time": "2026-12-01T00:00:00Z", "detail": {
                                            "bucket": {"name": bucket},
                                            "object": {"key": 7, "size": 3}}}))
        # and a good object announced last: the poller must still get to it
        k3, d3, n3 = guardduty(4)
        world.put(src, k3, d3)
        world.configure()
        host = world.host()
        host.run_timer()
        run = host.drain()
        result = {"poison": host.poison_items_all(), "run": run,
                  "accepted": len(world.accepted(GD)), "expected": n1 + n2 + n3,
                  "objects": [r for r in world.accepted(HEALTH) if r["Kind"] == "object"],
                  "beat": [r for r in world.accepted(HEALTH) if r["Kind"] == "heartbeat"],
                  "left": world.sqs.receive_message(QueueUrl=src["queueUrl"]).get("Messages"),
                  "world": world, "host": host}
        from shared import pipeline

        pipeline.reset_connector()
        yield result


@pytest.mark.parametrize("name", sorted(BAD_RECORDS))
def test_bad_record_is_dead_lettered_at_the_notification(polled: dict[str, Any],
                                                         name: str) -> None:
    items = [i for i in polled["poison"] if i.get("body") and f'"_case": "{name}"' in i["body"]]
    assert len(items) == 1, [i["reason"] for i in polled["poison"]]
    [item] = items
    assert item["stage"] == "notification" and item["kind"] == "bad_notification"
    assert BAD_RECORDS[name][1] in item["reason"]
    assert len(json.dumps(item)) < 64 * 1024  # fits the poison queue, even the 70 KB key


def test_good_records_beside_a_bad_one_are_delivered_and_the_bad_one_named(
        polled: dict[str, Any]) -> None:
    mixed = [i for i in polled["poison"] if "Records[1] is not an S3 event" in i["reason"]
             and "_case" not in (i.get("body") or "")]
    assert len(mixed) == 1 and "1 record(s) of the notification rejected" in mixed[0]["reason"]
    assert polled["accepted"] == polled["expected"]  # both neighbours and the last object


def test_eventbridge_with_a_numeric_key_is_rejected(polled: dict[str, Any]) -> None:
    assert any("EventBridge event: object key is a int" in i["reason"]
               for i in polled["poison"])


def test_nothing_bad_reached_the_work_queue_or_was_retried(polled: dict[str, Any]) -> None:
    # only the three good objects were processed, once each; SQS is empty; nothing failed
    assert sorted(r["Outcome"] for r in polled["objects"]) == ["delivered"] * 3
    assert polled["run"].failed == 0 and polled["left"] is None
    [beat] = polled["beat"]
    assert beat["MessagesPoisoned"] == len(BAD_RECORDS) + 2
    assert beat["ObjectsEnqueued"] == 3


def test_a_crafted_work_item_in_the_queue_is_dead_lettered_once(polled: dict[str, Any]) -> None:
    # GIVEN a work item someone wrote straight into the Azure queue with an empty key
    host = polled["host"]
    polled["world"].configure()
    host.work.send_message(json.dumps({"source": "sloppy", "bucket": "logs-bkt", "key": ""}))
    before = len(host.poison_items_all())
    run = host.drain()
    # THEN it is dead-lettered by our code on its first attempt, not retried by the host
    assert run.failed == 0 and run.succeeded == 1
    items = host.poison_items_all()
    assert len(items) == before + 1
    assert any("work item is not a valid object reference: object key is empty" in i["reason"]
               for i in items)


# ---- unit: the validator ---------------------------------------------------------------------

def ref(**kw: Any) -> ObjectRef:
    base = {"source": "s", "bucket": "my-bucket", "key": "AWSLogs/a.log"}
    base.update(kw)
    return ObjectRef(**base)


@pytest.mark.parametrize("bucket", ["my-bucket", "a.b.c", "Legacy_Bucket_US_East_1", "abc"])
def test_real_bucket_names_pass(bucket: str) -> None:
    assert validate_ref(ref(bucket=bucket)) is None


@pytest.mark.parametrize("bucket", ["ab", "", "-bucket", "bucket-", "a..b", "b/c", "x" * 256,
                                    "arn:aws:s3:::bucket"])
def test_impossible_bucket_names_are_refused(bucket: str) -> None:
    assert "bucket" in (validate_ref(ref(bucket=bucket)) or "")


def test_a_1024_byte_key_passes_and_1025_does_not() -> None:
    assert validate_ref(ref(key="k" * 1024)) is None
    assert "1024" in validate_ref(ref(key="é" * 513))  # 1026 bytes of UTF-8


def test_an_over_long_etag_or_sequencer_is_refused() -> None:
    assert "etag" in validate_ref(ref(etag="e" * 2000))
    assert "sequencer" in validate_ref(ref(sequencer=["not", "a", "string"]))


def test_a_body_with_only_bad_records_raises_with_every_reason() -> None:
    body = json.dumps({"Records": [s3_record("bkt", ""), s3_record("bkt", 5)]})
    with pytest.raises(NotificationError, match="object key is empty.*object key is a int"):
        parse_body(body, source="s")


def test_a_body_with_a_skipped_event_and_a_bad_record_keeps_both_outcomes() -> None:
    delete = dict(s3_record("bkt", "k"), eventName="ObjectRemoved:Delete")
    parsed = parse_body(json.dumps({"Records": [delete, s3_record("bkt", "")]}), source="s")
    assert parsed.objects == [] and len(parsed.skipped) == 1 and len(parsed.rejected) == 1


def test_a_size_given_as_a_digit_string_is_read_as_a_number() -> None:
    parsed = parse_body(json.dumps({"Records": [s3_record("bkt", "k", size="42")]}), source="s")
    assert parsed.objects[0].size == 42
