"""End to end over real sockets: S3 -> SQS (direct / SNS) -> timer -> Azure queue -> queue
function -> Logs Ingestion emulator, with the real SDKs and the host's retry/poison semantics."""
from __future__ import annotations

import json
from collections import Counter

from sample_logs import bad_cloudtrail, cloudtrail, guardduty, vpcflow

CT, VPC, GD = "Custom-AWSCloudTrail", "Custom-AWSVPCFlow", "Custom-AWSGuardDuty"
HEALTH = "Custom-AWSS3ConnectorHealth"


def run(world, **settings):
    world.configure(**settings)
    host = world.host()
    host.run_timer()
    return host, host.drain()


def health_rows(world, kind):
    return [r for r in world.accepted(HEALTH) if r["Kind"] == kind]


def test_every_record_of_every_object_arrives_once_in_its_table(world):
    # GIVEN a bucket that notifies SQS directly, with CloudTrail, VPC flow and GuardDuty objects
    src = world.add_source("prod")
    objs = [cloudtrail(250), vpcflow(400), guardduty(12)]
    for key, data, _ in objs:
        world.put(src, key, data)
    world.put(src, "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/"
                   "123456789012_CloudTrail_us-east-1_20240101T0000Z_spacesinkey+x.json.gz",
              objs[0][1])  # '+' must survive URL decoding as a literal plus
    # WHEN the timer and the queue function run
    host, result = run(world, MAX_BATCH_BYTES="60000")
    # THEN each table got exactly its events, once, with TimeGenerated from the events
    ct = world.accepted(CT)
    assert len(ct) == 500 and len({r["AwsEventId"] for r in ct}) == 250
    assert len(world.accepted(VPC)) == 400 and len(world.accepted(GD)) == 12
    assert {r["EventName"] for r in ct} <= {"GetObject", "ListBuckets", "PutBucketPolicy"}
    assert all(r["TimeGenerated"].endswith("Z") for r in ct)
    assert result.failed == 0 and result.succeeded == 4
    # batches respected the configured limit
    sizes = [r.uncompressed_size for r in world.stack.ingestion.requests if r.stream == CT]
    assert len(sizes) > 2 and max(sizes) <= 60000
    # SQS is empty, nothing was dead-lettered
    assert not world.sqs.receive_message(QueueUrl=src["queueUrl"]).get("Messages")
    assert host.poison_items() == []
    # one health row per object, one heartbeat per timer run
    rows = health_rows(world, "object")
    assert Counter(r["Outcome"] for r in rows) == Counter({"delivered": 4})
    assert {r["TargetTable"] for r in rows} == {"AWSCloudTrail", "AWSVPCFlow", "AWSGuardDuty"}
    assert all(r["LatencySeconds"] >= 0 and r["RecordsOut"] == r["RecordsIn"] for r in rows)
    [beat] = health_rows(world, "heartbeat")
    assert beat["MessagesReceived"] == 4 and beat["ObjectsEnqueued"] == 4
    assert beat["SqsBacklog"] == 0 and beat["PoisonDepth"] == 0


def test_sns_wrapped_notifications_with_role_federation(world):
    # GIVEN S3 -> SNS -> SQS and a source that uses AssumeRoleWithWebIdentity
    src = world.add_source("fed", via="sns", mode="role")
    key, data, n = vpcflow(50)
    world.put(src, key, data)
    tokens_before = world.stack.identity.request_count
    # WHEN the functions run
    _, result = run(world)
    # THEN the records arrive, and the AWS credentials came from a managed-identity token
    assert len(world.accepted(VPC)) == n and result.failed == 0
    assert world.stack.identity.request_count > tokens_before


def test_a_repeated_notification_does_not_send_the_object_twice(world):
    src = world.add_source("dup")
    key, data, n = guardduty(5)
    world.put(src, key, data)
    run(world)
    assert len(world.accepted(GD)) == n
    # WHEN S3/SQS deliver the same notification again
    etag = world.s3.head_object(Bucket=src["_bucket"], Key=key)["ETag"].strip('"')
    world.send_raw(src, json.dumps({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "eventTime": "2024-01-01T00:00:00Z",
        "s3": {"bucket": {"name": src["_bucket"]}, "object": {"key": key, "eTag": etag}}}]}))
    host = world.host()
    host.run_timer()
    host.drain()
    # THEN nothing new is sent and the health row says duplicate
    assert len(world.accepted(GD)) == n
    assert [r["Outcome"] for r in health_rows(world, "object")][-1] == "duplicate"


