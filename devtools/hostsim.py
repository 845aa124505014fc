"""A stand-in for the Functions host's queue and timer semantics (tests and the demo).

It calls the real functions in ``function_app`` the way the host does: the timer function
with a ``TimerRequest``; the queue function with each work-queue message (base64, as
host.json's ``messageEncoding`` says) and its dequeue count. A function that raises leaves the
message on the queue, visible again after ``visibilityTimeout``; once a message has been
dequeued ``maxDequeueCount`` times and fails again, the host moves it to ``<queue>-poison``.
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
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


def _host_queues(connection_string: str, work_queue: str, poison_queue: str) -> tuple[Any, Any]:
    """The work and poison queues as the host reads them (base64 messages), created if new."""
    kw = dict(message_encode_policy=TextBase64EncodePolicy(),
              message_decode_policy=BinaryBase64DecodePolicy())
    queues = tuple(QueueClient.from_connection_string(connection_string, name, **kw)
                   for name in (work_queue, poison_queue))
    for q in queues:
        try:
            q.create_queue()
        except Exception:  # noqa: BLE001 - already exists
            pass
    return queues


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
        self.work, self.poison = _host_queues(connection_string, work_queue, poison_queue)

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


# ---- the host with language workers as separate OS processes (the soak) ------------------

class ProcessHost:
    """The Functions host's queue-trigger semantics with the Python workers as OS processes.

    Like the real host, this process owns the queue messages and the workers only run the
    function: it receives up to ``batch_size`` messages per worker (host.json ``batchSize``;
    a new batch once no more than ``newBatchThreshold`` are running), invisible for
    ``RECEIVE_VISIBILITY`` seconds while they run (the host's 10 minutes, longer than the
    invocation budget), and sends each to a worker (``python -m devtools.hostsim worker``,
    JSON lines over stdin/stdout) which calls ``function_app.process_object``. Completed:
    the message is deleted. Raised: visible again after ``visibilityTimeout``; on the
    ``maxDequeueCount``-th failure moved as it is to ``<queue>-poison``. A worker that dies
    (``kill`` sends SIGKILL) fails every invocation it was running, exactly like a raise
    (the host reports "worker process exited"), and a new worker is started.
    """

    RECEIVE_VISIBILITY = 600

    def __init__(self, connection_string: str, work_queue: str, poison_queue: str,
                 env: dict[str, str], *, workers: int = 2, log_dir: Path | None = None,
                 visibility_timeout: float | None = None):
        settings = host_queue_settings()
        self.max_dequeue = int(settings["maxDequeueCount"])
        self.batch_size = int(settings["batchSize"])
        self.new_batch_threshold = int(settings["newBatchThreshold"])
        h, m, s = (float(x) for x in settings["visibilityTimeout"].split(":"))
        self.visibility = visibility_timeout if visibility_timeout is not None else \
            h * 3600 + m * 60 + s
        self.work, self.poison = _host_queues(connection_string, work_queue, poison_queue)
        self.env = env
        self.log_dir = log_dir
        self.n_workers = workers
        self.run = HostRun()
        self.kills = 0
        self.worker_exits = 0
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._stop = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._seq = 0
        # one line per settled invocation (the soak's diagnosis of a stuck object)
        self._events = (open(log_dir / "host-events.log", "a", buffering=1)  # noqa: SIM115
                        if log_dir else None)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ProcessHost:
        for i in range(self.n_workers):
            self._workers.append(self._spawn(i))
        self._dispatcher = threading.Thread(target=self._dispatch, name="host-dispatch",
                                            daemon=True)
        self._dispatcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=10)
        for w in self._workers:
            w.close()
        if self._events is not None:
            self._events.close()

    def __enter__(self) -> ProcessHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, slot: int) -> _Worker:
        with self._lock:
            self._seq += 1
            seq = self._seq
        log = (open(self.log_dir / f"worker-{slot}-{seq}.log", "ab")  # noqa: SIM115
               if self.log_dir else subprocess.DEVNULL)
        proc = subprocess.Popen(
            [sys.executable, "-m", "devtools.hostsim", "worker",
             "--concurrency", str(self.batch_size)],
            cwd=ROOT, env={**os.environ, **self.env}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, bufsize=0)
        worker = _Worker(slot, proc, log)
        threading.Thread(target=self._read, args=(worker,), name=f"host-read-{slot}",
                         daemon=True).start()
        return worker

    # -- the queue listener ------------------------------------------------------------------
    def _dispatch(self) -> None:
        idle = 0.1
        while not self._stop.is_set():
            sent = 0
            for worker in list(self._workers):
                if not worker.alive or len(worker.running) > self.new_batch_threshold:
                    continue
                room = self.batch_size - len(worker.running)
                try:
                    msgs = list(self.work.receive_messages(
                        messages_per_page=room, max_messages=room,
                        visibility_timeout=self.RECEIVE_VISIBILITY))
                except Exception as err:  # noqa: BLE001 - storage hiccup: poll again
                    log.warning("receive failed: %s", err)
                    msgs = []
                for m in msgs:
                    self._event(m, f"dispatch->worker{worker.slot}")
                    if not worker.submit(m):
                        self._settle(m, ok=False, error="worker gone before dispatch")
                sent += len(msgs)
            if sent:
                idle = 0.1
            else:
                self._stop.wait(idle)
                idle = min(2.0, idle * 2)  # maxPollingInterval

    def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        for line in worker.proc.stdout:
            try:
                answer = json.loads(line)
            except ValueError:
                continue
            m = worker.finish(answer["id"])
            if m is not None:
                self._settle(m, ok=answer["ok"], error=answer.get("error"))
        # EOF: the worker exited (killed): every invocation it ran failed
        worker.alive = False
        code = worker.proc.wait()
        for m in worker.take_all():
            self._settle(m, ok=False, error=f"worker process exited ({code})")
        with self._lock:
            self.worker_exits += 1
        if not self._stop.is_set():
            fresh = self._spawn(worker.slot)  # the host restarts the language worker
            with self._lock:
                self._workers[self._workers.index(worker)] = fresh

    def _event(self, m: Any, action: str, **extra: Any) -> None:
        if self._events is None:
            return
        with contextlib.suppress(Exception):
            self._events.write(json.dumps({
                "t": round(time.time(), 3), "id": m.id, "dequeue_count": m.dequeue_count,
                "action": action, **extra,
                "body": m.content.decode("utf-8", "replace")[:300]}) + "\n")

    def _settle(self, m: Any, *, ok: bool, error: str | None) -> None:
        action = ("delete" if ok else "poison" if m.dequeue_count >= self.max_dequeue
                  else f"retry+{int(self.visibility)}s")
        self._event(m, action, error=(error or "")[:300])
        with self._lock:
            self.run.invocations += 1
            if ok:
                self.run.succeeded += 1
            else:
                self.run.failed += 1
                if len(self.run.errors) < 1000:
                    self.run.errors.append(error or "")
        try:
            if ok:
                self.work.delete_message(m.id, m.pop_receipt)
            elif m.dequeue_count >= self.max_dequeue:
                self.poison.send_message(m.content.decode())
                self.work.delete_message(m.id, m.pop_receipt)
                with self._lock:
                    self.run.moved_to_poison += 1
            else:
                self.work.update_message(m.id, pop_receipt=m.pop_receipt,
                                         visibility_timeout=int(self.visibility))
        except Exception as err:  # noqa: BLE001 - the message reappears after its visibility
            log.warning("settling message %s failed: %s", m.id, err)

    # -- for the soak --------------------------------------------------------------------------
    def running(self) -> dict[int, list[tuple[Any, float]]]:
        """slot -> (message, seconds since it was sent to the worker) of each live worker."""
        now = time.monotonic()
        out: dict[int, list[tuple[Any, float]]] = {}
        for w in list(self._workers):
            if w.alive:
                with w._lock:
                    out[w.slot] = [(m, now - w.since.get(i, now)) for i, m in w.running.items()]
        return out

    def kill(self, slot: int) -> list[bytes]:
        """SIGKILL the worker in ``slot``; returns the bodies it was running."""
        for w in self._workers:
            if w.slot == slot and w.alive:
                running = list(w.running.values())
                bodies = [m.content for m in running]
                for m in running:
                    self._event(m, f"SIGKILL worker{slot}")
                os.kill(w.proc.pid, signal.SIGKILL)
                with self._lock:
                    self.kills += 1
                return bodies
        return []

    def in_flight(self) -> int:
        return sum(len(w.running) for w in self._workers)


class _Worker:
    def __init__(self, slot: int, proc: subprocess.Popen, log: Any):
        self.slot, self.proc, self._log = slot, proc, log
        self.running: dict[str, Any] = {}
        self.since: dict[str, float] = {}  # message id -> time.monotonic() of its dispatch
        self.alive = True
        self._lock = threading.Lock()

    def submit(self, m: Any) -> bool:
        job = {"id": m.id, "body": base64.b64encode(m.content).decode(),
               "dequeue_count": m.dequeue_count}
        with self._lock:
            if not self.alive:
                return False
            self.running[m.id] = m
            self.since[m.id] = time.monotonic()
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write((json.dumps(job) + "\n").encode())
            except OSError:
                self.running.pop(m.id, None)
                self.since.pop(m.id, None)
                return False
        return True

    def finish(self, msg_id: str) -> Any:
        with self._lock:
            self.since.pop(msg_id, None)
            return self.running.pop(msg_id, None)

    def take_all(self) -> list[Any]:
        with self._lock:
            out, self.running, self.since = list(self.running.values()), {}, {}
            return out

    def close(self) -> None:
        self.alive = False
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=30)
        if self.proc.poll() is None:
            self.proc.kill()
        if hasattr(self._log, "close"):
            self._log.close()


def _worker_main(concurrency: int) -> int:
    """A language worker: one JSON job per stdin line -> function_app.process_object."""
    import function_app

    out_lock = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="invocation")

    def answer(payload: dict[str, Any]) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(payload) + "\n")
            sys.stdout.flush()

    def invoke(job: dict[str, Any]) -> None:
        if job.get("timer"):
            try:
                function_app.poll_notifications(TimerRequest(past_due=False))
                answer({"id": job["id"], "ok": True})
            except Exception as err:  # noqa: BLE001 - reported like the host would
                answer({"id": job["id"], "ok": False, "error": f"{type(err).__name__}: {err}"})
            return
        qm = QueueMessage(id=job["id"], body=base64.b64decode(job["body"]),
                          dequeue_count=job["dequeue_count"])
        try:
            function_app.process_object(qm)
            answer({"id": job["id"], "ok": True})
        except Exception as err:  # noqa: BLE001 - the host catches everything
            answer({"id": job["id"], "ok": False, "error": f"{type(err).__name__}: {err}"[:500]})

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    for line in sys.stdin:
        if line.strip():
            pool.submit(invoke, json.loads(line))
    pool.shutdown(wait=True)
    return 0


def _timer_main(every: float) -> int:
    """The timer trigger's schedule in its own process: poll_notifications every ``every``
    seconds (a singleton, as the host runs it) until stdin closes."""
    import function_app

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        started = time.monotonic()
        try:
            function_app.poll_notifications(TimerRequest(past_due=False))
        except Exception as err:  # noqa: BLE001 - the next run tries again, like the host
            log.warning("timer run failed: %s", err)
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m devtools.hostsim")
    sub = parser.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("worker", help="a language worker (JSON lines on stdin/stdout)")
    w.add_argument("--concurrency", type=int, default=8)
    t = sub.add_parser("timer", help="poll_notifications on a schedule until stdin closes")
    t.add_argument("--every", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.cmd == "worker":
        return _worker_main(args.concurrency)
    return _timer_main(args.every)


if __name__ == "__main__":
    sys.exit(main())
