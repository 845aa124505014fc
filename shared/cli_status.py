"""``s3sentinel status``: where the work is, now.

Per source: the SQS backlog (visible and in flight) and the age of its oldest message (the
CloudWatch metric ``ApproximateAgeOfOldestMessage``; SQS itself has no way to read it without
receiving). The work and poison queue depths; the circuit breaker's state in this process and
as the last poller run saw it; objects delivered / partial / running / dead-lettered in the last
hour from the checkpoint table; and each source's last heartbeat (saved there by the poller).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from . import checkpoints as cp

RECENT_LIMIT = 100_000  # checkpoint rows counted at most (the count says when it stopped)


def _oldest_age(conn: Any, source: Any) -> tuple[float | None, str | None]:
    name = source.queue_url.rstrip("/").rsplit("/", 1)[-1]
    now = datetime.now(UTC)
    try:
        resp = conn.aws.call(source, "cloudwatch", lambda c: c.get_metric_statistics(
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": name}], StartTime=now - timedelta(
                minutes=15), EndTime=now + timedelta(minutes=1), Period=60,
            Statistics=["Maximum"]))
    except Exception as err:  # noqa: BLE001 - reported in the output, the rest goes on
        text = str(getattr(err, "message", None) or err)[:200]
        if "AccessDenied" in text or "not authorized" in text:
            return None, "the role needs cloudwatch:GetMetricStatistics"
        return None, f"CloudWatch: {type(err).__name__}: {text}"
    points = sorted(resp.get("Datapoints", []), key=lambda p: p["Timestamp"])
    if not points:
        return None, "no CloudWatch data in the last 15 min"
    return float(points[-1]["Maximum"]), None


def _classify(row: dict[str, Any], now: float, max_attempts: int) -> str:
    state = row.get("State", "")
    if state == cp.DONE:
        return "delivered"
    if state == cp.PARTIAL:
        # nothing accepted: the whole object was dead-lettered (read or format failure)
        return "dead_lettered" if (row.get("Done") or "[]") == "[]" else "partial"
    if state == cp.RUNNING:
        idle = float(row.get("LeaseUntil") or 0) <= now
        if idle and int(row.get("Attempts") or 0) >= max_attempts:
            return "dead_lettered"  # the last attempt failed and was dead-lettered
        return "running" if not idle else "retrying"
    return "other"


def gather(conn: Any, *, window: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """Everything ``status`` prints, as one dict."""
    import time

    out: dict[str, Any] = {"time": datetime.now(UTC).isoformat(timespec="seconds"),
                           "sources": [], "queues": {}, "circuit": {}, "objects": {}}
    beats = {b.get("Name"): b for b in conn.checkpoints.list_meta("heartbeat")}
    for source in conn.settings.sources:
        row: dict[str, Any] = {"name": source.name, "queue_url": source.queue_url}
        try:
            attrs = conn.aws.call(source, "sqs", lambda c, s=source: c.get_queue_attributes(
                QueueUrl=s.queue_url, AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))
            a = attrs["Attributes"]
            row["backlog"] = int(a.get("ApproximateNumberOfMessages", 0))
            row["in_flight"] = int(a.get("ApproximateNumberOfMessagesNotVisible", 0))
        except Exception as err:  # noqa: BLE001
            row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        row["oldest_age_s"], row["oldest_age_note"] = _oldest_age(conn, source)
        beat = beats.get(source.name)
        row["last_heartbeat"] = beat and {
            "time": beat.get("TimeGenerated"), "outcome": beat.get("Outcome"),
            "messages": beat.get("MessagesReceived"), "enqueued": beat.get("ObjectsEnqueued"),
            "error": beat.get("Error"), "circuit": beat.get("CircuitState")}
        out["sources"].append(row)
    for name, queue in (("work", conn.work), ("poison", conn.poison)):
        try:
            out["queues"][name] = {"name": queue.name, "depth": queue.depth()}
        except Exception as err:  # noqa: BLE001
            out["queues"][name] = {"name": queue.name, "error": f"{type(err).__name__}: {err}"}
    last = max((b for b in beats.values() if b.get("CircuitState")),
               key=lambda b: b.get("TimeGenerated") or "", default=None)
    out["circuit"] = {"this_process": conn.breaker.state,
                      "last_poller_run": last.get("CircuitState") if last else None}
    counts = {k: 0 for k in ("delivered", "partial", "running", "retrying", "dead_lettered")}
    now, seen = time.time(), 0
    for row in conn.checkpoints.recent(datetime.now(UTC) - window, limit=RECENT_LIMIT):
        seen += 1
        kind = _classify(row, now, conn.settings.max_dequeue_count)
        if kind in counts:
            counts[kind] += 1
    out["objects"] = {"window_minutes": int(window.total_seconds() // 60), **counts,
                      "truncated": seen >= RECENT_LIMIT}
    return out