def test_unreadable_sqs_body_is_dead_lettered_with_reason_and_deleted(world):
    src = world.add_source("bad")
    world.send_raw(src, "this is not a notification")
    world.send_raw(src, json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    host, _ = run(world)
    [item] = host.poison_items()
    assert item["stage"] == "notification" and item["kind"] == "bad_notification"
    assert "not JSON" in item["reason"] and item["body"] == "this is not a notification"
    assert len(item["body_sha256"]) == 64
    assert not world.sqs.receive_message(QueueUrl=src["queueUrl"]).get("Messages")
    [beat] = health_rows(world, "heartbeat")
    assert beat["MessagesPoisoned"] == 1 and beat["ObjectsSkipped"] == 1


def test_objects_outside_the_allow_list_are_skipped_and_counted(world):
    src = world.add_source("allow", prefixes=["AWSLogs/"])
    world.put(src, "elsewhere/app.log", b"hello\n")
    key, data, n = guardduty(2)
    world.put(src, key, data)
    run(world)
    assert len(world.accepted(GD)) == n
    assert world.accepted("Custom-AWSS3Raw") == []
    assert health_rows(world, "heartbeat")[0]["ObjectsSkipped"] == 1


def test_content_that_does_not_fit_its_format_is_dead_lettered_rest_kept(world):
    src = world.add_source("trunc")
    key, data, _ = bad_cloudtrail()
    world.put(src, key, data)
    host, result = run(world)
    assert result.failed == 0
    items = host.poison_items()
    assert [i["stage"] for i in items] == ["parse"]
    assert items[0]["object"]["key"] == key and "CloudTrail" in items[0]["reason"]
    assert [r["Outcome"] for r in health_rows(world, "object")] == ["dead_lettered"]


def test_a_400_dead_letters_that_batch_with_the_service_text_and_delivers_the_rest(world):
    src = world.add_source("schema")
    key, data, n = cloudtrail(300)
    world.put(src, key, data)
    world.stack.ingestion.inject(400, stream=CT, code="InvalidPayload",
                                 message="column 'X' is not in the stream declaration")
    host, result = run(world, MAX_BATCH_BYTES="60000", MAX_UPLOADS_IN_FLIGHT="1")
    [item] = host.poison_items()
    assert item["status"] == 400 and item["code"] == "InvalidPayload"
    assert "not in the stream declaration" in item["reason"]
    dropped = item["records"]["count"]
    assert 0 < dropped < n and item["records"]["first"] == 0
    assert len(world.accepted(CT)) == n - dropped
    assert result.failed == 0  # the work item completed
    [row] = health_rows(world, "object")
    assert row["Outcome"] == "partial" and row["RecordsDropped"] == dropped


def test_a_403_is_dead_lettered_naming_the_dcr(world):
    src = world.add_source("forbidden")
    key, data, n = guardduty(3)
    world.put(src, key, data)
    # the app's identity lost its Monitoring Metrics Publisher role on the DCR
    world.stack.ingestion.allowed_principals = set()
    host, _ = run(world)
    [item] = host.poison_items()
    assert item["status"] == 403 and "does not have access" in item["reason"]
    assert item["records"]["count"] == n


def test_413_splits_the_batch_and_every_record_still_arrives_once(world):
    src = world.add_source("split")
    key, data, n = cloudtrail(40)
    world.put(src, key, data)
    world.stack.ingestion.inject(413, stream=CT, count=3)
    host, _ = run(world)
    ids = [r["AwsEventId"] for r in world.accepted(CT)]
    assert len(ids) == n and len(set(ids)) == n
    assert host.poison_items() == []
    statuses = [r.status for r in world.stack.ingestion.requests if r.stream == CT]
    assert statuses.count(413) == 3


def test_throttling_and_resets_are_retried_transparently(world):
    src = world.add_source("throttle")
    key, data, n = vpcflow(100)
    world.put(src, key, data)
    world.stack.ingestion.inject(429, stream=VPC, retry_after=0.05)
    world.stack.ingestion.inject(503, stream=VPC)
    world.stack.ingestion.inject(reset=True, stream=VPC)
    host, result = run(world, UPLOAD_MAX_ATTEMPTS="4")
    assert len(world.accepted(VPC)) == n
    assert result.failed == 0 and host.poison_items() == []


def test_transient_failures_that_outlast_retries_resume_then_dead_letter_then_replay(world):
    src = world.add_source("outage")
    key, data, n = cloudtrail(200)
    world.put(src, key, data)
    # the first two batches go through, then the service is down for every attempt
    world.configure(MAX_BATCH_BYTES="60000", MAX_UPLOADS_IN_FLIGHT="1", UPLOAD_MAX_ATTEMPTS="2")
    from shared import pipeline
    from shared.ingestion import CircuitBreaker
    # one object failing alone is not an outage of the service: keep the breaker out of it
    # (tests/test_breaker.py covers deferral)
    pipeline.connector().breaker = CircuitBreaker(threshold=100)
    host = world.host()
    host.run_timer()
    ingestion = world.stack.ingestion
    ingestion.inject(latency=0.0, stream=CT, count=2)
    ingestion.inject(503, stream=CT, count=2 * host.max_dequeue)
    result = host.drain()
    # THEN the host retried the work item maxDequeueCount times, and the last attempt put our
    # envelope (with the reason) in the poison queue instead of a bare message
    assert result.failed == host.max_dequeue - 1
    [item] = host.poison_items()
    assert item["kind"] == "delivery_transient" and "503" in item["reason"]
    assert item["attempts"] == host.max_dequeue
    delivered = len(world.accepted(CT))
    assert 0 < delivered < n
    # WHEN the service is back and the operator replays the poison queue
    ingestion.reset()
    from shared.__main__ import main
    assert main(["replay"]) == 0
    host.drain()
    # THEN only the missing records are sent: every record exactly once overall
    assert len(world.accepted(CT)) == n - delivered
    assert host.poison_items() == []


def test_vpc_flow_logs_in_parquet_go_through_the_pipeline(world):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    src = world.add_source("parquet")
    n = 500
    table = pa.table({"version": [5] * n, "account_id": ["123456789012"] * n,
                      "interface_id": ["eni-1"] * n,
                      "srcaddr": [f"10.0.0.{i % 250}" for i in range(n)],
                      "dstaddr": ["198.51.100.1"] * n, "srcport": list(range(n)),
                      "dstport": [443] * n, "protocol": [6] * n, "packets": [3] * n,
                      "bytes": [1500] * n, "start": [1704164700] * n, "end": [1704164760] * n,
                      "action": ["ACCEPT"] * n, "log_status": ["OK"] * n})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="gzip")
    key = ("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
           "year=2024/month=01/day=02/123456789012_vpcflowlogs_us-east-1_fl-1_20240102T0305Z_"
           "abcd.log.parquet")
    world.put(src, key, buf.getvalue())
    host, result = run(world)
    rows = world.accepted(VPC)
    assert len(rows) == n and result.failed == 0 and host.poison_items() == []
    assert sorted(r["SrcPort"] for r in rows) == list(range(n))
    assert rows[0]["TimeGenerated"] == "2024-01-02T03:05:00Z"


