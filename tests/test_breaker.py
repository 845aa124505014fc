"""The circuit breaker: opens after repeated object-level outages, defers work items instead
of burning their dequeue count, and closes again after a successful trial."""
import json

from sample_logs import guardduty

from shared.ingestion import CircuitBreaker


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_opens_after_threshold_then_half_open_then_closes():
    clock = Clock()
    b = CircuitBreaker(threshold=2, cooldown=10, max_cooldown=40, clock=clock)
    b.failure()
    assert b.state == "closed" and b.retry_in() == 0
    b.failure()
    assert b.state == "open" and b.retry_in() == 10
    clock.t += 10
    assert b.state == "half_open" and b.retry_in() == 0
    b.failure()  # the trial failed: longer cooldown
    assert b.state == "open" and b.retry_in() == 20
    clock.t += 20
    b.success()
    assert b.state == "closed"


def test_cooldown_is_capped():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown=10, max_cooldown=25, clock=clock)
    for _ in range(6):
        b.failure()
        clock.t += b.retry_in()
    b.failure()
    assert b.retry_in() == 25


def test_open_circuit_defers_the_work_item_without_spending_its_attempts(world):
    from shared import pipeline

    src = world.add_source("breaker")
    key, data, n = guardduty(4)
    world.put(src, key, data)
    world.configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="2")
    host = world.host()
    host.run_timer()
    conn = pipeline.connector()
    conn.breaker.failure()  # an outage was just seen by some instance
    [msg] = list(host.work.receive_messages(max_messages=1, visibility_timeout=30))
    stats = pipeline.process_object(conn, msg.content, dequeue_count=msg.dequeue_count)
    host.work.delete_message(msg)  # the host completes it: the function returned normally
    assert stats.outcome == "deferred" and world.accepted("Custom-AWSGuardDuty") == []
    # the item is back on the queue, invisible for the cooldown, with a fresh dequeue count
    assert host.work.get_queue_properties().approximate_message_count == 1
    assert list(host.work.receive_messages(max_messages=1)) == []
    result = host.drain(max_seconds=20)
    assert result.failed == 0 and len(world.accepted("Custom-AWSGuardDuty")) == n
    assert conn.breaker.state == "closed"


# ---- one breaker per endpoint, shared by every instance (entity in the checkpoint table) ----

def _instances(world, n=2, **settings):
    """``n`` Connectors built from the same settings: separate clients, like separate
    workers, sharing only the checkpoint table (Azurite)."""
    from shared import pipeline
    from shared.config import load_settings

    world.configure(**settings)
    return [pipeline.Connector.from_settings(load_settings()) for _ in range(n)]


def test_failures_on_different_instances_open_the_circuit_for_all(world):
    world.add_source("shared")
    a, b = _instances(world, CIRCUIT_FAILURE_THRESHOLD="3", CIRCUIT_COOLDOWN_SECONDS="30")
    a.breaker.failure("x")
    b.breaker.failure("y")
    assert a.breaker.state == b.breaker.state == "closed"
    a.breaker.failure("z")  # the third object in a row, whichever instance saw it
    assert b.breaker.state == "open" and 28 < b.breaker.retry_in() <= 30
    assert b.breaker.admit("w") > 0, "an open circuit admits nobody"
    b.breaker.success("v")
    assert a.breaker.state == "closed" and a.breaker.snapshot()["closed"] == 1


def test_concurrent_failures_are_all_counted(world):
    """Optimistic concurrency: If-Match on the entity's ETag, the loser re-reads."""
    from concurrent.futures import ThreadPoolExecutor

    world.add_source("race")
    conns = _instances(world, 4, CIRCUIT_FAILURE_THRESHOLD="100")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: conns[i % 4].breaker.failure(str(i)), range(24)))
    assert conns[0].breaker.snapshot()["failures"] == 24


class SharedClock(Clock):
    pass


