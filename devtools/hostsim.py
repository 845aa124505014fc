"""A stand-in for the Functions host's queue and timer semantics (tests and the demo).

It calls the real functions in ``function_app`` the way the host does: the timer function
with a ``TimerRequest``; the queue function with each work-queue message (base64, as
host.json's ``messageEncoding`` says) and its dequeue count. A function that raises leaves the
message on the queue, visible again after ``visibilityTimeout``; once a message has been
dequeued ``maxDequeueCount`` times and fails again, the host moves it to ``<queue>-poison``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.functions.queue import QueueMessage  # the class the worker builds
from azure.functions.timer import TimerRequest
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    QueueClient,
    TextBase64EncodePolicy,
)

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


def host_queue_settings() -> dict[str, Any]:
    return json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]


@dataclass
class HostRun:
    invocations: int = 0
    succeeded: int = 0
    failed: int = 0
    moved_to_poison: int = 0
    errors: list[str] = field(default_factory=list)


class HostSim:
    def __init__(self, connection_string: str, work_queue: str, poison_queue: str, *,
                 retry_delay: float | None = None):
        settings = host_queue_settings()
        self.max_dequeue = int(settings["maxDequeueCount"])
        self.retry_delay = retry_delay if retry_delay is not None else 0
        kw = dict(message_encode_policy=TextBase64EncodePolicy(),
                  message_decode_policy=BinaryBase64DecodePolicy())
        self.work = QueueClient.from_connection_string(connection_string, work_queue, **kw)
        self.poison = QueueClient.from_connection_string(connection_string, poison_queue, **kw)
        for q in (self.work, self.poison):
            try:
                q.create_queue()
            except Exception:  # noqa: BLE001 - already exists
                pass

    def run_timer(self) -> None:
        import function_app

        function_app.poll_notifications(TimerRequest(past_due=False))

    def drain(self, *, max_seconds: float = 120, concurrency: int = 1) -> HostRun:
        """Deliver work-queue messages to process_object until the queue is empty.

        ``concurrency`` > 1 runs up to that many invocations at once in this process, as the
        host does (host.json ``batchSize``), so they share one Connector like real workers.
        """
        run = HostRun()
        lock = threading.Lock()
        deadline = time.monotonic() + max_seconds
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            while time.monotonic() < deadline:
                msgs = list(self.work.receive_messages(messages_per_page=16, max_messages=16,
                                                       visibility_timeout=30))
                if not msgs:
                    if self.work.get_queue_properties().approximate_message_count:
                        time.sleep(0.2)  # some are invisible (retry delay); wait for them
                        continue
                    break
                list(pool.map(lambda m: self._invoke(m, run, lock), msgs))
        return run

    def _invoke(self, m: Any, run: HostRun, lock: threading.Lock) -> None:
        import function_app

        qm = QueueMessage(id=m.id, body=m.content, dequeue_count=m.dequeue_count,
                          pop_receipt=m.pop_receipt)
        try:
            function_app.process_object(qm)
        except Exception as err:  # noqa: BLE001 - the host catches everything
            with lock:
                run.invocations += 1
                run.failed += 1
                run.errors.append(f"{type(err).__name__}: {err}")
            if m.dequeue_count >= self.max_dequeue:
                self.poison.send_message(m.content.decode())
                self.work.delete_message(m)
                with lock:
                    run.moved_to_poison += 1
            else:
                self.work.update_message(m.id, pop_receipt=m.pop_receipt,
                                         visibility_timeout=int(self.retry_delay))
            return
        with lock:
            run.invocations += 1
            run.succeeded += 1
        self.work.delete_message(m)

    def poison_items(self) -> list[dict[str, Any]]:
        """Peek (without removing) every poison message as JSON."""
        out = []
        for m in self.poison.peek_messages(max_messages=32):
            out.append(json.loads(m.content))
        return out

    def poison_items_all(self) -> list[dict[str, Any]]:
        """Every poison message as JSON (beyond peek's 32), left on the queue and visible."""
        seen = []
        while True:
            batch = list(self.poison.receive_messages(messages_per_page=32, max_messages=32,
                                                      visibility_timeout=60))
            if not batch:
                break
            seen += batch
        for m in seen:
            self.poison.update_message(m.id, pop_receipt=m.pop_receipt, visibility_timeout=0)
        return [json.loads(m.content) for m in seen]