def test_tables_are_routed_to_their_own_dcr_and_a_404_is_dead_lettered(world):
    # GIVEN GuardDuty's stream lives in a second DCR (a DCR holds at most 10 streams) that
    # this workspace does not know: the route is followed, and the 404 names that DCR
    src = world.add_source("routes")
    for key, data, _ in (cloudtrail(5), guardduty(3)):
        world.put(src, key, data)
    endpoint = world.stack.env["LOGS_INGESTION_ENDPOINT"]
    routes = {"AWSGuardDuty": {"endpoint": endpoint, "dcrImmutableId": "dcr-second"}}
    host, result = run(world, DCR_ROUTES=json.dumps(routes))
    assert len(world.accepted(CT)) == 5 and world.accepted(GD) == []
    [item] = host.poison_items()
    assert item["status"] == 404 and "dcr-second" in item["reason"]
    assert item["table"] == "AWSGuardDuty" and item["records"]["count"] == 3
    assert result.failed == 0


def test_backfill_and_notifications_of_the_same_object_deliver_it_once(world):
    src = world.add_source("backfill")
    key, data, n = guardduty(7)
    world.put(src, key, data)
    world.configure()
    from shared.__main__ import main
    # WHEN history is backfilled from a listing and the live notification also arrives
    assert main(["backfill", "--source", "backfill", "--bucket", src["_bucket"],
                 "--prefix", "AWSLogs/"]) == 0
    host = world.host()
    host.drain()
    host.run_timer()
    host.drain()
    # THEN the object is delivered once; the second work item is recognised as a duplicate
    assert len(world.accepted(GD)) == n
    assert sorted(r["Outcome"] for r in health_rows(world, "object")) == ["delivered",
                                                                          "duplicate"]


