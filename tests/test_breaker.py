"""The circuit breaker: opens after repeated object-level outages, defers work items instead
of burning their dequeue count, and closes again after a successful trial."""
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
    world.configure()
    host = world.host()
    host.run_timer()
    conn = pipeline.connector()
    conn.breaker = CircuitBreaker(threshold=1, cooldown=2)
    conn.breaker.failure()  # an outage was just seen by this worker
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
