"""The poison envelope: one readable shape, never larger than a queue message."""
import base64
import json

from shared.errors import DeliveryError, NotificationError
from shared.notifications import ObjectRef
from shared.poison import SCHEMA, for_body, for_object, read_envelope
from shared.queues import MAX_MESSAGE_BYTES

REF = ObjectRef(source="prod", bucket="bkt", key="AWSLogs/1/CloudTrail/x.json.gz", etag="e1")


def test_object_envelope_names_object_records_status_and_service_text():
    err = DeliveryError("Logs Ingestion API refused records 3-9: HTTP 400 InvalidPayload: bad",
                        status=400, code="InvalidPayload")
    env = for_object(REF, err, stage="deliver", attempts=2, table="AWSCloudTrail",
                     positions=[5, 3, 9])
    data = json.loads(env.to_json())
    assert data["schema"] == SCHEMA
    assert data["kind"] == "delivery_rejected" and data["stage"] == "deliver"
    assert data["object"]["key"] == REF.key and data["status"] == 400
    assert data["code"] == "InvalidPayload" and "HTTP 400" in data["reason"]
    assert data["records"] == {"count": 3, "first": 3, "last": 9, "positions": [3, 5, 9]}
    assert data["attempts"] == 2 and data["first_failure"] and data["last_failure"]
    assert read_envelope(env.to_json()).ref == REF


def test_huge_body_is_cut_to_fit_one_queue_message_and_keeps_its_hash():
    body = "x" * 500_000
    env = for_body(body, NotificationError("not JSON"), source="prod", message_id="m")
    text = env.to_json()
    assert len(base64.b64encode(text.encode())) <= MAX_MESSAGE_BYTES
    data = json.loads(text)
    assert "...[cut" in data["body"]
    assert len(data["body_sha256"]) == 64
    assert "m" in data["reason"]


def test_many_positions_and_samples_still_fit():
    env = for_object(REF, DeliveryError("x" * 100_000), stage="parse", attempts=1,
                     positions=list(range(100_000)), samples=["y" * 60_000] * 3)
    assert len(base64.b64encode(env.to_json().encode())) <= MAX_MESSAGE_BYTES


def test_a_raw_work_item_moved_by_the_host_is_read_as_an_envelope():
    env = read_envelope(REF.to_json())
    assert env.kind == "host_poison" and env.ref == REF