def test_work_queue_outage_leaves_notifications_in_sqs_and_fails_the_run(world):
    import pytest
    from azure.storage.queue import QueueServiceClient

    from shared import pipeline
    from shared.errors import TransientError
    from shared.queues import Queue

    src = world.add_source("azdown")
    for key, data, _ in (guardduty(1), guardduty(1), vpcflow(3)):
        world.put(src, key, data)
    world.configure()
    conn = pipeline.connector()
    # GIVEN the Azure work queue cannot be reached (a real socket, refused; no SDK retries)
    dead = QueueServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;", retry_total=0)
    conn.work = Queue(dead, "s3-objects")
    # WHEN the timer runs THEN it fails loudly, and no notification was deleted
    with pytest.raises(TransientError, match="azdown"):
        pipeline.poll_notifications(conn)
    attrs = world.sqs.get_queue_attributes(QueueUrl=src["queueUrl"], AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessages"]) + \
        int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 3
    [beat] = health_rows(world, "heartbeat")
    assert beat["Outcome"] == "error" and beat["ObjectsEnqueued"] == 0


def test_a_format_rule_overrides_detection(world):
    # GIVEN a source whose rule sends app/ objects to the raw table, and one AWS-named object
    src = world.add_source("rules", formatRules=[{"pattern": "^app/", "format": "raw"}])
    world.put(src, "app/service.jsonl", b'{"time": "2024-05-01T10:00:00Z", "msg": "a"}\n'
                                        b'{"time": "2024-05-01T10:00:01Z", "msg": "b"}\n')
    key, data, n = guardduty(2)
    world.put(src, key, data)
    host, result = run(world)
    raw = world.accepted("Custom-AWSS3Raw")
    assert [r["Fields"]["msg"] for r in raw] == ["a", "b"]
    assert raw[0]["TimeGenerated"] == "2024-05-01T10:00:00Z"
    assert raw[0]["S3Key"] == "app/service.jsonl" and raw[0]["SourceName"] == "rules"
    assert len(world.accepted(GD)) == n and result.failed == 0


def test_a_fault_mid_file_keeps_what_was_delivered_before_it_counted(world):
    import gzip as gz

    src = world.add_source("midfile")
    key, data, n = cloudtrail(200)
    world.put(src, key, gz.compress(gz.decompress(data)[:-300]))  # cut inside the last record
    host, result = run(world, MAX_BATCH_BYTES="30000", MAX_UPLOADS_IN_FLIGHT="1")
    delivered = len(world.accepted(CT))
    assert 0 < delivered < n and result.failed == 0
    [item] = host.poison_items()
    assert item["stage"] == "parse" and item["object"]["key"] == key
    [row] = health_rows(world, "object")
    assert row["Outcome"] == "dead_lettered" and row["RecordsOut"] == delivered


def test_two_copies_of_one_work_item_do_not_both_send_the_object(world):
    # GIVEN the same object reference twice on the work queue (SQS redelivered a notification
    # while the first copy was being processed)
    from shared import pipeline
    from shared.notifications import ObjectRef

    src = world.add_source("lease")
    key, data, n = guardduty(6)
    world.put(src, key, data)
    world.configure()
    conn = pipeline.connector()
    ref = ObjectRef(source="lease", bucket=src["_bucket"], key=key,
                    etag=world.s3.head_object(Bucket=src["_bucket"], Key=key)["ETag"].strip('"'))
    # WHEN a worker holds the object's lease and the second copy arrives
    progress = conn.checkpoints.load(ref)
    assert conn.checkpoints.claim(ref, progress, 60) == 0
    stats = pipeline.process_object(conn, ref.to_json())
    # THEN the second copy is deferred (re-queued with a delay), nothing is sent twice
    assert stats.outcome == "deferred" and world.accepted(GD) == []
    assert conn.work.depth() == 1
    # and once the holder finished, the deferred copy is a duplicate
    progress.state = "done"
    conn.checkpoints.save(ref, progress, release=True)
    assert pipeline.process_object(conn, ref.to_json()).outcome == "duplicate"


def test_a_stale_claim_loses_the_race_and_is_deferred(world):
    from shared import pipeline
    from shared.notifications import ObjectRef

    src = world.add_source("race")
    world.configure()
    conn = pipeline.connector()
    ref = ObjectRef(source="race", bucket=src["_bucket"], key="k", etag="e")
    first, second = conn.checkpoints.load(ref), conn.checkpoints.load(ref)
    assert conn.checkpoints.claim(ref, first, 60) == 0      # creates the entity
    assert conn.checkpoints.claim(ref, second, 60) > 0      # saw no entity: create conflicts
    conn.checkpoints.save(ref, first, release=True)
    a, b = conn.checkpoints.load(ref), conn.checkpoints.load(ref)
    assert conn.checkpoints.claim(ref, a, 60) == 0
    assert conn.checkpoints.claim(ref, b, 60) > 0           # same etag: If-Match fails


def test_unreadable_lines_are_dead_lettered_with_their_line_numbers_rest_delivered(world):
    src = world.add_source("lines")
    key, data, n = guardduty(5)
    import gzip as gz
    lines = gz.decompress(data).decode().splitlines()
    lines.insert(2, "{this is not json")
    world.put(src, key, gz.compress("\n".join(lines).encode()))
    host, result = run(world)
    assert len(world.accepted(GD)) == n and result.failed == 0
    [item] = host.poison_items()
    assert item["stage"] == "parse" and item["records"]["count"] == 1
    assert item["records"]["lines"] == [3] and item["samples"][0].startswith("line 3: {this")


def test_an_invocation_hands_work_back_before_the_function_timeout(world):
    # GIVEN the service keeps failing and the invocation's budget (functionTimeout less a
    # margin; shortened here) is smaller than all the retries would take
    from dataclasses import replace

    from shared import pipeline
    from shared.ingestion import CircuitBreaker

    src = world.add_source("budget")
    key, data, n = guardduty(3)
    world.put(src, key, data)
    world.configure(UPLOAD_MAX_ATTEMPTS="10", UPLOAD_BACKOFF_BASE_SECONDS="0.5",
                    UPLOAD_BACKOFF_MAX_SECONDS="2")
    conn = pipeline.connector()
    conn.settings = replace(conn.settings, invocation_budget_seconds=1.0)
    conn.breaker = CircuitBreaker(threshold=100)
    world.stack.ingestion.inject(503, stream=GD, count=50)
    host = world.host()
    host.run_timer()
    run = host.drain(max_seconds=4)
    # THEN each attempt gave the item back within its budget, with the reason; without the
    # budget one attempt alone would take 10 tries with backoff (well over 4 s)
    assert run.failed >= 3 and all("time budget" in e for e in run.errors)
    assert world.accepted(GD) == []


def test_a_message_sqs_refuses_to_delete_is_counted_and_left_for_dedup(world, caplog):
    from shared import pipeline
    from shared.health import PollStats

    src = world.add_source("delfail")
    world.send_raw(src, json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    world.configure()
    conn = pipeline.connector()
    source = conn.settings.source("delfail")
    [good] = world.sqs.receive_message(QueueUrl=src["queueUrl"]).get("Messages")
    stats = PollStats("delfail")
    pipeline.delete_messages(conn, source, [good, {"ReceiptHandle": "expired"}], stats)
    # THEN the one SQS accepted is counted, the refused one is reported (it will come back
    # after its visibility timeout and its objects are deduplicated), nothing raises
    assert stats.messages_deleted == 1
    assert "ReceiptHandleIsInvalid" in caplog.text


def test_a_field_over_64_kb_arrives_clipped_and_the_health_row_counts_it(world):
    # GIVEN CloudTrail events whose requestParameters are 70 KB of JSON text (the service
    # would silently cut the field at 64 KB)
    src = world.add_source("clip")
    key, data, n = cloudtrail(3, pad=70_000)
    world.put(src, key, data)
    run(world)
    rows = world.accepted(CT)
    assert len(rows) == n
    for r in rows:
        text = r["RequestParameters"]
        assert len(text.encode()) <= 64 * 1024 and text.startswith('{"bucketName":"finance"')
        assert text.endswith(" bytes]") and "...[clipped " in text
    [health] = health_rows(world, "object")
    assert health["FieldsClipped"] == n and health["Outcome"] == "delivered"
