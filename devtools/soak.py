"""Soak: the whole connector through its real path, under faults and worker kills.

moto S3/SQS (notifications from real PutObject calls) -> the timer (``poll_notifications``, in
its own OS process, on a schedule) -> the Azurite work queue -> queue workers as separate OS
processes behind ``ProcessHost`` (host.json semantics: receive visibility, visibilityTimeout
after a failure, dequeue count, poison move) -> the Logs Ingestion emulator injecting 429s
(half without Retry-After), 503s, connection resets (some after the batch was stored), latency
spikes and an outage window. Meanwhile workers are SIGKILLed in the middle of objects and the
arrival rate steps up for a while.

Every generated record carries a unique id (``s<object>r<record>``) in a column that survives
mapping (CloudTrail AwsEventId, VPC Flow InterfaceId, GuardDuty Id, WAF RequestId, S3 access
RequestId, Route 53 QueryName, ALB TraceId). The emulator's sink counts every id, so the soak
knows exactly which records arrived, which arrived twice, and which twice-stored batches were
answers the client never heard (resets after the store). Results: ``soak-results.json``.

    python -m devtools.soak            # the full soak (>= 2,000 objects, >= 500,000 records)
    python -m devtools.soak --short    # a short version (tests/test_soak.py runs it)
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import logging
import math
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("devtools.soak")
ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
ID = re.compile(r"s(\d{5})r(\d{7})")

# stream -> the mapped column that carries the generated id
ID_COLUMNS = {
    "Custom-AWSCloudTrail": "AwsEventId", "Custom-AWSVPCFlow": "InterfaceId",
    "Custom-AWSGuardDuty": "Id", "Custom-AWSWAF": "RequestId",
    "Custom-AWSS3ServerAccess": "RequestId", "Custom-AWSRoute53Resolver": "QueryName",
    "Custom-AWSALBAccessLogs": "TraceId",
}
TRANSIENT_KINDS = {"transient", "delivery_transient", "storage", "aws_credentials", "host_poison"}


@dataclass
class Plan:
    objects: int = 2000
    records: int = 500_000           # at least this many in all
    big_objects_mb: tuple[float, ...] = (52.0, 12.0, 8.0)  # uncompressed sizes
    workers: int = 3
    base_rate: float = 3.0           # objects per second
    spike_factor: float = 12.0  # asked; the writers reach ~10x of the base rate (measured)
    spike_seconds: float = 10.0
    spike_at: float = 0.5            # share of the objects written before the spike
    outage_seconds: float = 60.0
    outage_at: float = 0.3           # share of the objects written when the outage starts
    kill_share: float = 0.05         # objects running in a killed worker / all objects
    min_kills: int = 2
    first_kill_after: float = 5.0
    kill_min_running: float = 0.5    # an object is killed once it ran this long (mid-object)
    timer_every: float = 4.0
    p429: float = 0.24               # of the requests outside the outage (which adds 503s)
    p503: float = 0.12
    p_reset: float = 0.012
    p_reset_stored: float = 0.012
    p_spike: float = 0.02
    spike_latency: float = 3.0
    seed: int = 8
    max_seconds: float = 3000.0
    settings: dict[str, str] = field(default_factory=lambda: {
        "UPLOAD_MAX_ATTEMPTS": "6", "UPLOAD_BACKOFF_BASE_SECONDS": "0.5",
        "UPLOAD_BACKOFF_MAX_SECONDS": "4", "CIRCUIT_FAILURE_THRESHOLD": "3",
        "CIRCUIT_COOLDOWN_SECONDS": "10", "POLL_TIME_BUDGET_SECONDS": "3",
        "SQS_WAIT_SECONDS": "1", "SQS_VISIBILITY_TIMEOUT": "60", "MAX_UPLOADS_IN_FLIGHT": "4"})


SHORT = dict(objects=36, records=6000, big_objects_mb=(3.0,), workers=2, base_rate=4.0,
             spike_seconds=2.0, outage_seconds=8.0, outage_at=0.35, kill_share=0.05,
             first_kill_after=3.0,
             timer_every=2.0, max_seconds=150.0,
             settings={"UPLOAD_MAX_ATTEMPTS": "3", "UPLOAD_BACKOFF_BASE_SECONDS": "0.1",
                       "UPLOAD_BACKOFF_MAX_SECONDS": "0.5", "CIRCUIT_FAILURE_THRESHOLD": "2",
                       "CIRCUIT_COOLDOWN_SECONDS": "2", "POLL_TIME_BUDGET_SECONDS": "1",
                       "SQS_WAIT_SECONDS": "0", "SQS_VISIBILITY_TIMEOUT": "30",
                       "MAX_UPLOADS_IN_FLIGHT": "4", "MAX_BATCH_BYTES": "200000"})


# ---- objects with uniquely identified records ----------------------------------------------

def _rid(obj: int, i: int) -> str:
    return f"s{obj:05d}r{i:07d}"


def _z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_object(obj: int, n: int, fmt: str, *, pad: int = 0) -> tuple[str, bytes]:
    """(key, gzipped bytes) of object ``obj`` with ``n`` records of ``fmt``."""
    now = datetime.now(UTC).replace(microsecond=0)
    day = f"{now:%Y/%m/%d}"
    if fmt == "cloudtrail":
        recs = [{"eventVersion": "1.08", "eventTime": _z(now - timedelta(seconds=i % 600)),
                 "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                 "awsRegion": "us-east-1", "sourceIPAddress": f"203.0.113.{i % 250}",
                 "userAgent": "aws-cli/2.15.0",
                 "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT,
                                  "arn": f"arn:aws:iam::{ACCOUNT}:user/alice"},
                 "requestParameters": {"bucketName": "finance", "pad": "p" * pad},
                 "eventID": _rid(obj, i), "eventType": "AwsApiCall", "readOnly": True,
                 "recipientAccountId": ACCOUNT, "managementEvent": False,
                 "eventCategory": "Data"} for i in range(n)]
        key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day}/{ACCOUNT}_CloudTrail_us-east-1_"
               f"{now:%Y%m%dT%H%M}Z_soak{obj:05d}.json.gz")
        return key, gzip.compress(json.dumps({"Records": recs}).encode(), 6)
    start = int(now.timestamp()) - 120
    if fmt == "vpcflow":
        lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                 "packets bytes start end action log-status"]
        lines += [f"2 {ACCOUNT} eni-{_rid(obj, i)} 10.0.{i % 200}.{i % 250} 198.51.100.{i % 250} "
                  f"{1024 + i % 60000} 443 6 {i % 90 + 1} {(i % 90 + 1) * 1200} {start} "
                  f"{start + 60} {'ACCEPT' if i % 7 else 'REJECT'} OK" for i in range(n)]
        key = (f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/{day}/{ACCOUNT}_vpcflowlogs_us-east-1_"
               f"fl-0123456789abcdef0_{now:%Y%m%dT%H%M}Z_soak{obj:05d}.log.gz")
    elif fmt == "guardduty":
        lines = [json.dumps({
            "schemaVersion": "2.0", "accountId": ACCOUNT, "region": "us-east-1",
            "partition": "aws", "id": _rid(obj, i), "type": "Recon:EC2/PortProbeUnprotectedPort",
            "arn": f"arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/d1/finding/{_rid(obj, i)}",
            "resource": {"resourceType": "Instance"}, "severity": 5.0,
            "createdAt": _z(now), "updatedAt": _z(now), "title": "port probe",
            "service": {"serviceName": "guardduty", "detectorId": "d1", "count": 1}})
            for i in range(n)]
        key = f"AWSLogs/{ACCOUNT}/GuardDuty/us-east-1/{day}/soak{obj:05d}.jsonl.gz"
    elif fmt == "waf":
        ms = int(now.timestamp() * 1000)
        lines = [json.dumps({
            "timestamp": ms - i, "formatVersion": 1, "action": "ALLOW",
            "webaclId": f"arn:aws:wafv2:us-east-1:{ACCOUNT}:regional/webacl/soak/1",
            "terminatingRuleId": "Default_Action", "terminatingRuleType": "REGULAR",
            "httpSourceName": "ALB", "httpSourceId": f"{ACCOUNT}-app/soak",
            "httpRequest": {"clientIp": f"198.51.100.{i % 250}", "country": "US",
                            "headers": [{"name": "Host", "value": "example.com"}],
                            "uri": "/", "args": "", "httpVersion": "HTTP/1.1",
                            "httpMethod": "GET", "requestId": _rid(obj, i)}})
            for i in range(n)]
        key = f"soak/waf/{ACCOUNT}_waflogs_us-east-1_soak_{now:%Y%m%dT%H%M}Z_soak{obj:05d}.log.gz"
    elif fmt == "s3access":
        stamp = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
        lines = [f"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be soak-bucket "
                 f"[{stamp}] 192.0.2.{i % 250} 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d52"
                 f"18e7cd47ef2be {_rid(obj, i)} REST.GET.OBJECT key{i} \"GET /soak-bucket/key{i}"
                 f" HTTP/1.1\" 200 - 113 113 7 6 \"-\" \"S3Console/0.4\" - "
                 f"s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= "
                 f"SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader soak-bucket.s3.amazonaws.com "
                 f"TLSV1.2 - -" for i in range(n)]
        key = f"soak/s3access/{now:%Y-%m-%d-%H-%M-%S}-SOAK{obj:05d}"
    elif fmt == "route53":
        lines = [json.dumps({
            "version": "1.100000", "account_id": ACCOUNT, "region": "us-east-1",
            "vpc_id": "vpc-7example", "query_timestamp": _z(now),
            "query_name": f"{_rid(obj, i)}.example.com.", "query_type": "A",
            "query_class": "IN", "rcode": "NOERROR", "answers": [],
            "srcaddr": "10.0.0.1", "srcport": "5353", "transport": "UDP",
            "srcids": {"instance": "i-0d15cd0d3example"}}) for i in range(n)]
        key = (f"soak/route53/{ACCOUNT}_vpcdnsquerylogs_vpc-7example_{now:%Y%m%dT%H%M}Z_"
               f"soak{obj:05d}.log.gz")
    elif fmt == "alb":
        t = now.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        lines = [f"https {t} app/soak-lb/50dc6c495c0c9188 192.168.131.{i % 250}:2817 "
                 f"10.0.0.1:80 0.086 0.048 0.037 200 200 0 57 \"GET https://www.example.com:443/"
                 f" HTTP/1.1\" \"curl/7.46.0\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 "
                 f"arn:aws:elasticloadbalancing:us-east-2:{ACCOUNT}:targetgroup/t/73e2d6bc24d8a067"
                 f" \"Root=1-{_rid(obj, i)}\" \"www.example.com\" \"-\" 1 {t} \"forward\" \"-\" "
                 f"\"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\"" for i in range(n)]
        key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-2/{day}/{ACCOUNT}_"
               f"elasticloadbalancing_us-east-2_app.soak-lb.50dc6c495c0c9188_{now:%Y%m%dT%H%M}Z_"
               f"192.168.131.39_soak{obj:05d}.log.gz")
    else:
        raise ValueError(fmt)
    return key, gzip.compress(("\n".join(lines) + "\n").encode(), 6)


FORMATS = ("cloudtrail", "vpcflow", "guardduty", "waf", "s3access", "route53", "alb")
FORMAT_RULES = [{"pattern": "^soak/waf/", "format": "waf"},
                {"pattern": "^soak/s3access/", "format": "s3-access"},
                {"pattern": "^soak/route53/", "format": "route53-resolver"}]
APPROX_BYTES = {"cloudtrail": 560, "vpcflow": 120, "guardduty": 420, "waf": 470,
                "s3access": 330, "route53": 330, "alb": 330}


def plan_objects(plan: Plan) -> list[tuple[str, int, int]]:
    """(format, records, pad) per object: most small (1 KB-ish), some medium, a few big
    ones of the planned uncompressed sizes; at least ``plan.records`` records in all."""
    rng = random.Random(plan.seed)
    out: list[tuple[str, int, int]] = []
    for mb in plan.big_objects_mb:
        n = int(mb * 1_000_000 / (APPROX_BYTES["cloudtrail"] + 1500))
        out.append(("cloudtrail", n, 1500))
    small = plan.objects - len(out)
    remaining = max(0, plan.records - sum(n for _, n, _ in out))
    weights = [rng.lognormvariate(0, 1.6) for _ in range(small)]
    total = sum(weights)
    for i, w in enumerate(weights):
        fmt = FORMATS[i % len(FORMATS)]
        n = max(math.ceil(1024 / APPROX_BYTES[fmt]), math.ceil(remaining * w / total))
        out.append((fmt, n, 0))
    rng.shuffle(out)
    return out


# ---- what the emulator accepted -------------------------------------------------------------

class Tally:
    """The emulator's sink: counts every record id, remembers lost answers and timings."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()           # stored, answer lost (reset after store)
        self.last_accept: dict[int, float] = {}       # object -> time of its newest record
        self.max_batch: Counter[int] = Counter()       # object -> largest batch (records)
        self.unique: Counter[int] = Counter()          # object -> distinct records accepted
        self.accept_times: dict[int, list[float]] = {}  # object -> when its batches arrived
        self.health: list[dict[str, Any]] = []
        self.unidentified = 0
        self._lock = threading.Lock()

    def __call__(self, stream: str, records: list[dict[str, Any]], lost: bool) -> None:
        now = time.time()
        if stream == "Custom-AWSS3ConnectorHealth":
            with self._lock:
                self.health.extend(records)
            return
        column = ID_COLUMNS.get(stream)
        ids = []
        for r in records:
            m = ID.search(str(r.get(column, ""))) if column else None
            if m is None:
                ids.append(None)
            else:
                ids.append((m.group(0), int(m.group(1))))
        with self._lock:
            per_obj: Counter[int] = Counter()
            for item in ids:
                if item is None:
                    self.unidentified += 1
                    continue
                rid, obj = item
                self.counts[rid] += 1
                if self.counts[rid] == 1:
                    self.unique[obj] += 1
                if lost:
                    self.lost[rid] += 1
                self.last_accept[obj] = now
                per_obj[obj] += 1
            for obj, k in per_obj.items():
                self.max_batch[obj] = max(self.max_batch[obj], k)
                self.accept_times.setdefault(obj, []).append(now)

    def first_after(self, obj: int, t: float) -> float | None:
        """When the first batch of ``obj`` arrived after ``t`` (None: none did)."""
        with self._lock:
            return min((x for x in self.accept_times.get(obj, ()) if x > t), default=None)

    def unique_of(self, obj: int) -> int:
        with self._lock:
            return self.unique[obj]