def test_one_probe_at_a_time_and_a_dead_probers_lease_runs_out(world):
    from shared.ingestion import CircuitBreaker

    world.add_source("probe")
    a, b = _instances(world)
    clock = SharedClock()
    endpoint = a.settings.logs_ingestion_endpoint
    ba, bb = (CircuitBreaker(c.table, endpoint, threshold=1, cooldown=10, probe_seconds=60,
                             clock=clock) for c in (a, b))
    ba.failure("o1")
    assert bb.state == "open"
    clock.t += 10
    assert ba.state == bb.state == "half_open"
    assert ba.admit("prober") == 0, "the first caller takes the probe"
    assert bb.admit("other") > 0, "a second caller waits while the probe runs"
    clock.t += 50
    ba.renew_probe("prober")  # the prober is alive and still sending
    clock.t += 30
    assert bb.admit("other") > 0
    clock.t += 61  # the prober died: no renewal, its lease runs out
    assert bb.admit("other") == 0, "another instance probes after the dead prober's lease"
    bb.failure("other")  # the trial failed: open again, for longer
    assert ba.state == "open" and 19 < ba.retry_in() <= 20
    clock.t += 20
    assert ba.admit("third") == 0
    ba.success("third")
    assert bb.state == "closed"


def test_open_circuit_pauses_the_poller_and_the_heartbeat_and_health_show_it(world):
    from shared import pipeline

    src = world.add_source("paused")
    key, data, _ = guardduty(3)
    world.put(src, key, data)
    world.configure(CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="60")
    conn = pipeline.connector()
    conn.breaker.failure()
    [stats] = pipeline.poll_notifications(conn)
    assert stats.paused and stats.messages_received == 0
    row = stats.row()
    assert row["CircuitState"] == "open" and row["Outcome"] == "paused"
    beats = [r for r in world.accepted("Custom-AWSS3ConnectorHealth")
             if r["Kind"] == "heartbeat"]
    assert beats and beats[-1]["CircuitState"] == "open"
    sqs = world.sqs.get_queue_attributes(QueueUrl=src["queueUrl"],
                                         AttributeNames=["ApproximateNumberOfMessages"])
    assert int(sqs["Attributes"]["ApproximateNumberOfMessages"]) == 1, "the backlog stays in SQS"
    status, body = pipeline.check_health(conn)
    circuit = [v for k, v in body["components"].items() if k.startswith("circuit:")]
    assert status == 503 and circuit[0]["state"] == "open" and circuit[0]["retry_in_s"] > 50


def test_an_open_circuit_of_a_routed_endpoint_pauses_only_the_sources_that_failed_there(world):
    # GIVEN GuardDuty routed to a second endpoint, and two sources with a backlog each
    from shared import pipeline

    failing, fine = world.add_source("routedfail"), world.add_source("routedfine")
    for src in (failing, fine):
        key, data, _ = guardduty(2)
        world.put(src, key, data)
    default = world.stack.env["LOGS_INGESTION_ENDPOINT"]
    other = default.replace("127.0.0.1", "localhost")
    world.configure(DCR_ROUTES=json.dumps({"AWSGuardDuty": {
        "endpoint": other, "dcrImmutableId": world.stack.env["DCR_IMMUTABLE_ID"]}}),
        CIRCUIT_FAILURE_THRESHOLD="1", CIRCUIT_COOLDOWN_SECONDS="60")
    conn = pipeline.connector()
    # WHEN an object of the first source failed on the routed endpoint and its circuit opened
    conn.breaker_at(other).failure(source="routedfail")
    assert conn.breaker.state == "closed"  # the default endpoint is fine
    assert conn.breaker_at(other).snapshot()["sources"] == ["routedfail"]
    stats = {s.source: s for s in pipeline.poll_notifications(conn)}
    # THEN that source's backlog waits in SQS; the other source is pulled as usual
    assert stats["routedfail"].paused and stats["routedfail"].messages_received == 0
    assert not stats["routedfine"].paused and stats["routedfine"].messages_received == 1
    sqs = world.sqs.get_queue_attributes(QueueUrl=failing["queueUrl"],
                                         AttributeNames=["ApproximateNumberOfMessages"])
    assert int(sqs["Attributes"]["ApproximateNumberOfMessages"]) == 1
    # AND once the circuit closes, the source is pulled again
    conn.breaker_at(other).success()
    assert conn.breaker_at(other).held_sources() == set()
    stats = {s.source: s for s in pipeline.poll_notifications(conn)}
    assert not stats["routedfail"].paused and stats["routedfail"].messages_received == 1
