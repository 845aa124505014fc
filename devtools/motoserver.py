"""moto server with an atomic SQS ReceiveMessage (``python -m devtools.motoserver -H .. -p ..``).

moto's ``SQSBackend.receive_message`` checks that a message is visible and marks it received
in two steps without a lock, and the server answers requests on several threads: two
concurrent ReceiveMessage calls can both take the same message (reproduced: 8 lanes receiving
400 messages handed 1-2 of them over twice in 2 of 5 runs;
the test, 10 queues of 100, saw duplicates in each of 2 runs). Real SQS does not do that to
concurrent receivers, and the poller runs 8 receive lanes at once, so tests that count
outcomes saw a notification forwarded twice now and then. Here each pass over the queue runs
under one lock; a long poll (WaitTimeSeconds) waits between passes outside the lock, so
receivers never block each other for longer than one pass. Everything else is moto as is.
"""
from __future__ import annotations

import inspect
import threading
import time
from typing import Any

from moto.server import main
from moto.sqs.models import SQSBackend

_LOCK = threading.Lock()
_ORIGINAL = SQSBackend.receive_message
_SIGNATURE = inspect.signature(_ORIGINAL)


def _receive_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
    bound = _SIGNATURE.bind(self, *args, **kwargs)
    wait = float(bound.arguments.get("wait_seconds_timeout") or 0)
    bound.arguments["wait_seconds_timeout"] = 0  # one pass over the queue
    deadline = time.monotonic() + wait
    while True:
        with _LOCK:
            got = _ORIGINAL(*bound.args, **bound.kwargs)
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


SQSBackend.receive_message = _receive_message  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