# ---- the run ---------------------------------------------------------------------------------

def run(plan: Plan, out: Path) -> dict[str, Any]:
    import boto3
    from azure.data.tables import TableClient

    from devtools.hostsim import ProcessHost
    from devtools.logs_ingestion import Chaos
    from devtools.stack import LocalStack
    from shared.checkpoints import LEASE_SECONDS as cp_lease
    from shared.ingestion import CircuitBreaker

    specs = plan_objects(plan)
    started = time.monotonic()
    logdir = Path(tempfile.mkdtemp(prefix="soak-"))
    with LocalStack() as stack:
        tally = Tally()
        stack.ingestion.sink = tally
        env = dict(stack.env)
        aws = {k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                   "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
        s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        sqs = boto3.client("sqs", endpoint_url=aws["AWS_ENDPOINT_URL"], region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = "soak-logs"
        from devtools.samples import notified_bucket

        queue_url = notified_bucket(s3, sqs, bucket, "soak-notify")
        sqs.purge_queue(QueueUrl=queue_url)
        stack.keyvault.set_secret("soak-key-id", "AKIASOAKEXAMPLE")
        stack.keyvault.set_secret("soak-secret", "soak-secret-value")
        source = {"name": "soak", "queueUrl": queue_url, "region": "us-east-1",
                  "accessKeyIdSecret": "soak-key-id", "secretAccessKeySecret": "soak-secret",
                  "buckets": {bucket: [""]}, "formatRules": FORMAT_RULES}
        env.update({"AWS_SOURCES": json.dumps([source]), "WORK_QUEUE": "soak-work",
                    "POISON_QUEUE": "soak-work-poison", "CHECKPOINT_TABLE": "soakckpt",
                    "AWS_WEB_IDENTITY_AUDIENCE": "api://soak", "POLL_SCHEDULE": "0 */1 * * * *",
                    **plan.settings})
        chaos = Chaos(p429=plan.p429, p503=plan.p503, p_reset=plan.p_reset,
                      p_reset_stored=plan.p_reset_stored, p_spike=plan.p_spike,
                      spike_seconds=plan.spike_latency, seed=plan.seed)
        stack.ingestion.chaos = chaos
        host = ProcessHost(env["AzureWebJobsStorage"], "soak-work", "soak-work-poison", env,
                           workers=plan.workers, log_dir=logdir).start()
        import subprocess

        timer = subprocess.Popen([sys.executable, "-m", "devtools.hostsim", "timer", "--every",
                                  str(plan.timer_every)], cwd=ROOT,
                                 env={**__import__("os").environ, **env},
                                 stdin=subprocess.PIPE,
                                 stderr=open(logdir / "timer.log", "ab"))  # noqa: SIM115

        put_at: dict[int, float] = {}
        killed: dict[int, list[int]] = {}        # kill number -> objects it interrupted
        kill_target = math.ceil(plan.kill_share * plan.objects)
        killed_objects: set[int] = set()
        spike_objects: list[int] = []
        marks: dict[str, float] = {}
        writer_done = threading.Event()

        # the bodies of the spike's objects are made before the spike starts: gzipping them
        # while it runs would hold the writers below the asked rate (9.4x measured of 12x)
        spike_first = int(plan.spike_at * len(specs))
        spike_count = int(plan.base_rate * plan.spike_factor * plan.spike_seconds * 1.5) + 1
        ready: dict[int, tuple[str, bytes]] = {}
        made = threading.Event()

        def prepare() -> None:
            for obj in range(spike_first, min(len(specs), spike_first + spike_count)):
                fmt, n, pad = specs[obj]
                ready[obj] = make_object(obj, n, fmt, pad=pad)
            made.set()

        threading.Thread(target=prepare, name="prepare-spike", daemon=True).start()

        def put(obj: int, fmt: str, n: int, pad: int, in_spike: bool) -> None:
            key, data = ready.pop(obj, None) or make_object(obj, n, fmt, pad=pad)
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            put_at[obj] = time.time()
            if in_spike:
                spike_objects.append(obj)

        def writer() -> None:
            # arrivals on a schedule (exponential gaps at the current rate), written by a few
            # threads so that the spike's rate is reached, not just asked for
            from concurrent.futures import ThreadPoolExecutor

            rng = random.Random(plan.seed + 1)
            outage_start = int(plan.outage_at * len(specs))
            spike_until = None
            due = time.monotonic()
            with ThreadPoolExecutor(max_workers=16, thread_name_prefix="put") as pool:
                for obj, (fmt, n, pad) in enumerate(specs):
                    if obj == outage_start:
                        chaos.outage(plan.outage_seconds)
                        marks["outage_start"] = time.time()
                    if obj == spike_first:
                        made.wait()
                        due = max(due, time.monotonic())
                        spike_until = time.monotonic() + plan.spike_seconds
                        marks["spike_start"] = time.time()
                    in_spike = spike_until is not None and time.monotonic() < spike_until
                    if spike_until is not None and not in_spike and "spike_end" not in marks:
                        marks["spike_end"] = time.time()
                    rate = plan.base_rate * (plan.spike_factor if in_spike else 1.0)
                    due += rng.expovariate(rate)
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    pool.submit(put, obj, fmt, n, pad, in_spike)
            marks.setdefault("spike_end", time.time())
            writer_done.set()

        threading.Thread(target=writer, name="writer", daemon=True).start()

        # kills spread over the writing time (a kill interrupts about 2 objects: measured)
        every = (plan.objects / plan.base_rate) / max(plan.min_kills, kill_target / 1.5)

        kill_count: Counter[int] = Counter()  # object -> kills that interrupted it
        killed_at: dict[int, float] = {}      # object -> time of its last kill

        def killer() -> None:
            rng = random.Random(plan.seed + 2)
            finished.wait(plan.first_kill_after)
            while (len(killed_objects) < kill_target or len(killed) < plan.min_kills) \
                    and not finished.is_set():
                slot = _victim(host.running(), kill_count, min_running=plan.kill_min_running)
                if slot is None:  # nothing in the middle of a fresh object: look again soon
                    finished.wait(0.1)
                    continue
                objs = [o for o in (_obj_of(b.decode("utf-8", "replace"))
                                    for b in host.kill(slot)) if o >= 0]
                killed[len(killed) + 1] = objs
                killed_objects.update(objs)
                kill_count.update(objs)
                for o in objs:
                    killed_at[o] = time.time()
                finished.wait(rng.uniform(0.5, 1.5) * every)

        finished = threading.Event()
        threading.Thread(target=killer, name="killer", daemon=True).start()

        # wait until every object's records are all accepted (or the time is up)
        pending = set(range(len(specs)))
        deadline = started + plan.max_seconds
        spike_drained = None
        while time.monotonic() < deadline:
            time.sleep(1.0)
            for obj in list(pending):
                if obj in put_at and tally.unique_of(obj) == specs[obj][1]:
                    pending.discard(obj)
            if spike_drained is None and writer_done.is_set() and spike_objects and \
                    not (set(spike_objects) & pending):
                spike_drained = max(tally.last_accept.get(o, 0) for o in spike_objects)
            if writer_done.is_set() and not pending:
                break
            if int(time.monotonic() - started) % 15 == 0:
                log.warning("soak: %d/%d objects complete, %d kills, in flight %d, circuit %s",
                            len(specs) - len(pending), len(specs), host.kills,
                            host.in_flight(), "?")
        finished.set()
        time.sleep(2.0)  # health rows of the last objects
        timer.stdin.close()
        timer.wait(timeout=60)
        host.stop()

        # ---- the figures --------------------------------------------------------------------
        poison = _drain_poison(host)
        dead_positions: dict[int, set[int]] = {}
        for env_ in poison:
            m = re.search(r"soak(\d{5})|SOAK(\d{5})", json.dumps(env_.get("object") or {}))
            if m and env_.get("records"):
                dead_positions.setdefault(int(m.group(1) or m.group(2)), set()).update(
                    env_["records"].get("positions") or [])
        records_sent = sum(n for _, n, _ in specs)
        accepted_unique = sum(1 for c in tally.counts.values() if c)
        dead_records = sum(len(v) for v in dead_positions.values())
        lost = records_sent - accepted_unique - dead_records
        duplicates = sum(c - 1 for c in tally.counts.values() if c > 1)
        # a duplicate is explained by a lost answer (the batch was stored, the client retried)
        unexplained: Counter[int] = Counter()
        for rid, c in tally.counts.items():
            extra = c - 1 - tally.lost.get(rid, 0)
            if extra > 0:
                unexplained[int(rid[1:6])] += extra
        kills_of: Counter[int] = Counter(o for objs in killed.values() for o in objs)
        in_flight = int(plan.settings.get("MAX_UPLOADS_IN_FLIGHT", "4"))
        per_kill = [sum(unexplained[o] / kills_of[o] for o in objs) for objs in killed.values()]
        unexplained_not_killed = sum(v for o, v in unexplained.items() if not kills_of[o])
        over_limit = [o for o, v in unexplained.items()
                      if kills_of[o] and v > in_flight * kills_of[o] * tally.max_batch[o]]
        # from an object's last kill to its next batch accepted (it resumed); objects whose
        # every record was accepted before the kill are not counted
        resumed = sorted(r - t for o, t in killed_at.items()
                         if (r := tally.first_after(o, t)) is not None)
        # the same for the kills whose resumption could not meet the outage and the open
        # circuit after it (those wait for the endpoint, deferred, by design)
        quiet_from = marks.get("outage_start", 0.0) - cp_lease - 5
        quiet_to = marks.get("outage_start", 0.0) + plan.outage_seconds + 30
        resumed_quiet = sorted(r - t for o, t in killed_at.items()
                               if not quiet_from <= t <= quiet_to
                               and (r := tally.first_after(o, t)) is not None)
        resumes = sorted(max(0.0, tally.last_accept.get(o, t) - t)
                         for o, t in killed_at.items())
        latencies = sorted(tally.last_accept[o] - put_at[o] for o in put_at
                           if o in tally.last_accept)
        stuck = _diagnose(sorted(pending), specs, tally, kills_of, poison, table_rows=(
            TableClient.from_connection_string(env["AzureWebJobsStorage"], "soakckpt")),
            host=host, logdir=logdir) if pending else []
        finals = [r for r in tally.health if r.get("Kind") == "object"
                  and r.get("Outcome") in ("delivered", "partial")]
        unbalanced = [r for r in finals
                      if r.get("RecordsIn", 0) != r.get("RecordsOut", 0)
                      + r.get("RecordsSkipped", 0) + len(dead_positions.get(
                          _obj_of(r.get("S3Key", "")), ()))]
        table = TableClient.from_connection_string(env["AzureWebJobsStorage"], "soakckpt")
        breaker = CircuitBreaker(table, env["LOGS_INGESTION_ENDPOINT"].rstrip("/"),
                                 threshold=int(plan.settings["CIRCUIT_FAILURE_THRESHOLD"]))
        snap = breaker.snapshot()
        statuses = Counter(r.status for r in stack.ingestion.requests)
        codes = Counter(r.error_code for r in stack.ingestion.requests if r.error_code)
        requests = len(stack.ingestion.requests)
        results = {
            "objects": len(specs),
            "records_sent": records_sent,
            "records_accepted_unique": accepted_unique,
            "records_dead_lettered": dead_records,
            "records_lost": lost,
            "duplicate_records": duplicates,
            "duplicates_from_lost_answers": duplicates - sum(unexplained.values()),
            "duplicates_from_kills": sum(unexplained.values()) - unexplained_not_killed,
            "duplicates_unexplained": unexplained_not_killed,
            "kills": len(killed),
            "objects_interrupted_by_kills": len(killed_objects),
            "kill_to_resume_seconds_p50": _pct(resumed, 50),
            "kill_to_resume_seconds_p95": _pct(resumed, 95),
            "kill_to_resume_seconds_max": round(resumed[-1], 1) if resumed else None,
            "kill_to_resume_seconds_max_away_from_outage": (round(resumed_quiet[-1], 1)
                                                            if resumed_quiet else None),
            "kills_resumed_away_from_outage": len(resumed_quiet),
            # from an object's last kill to its last record accepted (resumed and finished)
            "kill_to_complete_seconds_p95": _pct(resumes, 95),
            "kill_to_complete_seconds_max": round(resumes[-1], 1) if resumes else None,
            "max_duplicate_records_per_kill": round(max(per_kill, default=0)),
            "batches_in_flight_limit": in_flight,
            "objects_over_in_flight_limit": len(over_limit),
            "poison_messages": len(poison),
            "poison_from_transient": sum(1 for p in poison
                                         if p.get("kind") in TRANSIENT_KINDS or "kind" not in p),
            "circuit_opened": snap["opened"],
            "circuit_closed": snap["closed"],
            "circuit_state_at_end": snap["state"],
            "spike_objects": len(spike_objects),
            "arrival_rate_base_per_s": _rate(put_at, exclude=set(spike_objects)),
            "arrival_rate_spike_per_s": _rate(put_at, only=set(spike_objects)),
            "spike_backlog_drain_seconds": (round(spike_drained - marks["spike_end"], 1)
                                            if spike_drained else None),
            "latency_p50_seconds": _pct(latencies, 50),
            "latency_p95_seconds": _pct(latencies, 95),
            "latency_max_seconds": round(latencies[-1], 1) if latencies else None,
            "objects_incomplete": len(pending),
            "stuck_objects": stuck[:20],
            "records_unidentified": tally.unidentified,
            "invariant_rows_checked": len(finals),
            "invariant_violations": len(unbalanced),
            "requests": requests,
            "requests_by_status": {str(k): v for k, v in sorted(statuses.items())},
            "faults": {"429": statuses[429], "429_share": _share(statuses[429], requests),
                       "503": statuses[503], "503_share": _share(statuses[503], requests),
                       "resets": statuses[0], "reset_share": _share(statuses[0], requests),
                       "resets_after_store": codes["ConnectionResetAfterStore"],
                       "429_without_retry_after": chaos.drawn["429"],
                       "429_with_retry_after": chaos.drawn["429-retry-after"],
                       "latency_spikes": chaos.drawn["latency-spike"],
                       "outage_503": chaos.drawn["503-outage"],
                       "outage_seconds": plan.outage_seconds},
            "host": {"invocations": host.run.invocations, "failed": host.run.failed,
                     "moved_to_poison_by_host": host.run.moved_to_poison,
                     "worker_exits": host.worker_exits},
            "bytes_max_object": max((n * (APPROX_BYTES[f] + p) for f, n, p in specs), default=0),
            "bytes_min_object": min((n * (APPROX_BYTES[f] + p) for f, n, p in specs), default=0),
            "formats": sorted({f for f, _, _ in specs}),
            "wall_seconds": round(time.monotonic() - started, 1),
            "plan": {k: v for k, v in asdict(plan).items() if k != "settings"},
            "settings": plan.settings,
            "logs": str(logdir),
        }
    out.write_text(json.dumps(results, indent=1) + "\n")
    return results


def _diagnose(pending: list[int], specs: list[tuple[str, int, int]], tally: Tally,
              kills_of: Counter[int], poison: list[dict[str, Any]], *, table_rows: Any,
              host: Any, logdir: Path) -> list[dict[str, Any]]:
    """What became of each object that never completed: its checkpoint row, its poison
    messages, the host's events for its work items, the kills that hit it."""
    rows: dict[int, dict[str, Any]] = {}
    for e in table_rows.query_entities("PartitionKey eq 'soak'"):
        o = _obj_of(str(e.get("Key", "")))
        if o in pending:
            rows[o] = {k: e.get(k) for k in ("State", "Attempts", "LastError", "Done",
                                              "FirstFailure")}
            rows[o]["lease_left_s"] = round(float(e.get("LeaseUntil") or 0) - time.time(), 1)
    events: dict[int, list[dict[str, Any]]] = {}
    with contextlib.suppress(OSError), open(logdir / "host-events.log") as f:
        for line in f:
            ev = json.loads(line)
            o = _obj_of(ev.get("body", ""))
            if o in pending:
                ev.pop("body", None)
                events.setdefault(o, []).append(ev)
    try:
        depth = host.work.get_queue_properties().approximate_message_count
    except Exception:  # noqa: BLE001 - a diagnosis, best effort
        depth = None
    out = []
    for o in pending:
        out.append({
            "object": o, "format": specs[o][0], "records": specs[o][1],
            "accepted_unique": tally.unique_of(o), "kills": kills_of[o],
            "checkpoint": rows.get(o),
            "poison": [{k: p.get(k) for k in ("kind", "stage", "reason", "attempts")}
                       if "kind" in p else {"moved_by_host": True} for p in poison
                       if _obj_of(json.dumps(p)) == o][:5],
            "host_events": events.get(o, [])[-12:], "work_queue_depth": depth})
    return out


KILLS_PER_OBJECT = 2   # a kill spends one of the work item's maxDequeueCount (5) deliveries
KILL_MAX_DEQUEUE = 2   # nor is a work item on its 3rd delivery (retried faults) killed


def _victim(running: dict[int, list[tuple[Any, float]]], kill_count: Counter[int], *,
            min_running: float) -> int | None:
    """The worker to SIGKILL: the one running the most objects never killed before that have
    been running for ``min_running`` seconds (in the middle of the object, not at its start);
    None when no worker qualifies. A worker is spared while it runs an object already killed
    KILLS_PER_OBJECT times or a work item past its KILL_MAX_DEQUEUE-th delivery: the soak
    interrupts objects, it does not crash-loop one work item into the poison queue (the
    host moves a message there after maxDequeueCount failed deliveries, a kill included)."""
    best, most = None, 0
    for slot, items in running.items():
        objs = [(_obj_of(m.content.decode("utf-8", "replace")), m.dequeue_count, age)
                for m, age in items]
        if any(kill_count[o] >= KILLS_PER_OBJECT or dc > KILL_MAX_DEQUEUE
               for o, dc, _ in objs):
            continue
        fresh = sum(1 for o, _, age in objs if o >= 0 and not kill_count[o]
                    and age >= min_running)
        if fresh > most:
            best, most = slot, fresh
    return best


def _obj_of(key: str) -> int:
    m = re.search(r"soak(\d{5})|SOAK(\d{5})", key)
    return int(m.group(1) or m.group(2)) if m else -1


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 1)


def _rate(put_at: dict[int, float], *, only: set[int] | None = None,
          exclude: set[int] | None = None) -> float | None:
    times = sorted(t for o, t in put_at.items()
                   if (only is None or o in only) and (exclude is None or o not in exclude))
    if len(times) < 2:
        return None
    if exclude:  # the base rate: the longest stretch without the spike
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        return round((len(times) - 1) / (sum(g for g in gaps if g < 30) or 1), 2)
    return round((len(times) - 1) / (times[-1] - times[0]), 2)


def _share(n: int, total: int) -> float:
    return round(n / total, 3) if total else 0.0


def _drain_poison(host: Any) -> list[dict[str, Any]]:
    items = []
    while True:
        batch = list(host.poison.receive_messages(messages_per_page=32, max_messages=32,
                                                  visibility_timeout=300))
        if not batch:
            return items
        for m in batch:
            try:
                items.append(json.loads(m.content))
            except ValueError:
                items.append({"raw": m.content.decode("utf-8", "replace")[:200]})


def check(results: dict[str, Any], *, full: bool = False) -> list[str]:
    """What must hold; an empty list when it all does (``full``: also the full soak's
    volume, mix and fault figures)."""
    problems = []
    if results["records_lost"] != 0 or results["objects_incomplete"]:
        problems.append(f"records lost: {results['records_lost']} "
                        f"({results['objects_incomplete']} objects incomplete)")
    if results["duplicates_unexplained"]:
        problems.append(f"{results['duplicates_unexplained']} duplicates not explained by a "
                        "kill or a lost answer")
    if results["objects_over_in_flight_limit"]:
        problems.append(f"{results['objects_over_in_flight_limit']} killed objects repeated "
                        "more than the batches in flight")
    if results["poison_from_transient"]:
        problems.append(f"{results['poison_from_transient']} poison messages from transient "
                        "failures")
    if not (results["circuit_opened"] and results["circuit_closed"]):
        problems.append("the circuit did not open and close")
    if results["invariant_violations"]:
        problems.append(f"{results['invariant_violations']} objects where read != accepted + "
                        "dead-lettered + skipped")
    want = math.ceil(results["plan"]["kill_share"] * results["objects"])
    if results["objects_interrupted_by_kills"] < want:
        problems.append(f"only {results['objects_interrupted_by_kills']} objects were "
                        f"interrupted by a kill (wanted {want})")
    if results["records_unidentified"]:
        problems.append(f"{results['records_unidentified']} accepted records without an id")
    if full:
        problems += _check_volume(results)
    return problems


def _check_volume(r: dict[str, Any]) -> list[str]:
    """The full soak's volume, mix and fault figures (issue 8)."""
    f = r["faults"]
    want = [
        (r["objects"] >= 2000, f"{r['objects']} objects (>= 2,000)"),
        (r["records_sent"] >= 500_000, f"{r['records_sent']} records (>= 500,000)"),
        (r["bytes_min_object"] <= 2048 and r["bytes_max_object"] >= 50_000_000,
         f"object sizes {r['bytes_min_object']}..{r['bytes_max_object']} B (1 KB..>= 50 MB)"),
        (len(r["formats"]) >= 7, f"{len(r['formats'])} formats (>= 7)"),
        (f["429_share"] >= 0.20, f"429 share {f['429_share']} (>= 0.20)"),
        (f["429_without_retry_after"] >= 0.4 * f["429"] and f["429_with_retry_after"],
         f"429 without Retry-After {f['429_without_retry_after']} of {f['429']} (about half)"),
        (f["503_share"] >= 0.10, f"503 share {f['503_share']} (>= 0.10)"),
        (f["reset_share"] >= 0.02 and f["resets_after_store"],
         f"reset share {f['reset_share']} (>= 0.02, some after the store)"),
        (f["latency_spikes"] > 0, "no latency spikes"),
        (f["outage_seconds"] >= 60 and f["outage_503"], "no outage of >= 60 s"),
        ((r["arrival_rate_spike_per_s"] or 0) >= 10 * (r["arrival_rate_base_per_s"] or 1),
         f"arrival spike {r['arrival_rate_spike_per_s']}/s vs base "
         f"{r['arrival_rate_base_per_s']}/s (>= 10x, measured)"),
    ]
    # a killed worker's object resumes within about a minute: the rest of its 60 s lease
    quiet = r["kill_to_resume_seconds_max_away_from_outage"]
    want.append((quiet is not None and quiet <= 75,
                 f"a killed object resumed after {quiet} s (<= 75 s away from the outage)"))
    return [what for ok, what in want if not ok]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.soak", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the short version")
    parser.add_argument("--objects", type=int)
    parser.add_argument("--records", type=int)
    parser.add_argument("--out", type=Path, default=Path("soak-results.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    plan = Plan(**SHORT) if args.short else Plan()
    if args.objects:
        plan.objects = args.objects
    if args.records:
        plan.records = args.records
    results = run(plan, args.out)
    problems = check(results, full=not (args.short or args.objects or args.records))
    print(json.dumps({k: results[k] for k in (
        "objects", "records_sent", "records_accepted_unique", "records_lost",
        "duplicate_records", "kills", "max_duplicate_records_per_kill",
        "batches_in_flight_limit", "poison_messages", "poison_from_transient",
        "circuit_opened", "circuit_closed", "spike_backlog_drain_seconds",
        "latency_p95_seconds", "objects_interrupted_by_kills", "kill_to_resume_seconds_p95",
        "kill_to_resume_seconds_max", "kill_to_resume_seconds_max_away_from_outage",
        "kills_resumed_away_from_outage", "kill_to_complete_seconds_max",
        "arrival_rate_base_per_s", "arrival_rate_spike_per_s", "faults", "wall_seconds")},
        indent=1))
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
