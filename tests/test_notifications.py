"""SQS bodies -> object references (GIVEN a real-shaped body, WHEN parsed, THEN ...)."""
import json
from pathlib import Path

import pytest

from shared.errors import NotificationError
from shared.notifications import ObjectRef, parse_body

EVENTS = Path(__file__).parent / "events"


def body(name: str) -> str:
    return (EVENTS / name).read_text()


def test_direct_s3_notification_gives_one_object_with_all_fields():
    parsed = parse_body(body("sqs_body__direct_s3_notification_ObjectCreatedPut__awsdocs.json"),
                        source="prod", message_id="m1")
    assert parsed.skipped == []
    [ref] = parsed.objects
    assert (ref.bucket, ref.key, ref.size) == ("mybucket", "HappyFace.jpg", 1024)
    assert ref.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert ref.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert ref.sequencer == "0055AED6DCD90281E5"
    assert ref.event_time == "1970-01-01T00:00:00.000Z"
    assert (ref.source, ref.sqs_message_id) == ("prod", "m1")


def test_sns_enveloped_notification_is_unwrapped():
    parsed = parse_body(body("ASSEMBLED_sqs_body__sns_wrapped_s3_notification.json"), source="s")
    assert [r.key for r in parsed.objects] == ["HappyFace.jpg"]


def test_sns_raw_delivery_is_the_s3_event_itself():
    raw = json.loads(body("sqs_body__direct_s3_notification_ObjectCreatedPut__awsdocs.json"))
    assert parse_body(json.dumps(raw), source="s").objects[0].bucket == "mybucket"


def test_sns_envelope_with_non_json_message_is_an_error_naming_the_topic():
    with pytest.raises(NotificationError, match="MyTopic"):
        parse_body(body("sqs_body__sns_envelope_HelloWorld__awsdocs.json"), source="s")


def test_eventbridge_object_created():
    [ref] = parse_body(body("eventbridge_ObjectCreated__awsdocs.json"), source="s").objects
    assert (ref.bucket, ref.key, ref.size) == ("DOC-EXAMPLE-BUCKET1", "example-key", 5)
    assert ref.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert ref.event_time == "2021-11-12T00:00:00Z"


@pytest.mark.parametrize("name", ["eventbridge_ObjectDeleted_DeleteMarker__awsdocs.json",
                                  "eventbridge_ObjectDeleted_LifecycleExpiration__awsdocs.json",
                                  "eventbridge_ObjectRestoreCompleted__awsdocs.json",
                                  "sqs_body__s3_TestEvent__awsdocs.json"])
def test_non_create_events_are_skipped_with_a_reason(name):
    parsed = parse_body(body(name), source="s")
    assert parsed.objects == []
    assert len(parsed.skipped) == 1 and parsed.skipped[0]


def test_several_records_and_mixed_event_names():
    rec = json.loads(body("sqs_body__direct_s3_notification_ObjectCreatedPut__awsdocs.json"))
    r0 = rec["Records"][0]
    r1 = json.loads(json.dumps(r0))
    r1["s3"]["object"]["key"] = "second.json.gz"
    r2 = json.loads(json.dumps(r0))
    r2["eventName"] = "ObjectRemoved:Delete"
    parsed = parse_body(json.dumps({"Records": [r0, r1, r2]}), source="s")
    assert [r.key for r in parsed.objects] == ["HappyFace.jpg", "second.json.gz"]
    assert parsed.skipped == ["ObjectRemoved:Delete (not an object creation)"]


def test_keys_are_url_decoded_exactly_once():
    rec = json.loads(body("sqs_body__direct_s3_notification_ObjectCreatedPut__awsdocs.json"))
    rec["Records"][0]["s3"]["object"]["key"] = "noog+nork/a%2Bb%20c%25d.log"
    [ref] = parse_body(json.dumps(rec), source="s").objects
    assert ref.key == "noog nork/a+b c%d.log"


@pytest.mark.parametrize("text,match", [
    ("not json", "not JSON"),
    ("[1,2]", "not an object"),
    ('{"hello": 1}', "not an S3 notification"),
    ('{"Records": [{"eventSource": "aws:sqs"}]}', "not an S3 event"),
    ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}', "lacks"),
])
def test_unreadable_bodies_raise_with_a_reason(text, match):
    with pytest.raises(NotificationError, match=match):
        parse_body(text, source="s")


def test_object_ref_round_trips_through_json():
    ref = ObjectRef(source="s", bucket="bkt", key="k y", size=3, etag="e", event_time="t")
    assert ObjectRef.from_json(ref.to_json()) == ref
    assert ref.identity == "bkt/k y@e"


def test_null_version_id_means_no_version():
    rec = json.loads(body("sqs_body__direct_s3_notification_ObjectCreatedPut__awsdocs.json"))
    rec["Records"][0]["s3"]["object"]["versionId"] = "null"
    [ref] = parse_body(json.dumps(rec), source="s").objects
    assert ref.version_id is None and ref.identity.endswith("@d41d8cd98f00b204e9800998ecf8427e")


def test_a_backfilled_ref_and_a_versioned_notification_are_the_same_object():
    notified = ObjectRef(source="s", bucket="b", key="k", etag="e1", version_id="v9")
    listed = ObjectRef(source="s", bucket="b", key="k", etag="e1")
    assert notified.identity == listed.identity
    assert ObjectRef(source="s", bucket="b", key="k", etag="e2").identity != listed.identity
