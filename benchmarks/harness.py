"""The end-to-end bench rig: the local stack, generated objects streamed to moto, and one
object run through ``shared.pipeline.process_object`` in a fresh subprocess (peak RSS).

The benchmark never holds an object whole: generators yield ~1 MB pieces of realistic text,
gzip is streamed, and S3 receives it as a multipart upload (VPC Flow Parquet is written row group
by row group to a temporary file, then uploaded from it). The Logs Ingestion emulator counts
records instead of keeping them (``keep_records = False``).

    python -m benchmarks.harness child '<json>'   (used by run_child; prints one JSON line)
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
BUCKET = "bench-logs"
PIECE = 1 << 20  # text generated per piece
PART = 16 << 20  # multipart part size (S3 minimum 5 MB)


# ---- realistic content, generated in pieces ----------------------------------------------------

VPC_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
              "bytes start end action log-status\n")


def vpc_text(target: int, *, start: int = 0) -> Iterator[tuple[bytes, int]]:
    """VPC Flow Logs v2 text of about ``target`` bytes: (piece, records in it)."""
    rnd = random.Random(7)
    t0 = int(time.time()) - 600
    first = VPC_HEADER.encode()
    size, i = len(first), start
    pending = [first]
    while size < target:
        lines = []
        for _ in range(8000):
            i += 1
            r = rnd.random()
            lines.append(f"2 {ACCOUNT} eni-0a1b2c3d4e5f{i % 97:05x} 10.{i % 7}.{i % 200}."
                         f"{(i * 7) % 250} 198.51.{(i * 13) % 250}.{i % 250} "
                         f"{1024 + (i * 31) % 60000} {443 if r < 0.6 else 53 if r < 0.8 else 22} "
                         f"{6 if r < 0.9 else 17} {i % 90 + 1} {(i % 90 + 1) * (40 + i % 1400)} "
                         f"{t0 + i % 300} {t0 + 60 + i % 300} "
                         f"{'ACCEPT' if r < 0.85 else 'REJECT'} OK\n")
        piece = "".join(lines).encode()
        pending.append(piece)
        size += len(piece)
        yield b"".join(pending), len(lines)
        pending = []


def cloudtrail_text(target: int) -> Iterator[tuple[bytes, int]]:
    """A CloudTrail log file ``{"Records":[...]}`` of about ``target`` bytes."""
    rnd = random.Random(11)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    names = ["GetObject", "ListBuckets", "PutBucketPolicy", "AssumeRole", "DescribeInstances",
             "Decrypt", "GetParameter", "CreateLogStream"]
    sources = ["s3.amazonaws.com", "sts.amazonaws.com", "ec2.amazonaws.com", "kms.amazonaws.com"]
    size, i, first = 0, 0, True
    head = b'{"Records":['
    while size < target:
        parts = []
        for _ in range(500):
            i += 1
            t = now + timedelta(milliseconds=i * 3)
            z = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            rec = {
                "eventVersion": "1.08",
                "userIdentity": {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:user{i % 40}",
                                 "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/user{i % 40}",
                                 "accountId": ACCOUNT, "accessKeyId": f"ASIA{i % 9999:016d}",
                                 "sessionContext": {
                                     "sessionIssuer": {"type": "Role", "principalId": "AROAEX",
                                                       "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin",
                                                       "accountId": ACCOUNT, "userName": "Admin"},
                                     "attributes": {"creationDate": z,
                                                    "mfaAuthenticated": "false"}}},
                "eventTime": z, "eventSource": rnd.choice(sources),
                "eventName": rnd.choice(names), "awsRegion": "us-east-1",
                "sourceIPAddress": f"203.0.113.{i % 250}",
                "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2",
                "requestParameters": {"bucketName": f"finance-{i % 17}", "key": f"r/{i}.csv"},
                "responseElements": None, "requestID": f"{rnd.getrandbits(64):016X}",
                "eventID": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
                "recipientAccountId": ACCOUNT, "eventCategory": "Management",
                "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                               "clientProvidedHostHeader": "s3.amazonaws.com"}}
            parts.append(json.dumps(rec, separators=(",", ":")))
        piece = ("" if first else ",") + ",".join(parts)
        first = False
        data = (head + piece.encode()) if head else piece.encode()
        head = b""
        size += len(data)
        yield data, len(parts)
    yield b"]}\n", 0


def gzipped(pieces: Iterator[tuple[bytes, int]], counter: list[int]) -> Iterator[bytes]:
    """Stream gzip (level 1: fast to generate; the reader does not care) of the pieces."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    for data, n in pieces:
        counter[0] += n
        counter[1] += len(data)
        out = z.compress(data)
        if out:
            yield out
    yield z.flush()


def upload(s3: Any, key: str, chunks: Iterator[bytes]) -> int:
    """Multipart upload of a stream of bytes; returns the stored size."""
    mpu = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    parts, buf, stored = [], bytearray(), 0

    def flush() -> None:
        nonlocal buf, stored
        resp = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"],
                              PartNumber=len(parts) + 1, Body=bytes(buf))
        parts.append({"ETag": resp["ETag"], "PartNumber": len(parts) + 1})
        stored += len(buf)
        buf = bytearray()

    for chunk in chunks:
        buf += chunk
        if len(buf) >= PART:
            flush()
    if buf or not parts:
        flush()
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": parts})
    return stored


def vpc_key(kind: str = "log.gz") -> str:
    now = datetime.now(UTC)
    return (f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/{now:%Y/%m/%d}/{ACCOUNT}_vpcflowlogs_"
            f"us-east-1_fl-0123456789abcdef0_{now:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:8]}.{kind}")


def cloudtrail_key() -> str:
    now = datetime.now(UTC)
    return (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{now:%Y/%m/%d}/{ACCOUNT}_CloudTrail_"
            f"us-east-1_{now:%Y%m%dT%H%M}Z_{uuid.uuid4().hex[:16]}.json.gz")


def put_generated(s3: Any, fmt: str, target: int) -> dict[str, Any]:
    """Generate an object of ``target`` uncompressed bytes straight into S3 (streamed)."""
    if fmt == "vpcflow_parquet":
        return put_parquet(s3, target)
    if fmt == "securitylake":
        return put_securitylake(s3, target)
    counter = [0, 0]
    if fmt == "vpcflow":
        key, pieces = vpc_key(), vpc_text(target)
    elif fmt == "cloudtrail":
        key, pieces = cloudtrail_key(), cloudtrail_text(target)
    else:
        raise ValueError(fmt)
    stored = upload(s3, key, gzipped(pieces, counter))
    return {"key": key, "records": counter[0], "raw_bytes": counter[1], "stored_bytes": stored}


def put_parquet(s3: Any, target: int) -> dict[str, Any]:
    """VPC Flow Logs as Parquet (the columns AWS writes, snappy), about ``target`` bytes of the
    same records as text, written row group by row group to a temporary file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = VPC_HEADER.split()
    ints = {"version", "srcport", "dstport", "protocol", "packets", "tcp-flags"}
    longs = {"bytes", "start", "end"}
    schema = pa.schema([(n.replace("-", "_"), pa.int32() if n in ints else
                         pa.int64() if n in longs else pa.string()) for n in names])
    records = raw = 0
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        with pq.ParquetWriter(tmp.name, schema, compression="snappy") as writer:
            for piece, _n in vpc_text(target):
                lines = piece.decode().splitlines()
                if lines and lines[0].startswith("version"):
                    lines = lines[1:]
                cols: list[list[Any]] = [[] for _ in names]
                for line in lines:
                    for c, (name, v) in enumerate(zip(names, line.split())):
                        cols[c].append(int(v) if name in ints or name in longs else v)
                writer.write_table(pa.table(cols, schema=schema), row_group_size=100_000)
                records += len(lines)
                raw += len(piece)
        key = vpc_key("parquet")
        with open(tmp.name, "rb") as f:
            stored = upload(s3, key, iter(lambda: f.read(PART), b""))
    return {"key": key, "records": records, "raw_bytes": raw, "stored_bytes": stored}


# ---- Amazon Security Lake: OCSF 1.1 API Activity (CloudTrail management events) in Parquet -----

# bytes per row group as Parquet counts them (total_byte_size: encoded, before compression),
# what parquet-mr's 128 MB block size bounds: ~500,000 of these rows, ~900 MB as JSON
SL_ROW_GROUP_BYTES = 128 << 20


def ocsf_api_events(rnd: random.Random, start: int, n: int, t0: int) -> list[dict[str, Any]]:
    """``n`` OCSF 1.1 API Activity events as Security Lake 2.0 writes a CloudTrail management
    event (the fields of tests/fixtures/security_lake/generic_api_activity.ocsf.json in their
    1.1 names, as tests/make_security_lake_fixtures.py derives them, plus the columns Security
    Lake adds: observables, resources, session, the partition columns), values varied per row."""
    names = ["GetObject", "ListBuckets", "PutBucketPolicy", "AssumeRole", "DescribeInstances",
             "Decrypt", "GetParameter", "CreateLogStream"]
    services = ["s3.amazonaws.com", "sts.amazonaws.com", "ec2.amazonaws.com",
                "kms.amazonaws.com", "ssm.amazonaws.com", "logs.amazonaws.com"]
    out = []
    for i in range(start, start + n):
        op, svc = names[i % len(names)], services[(i * 7) % len(services)]
        user = f"svc-{i % 41}"
        arn = f"arn:aws:iam::{ACCOUNT}:user/{user}"
        ip = f"{rnd.choice((203, 198, 52, 3))}.{rnd.randrange(256)}.{rnd.randrange(256)}." \
             f"{rnd.randrange(1, 255)}"
        ms = (t0 + i % 3600) * 1000 + i % 1000
        fail = rnd.random() < 0.05
        ev = {
            "activity_id": 2, "activity_name": "Read",
            "actor": {"user": {"type": "IAMUser", "name": user, "uid": arn,
                               "uid_alt": f"AIDA{rnd.getrandbits(60):015X}",
                               "credential_uid": f"AKIA{rnd.getrandbits(64):016X}",
                               "account": {"uid": ACCOUNT}},
                      "session": {"created_time": ms - 3_600_000, "is_mfa": i % 3 == 0,
                                  "issuer": f"arn:aws:iam::{ACCOUNT}:role/ops-{i % 9}"},
                      "invoked_by": None if i % 5 else "cloudformation.amazonaws.com"},
            "api": {"operation": op, "service": {"name": svc}, "version": None,
                    "request": {"uid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                                "data": json.dumps({"bucketName": f"finance-{i % 17}",
                                                    "key": f"reports/{rnd.getrandbits(48):x}"
                                                           f"/{i}.csv"},
                                                   separators=(",", ":"))},
                    "response": ({"error": "AccessDenied",
                                  "message": "User is not authorized to perform this operation"}
                                 if fail else {"error": None, "message": None})},
            "category_name": "Application Activity", "category_uid": 6,
            "class_name": "API Activity", "class_uid": 6003,
            "cloud": {"provider": "AWS", "region": "us-east-1", "account": {"uid": ACCOUNT}},
            "http_request": {"user_agent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 "
                                           "exe/x86_64.amzn.2 prompt/off command/s3api"},
            "metadata": {"product": {"feature": {"name": "Management"}, "name": "CloudTrail",
                                     "vendor_name": "AWS", "version": "1.09"},
                         "profiles": ["cloud", "datetime"],
                         "uid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
                         "version": "1.1.0"},
            "observables": [{"name": "src_endpoint.ip", "type": "IP Address", "type_id": 2,
                             "value": ip},
                            {"name": "actor.user.name", "type": "User Name", "type_id": 4,
                             "value": user}],
            "resources": [{"uid": f"arn:aws:s3:::finance-{i % 17}", "type": "AWS::S3::Bucket",
                           "account_uid": ACCOUNT}],
            "severity": "Informational", "severity_id": 1,
            "src_endpoint": {"ip": ip, "domain": None, "uid": None},
            "status": "Failure" if fail else "Success", "status_id": 2 if fail else 1,
            "time": ms, "type_name": "API Activity: Read", "type_uid": 600302,
            "unmapped": [("eventType", "AwsApiCall"), ("recipientAccountId", ACCOUNT),
                         ("readOnly", "true"), ("managementEvent", "true"),
                         ("eventCategory", "Management")],
            "accountid": ACCOUNT, "region": "us-east-1", "asl_version": "2.0",
        }
        out.append(ev)
    return out


def _ocsf_schema() -> Any:
    import pyarrow as pa

    def typed(t: Any) -> Any:  # a field null in every sample row is a string
        if pa.types.is_null(t):
            return pa.string()
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(typed(f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(typed(t.value_type))
        return t

    sample = ocsf_api_events(random.Random(0), 0, 10, 0)
    for ev in sample:
        ev["unmapped"] = dict(ev["unmapped"])
    schema = pa.schema([f.with_type(typed(f.type))
                        for f in pa.Table.from_pylist(sample).schema])
    return schema.set(schema.get_field_index("unmapped"),
                      pa.field("unmapped", pa.map_(pa.string(), pa.string())))


def securitylake_key(source: str = "CLOUD_TRAIL_MGMT") -> str:
    now = datetime.now(UTC)
    return (f"aws/{source}/2.0/region=us-east-1/accountId={ACCOUNT}/eventDay={now:%Y%m%d}/"
            f"{uuid.uuid4()}.zstd.parquet")


def put_securitylake(s3: Any, target: int, *,
                     row_group_bytes: int = SL_ROW_GROUP_BYTES) -> dict[str, Any]:
    """Security Lake CloudTrail management events (OCSF 1.1 API Activity) as Parquet (zstd),
    about ``target`` bytes of the same events as JSON lines, in row groups of about
    ``row_group_bytes`` as Parquet counts them (one row group is held as Arrow here, in the
    bench process, never in the measured child)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    rnd = random.Random(13)
    t0 = int(time.time()) - 7200
    schema = _ocsf_schema()
    probe = io.BytesIO()  # the encoded bytes of a row, to size the row groups
    pq.write_table(pa.Table.from_pylist(ocsf_api_events(random.Random(1), 0, 20_000, t0),
                                        schema=schema), probe, compression="zstd")
    meta = pq.ParquetFile(io.BytesIO(probe.getvalue())).metadata
    group_rows = int(row_group_bytes / (meta.row_group(0).total_byte_size / meta.num_rows))
    records = raw = groups = 0
    pending: list[Any] = []
    pending_rows = 0
    with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
        with pq.ParquetWriter(tmp.name, schema, compression="zstd") as writer:

            def flush() -> None:
                nonlocal pending, pending_rows, groups
                if pending:
                    table = pa.concat_tables(pending)  # no copy: the chunks of one table
                    writer.write_table(table, row_group_size=table.num_rows)
                    groups += 1
                pending, pending_rows = [], 0

            while raw < target:
                events = ocsf_api_events(rnd, records, 4000, t0)
                raw += sum(len(json.dumps({**e, "unmapped": dict(e["unmapped"])},
                                          separators=(",", ":"))) + 1 for e in events)
                table = pa.Table.from_pylist(events, schema=schema)
                records += len(events)
                pending.append(table)
                pending_rows += table.num_rows
                if pending_rows >= group_rows:
                    flush()
            flush()
        key = securitylake_key()
        with open(tmp.name, "rb") as f:
            stored = upload(s3, key, iter(lambda: f.read(PART), b""))
    return {"key": key, "records": records, "raw_bytes": raw, "stored_bytes": stored,
            "row_groups": groups}


# ---- the stack -----------------------------------------------------------------------------------

class Rig:
    """LocalStack + one source (bucket, SQS queue, keys in Key Vault) + the app settings."""

    def __init__(self, *, azurite: bool = True) -> None:
        from devtools.stack import LocalStack

        self.stack = LocalStack(azurite=azurite)
        self.env: dict[str, str] = {}

    def __enter__(self) -> Rig:
        import boto3

        self.stack.start()
        os.environ.update(self.stack.env)
        self.stack.ingestion.keep_records = False
        self.stack.ingestion.validate = False  # its CPU would compete with the measured child
        # measuring only: bodies inflated (sizes, 413) but not parsed as JSON; the benches
        # count delivered records from the pipeline's stats (labelled in results.json)
        self.stack.ingestion.parse_records = False
        self.s3 = boto3.client("s3", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.s3.create_bucket(Bucket=BUCKET)
        self.queue_url = self.sqs.create_queue(QueueName="bench-notify")["QueueUrl"]
        self.stack.keyvault.set_secret("bench-key-id", "AKIABENCHEXAMPLE")
        self.stack.keyvault.set_secret("bench-secret", "bench-secret")
        self.env = dict(self.stack.env) | {
            "AWS_SOURCES": json.dumps([{
                "name": "bench", "queueUrl": self.queue_url, "region": "us-east-1",
                "accessKeyIdSecret": "bench-key-id", "secretAccessKeySecret": "bench-secret",
                "buckets": {BUCKET: ["AWSLogs/", "aws/"]}}]),  # aws/: Security Lake
            "WORK_QUEUE": "bench-objects", "POISON_QUEUE": "bench-objects-poison",
            "CHECKPOINT_TABLE": "benchcheckpoints", "SQS_WAIT_SECONDS": "0",
            "AWS_WEB_IDENTITY_AUDIENCE": "api://bench",
        }
        os.environ.update(self.env)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.stop()

    def emulator_mode(self) -> dict[str, Any]:
        """How the Logs Ingestion emulator judged the bodies (results.json says it)."""
        e = self.stack.ingestion
        return {"validate": e.validate, "parse_records": e.parse_records,
                "note": "parse_records false: the emulator inflates each body (isal, bounded: "
                        "sizes measured, 413 answered) but does not parse its JSON; records "
                        "are counted from the pipeline's stats" if not e.parse_records else
                        "the emulator parses every body's JSON"}

    def ref(self, key: str) -> str:
        from shared.notifications import ObjectRef

        return ObjectRef(source="bench", bucket=BUCKET, key=key, replay=True).to_json()


def start_child(env: dict[str, str], refs: list[str], **options: Any) -> subprocess.Popen:
    arg = json.dumps({"refs": refs, **options})
    if len(arg) > 64_000:  # too long for argv: handed over in a file
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write(arg)
        arg = "@" + f.name
    return subprocess.Popen([sys.executable, "-m", "benchmarks.harness", "child", arg],
                            cwd=ROOT, env=os.environ | env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_child(proc: subprocess.Popen, timeout: float = 1800) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed ({proc.returncode}): {err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def run_child(env: dict[str, str], refs: list[str], *, timeout: float = 1800,
              **options: Any) -> dict[str, Any]:
    """Process ``refs`` one after another in a fresh interpreter; its peak RSS and timings.
    Options: ``trace`` (tracemalloc sampler), ``cpu`` (the CPU path only), ``start_at``,
    ``thread_cpu`` (per kind of thread), ``warm`` (refs processed first, untimed: clients,
    connections, the checkpoint table and tokens exist, as in a worker past its first object)."""
    return wait_child(start_child(env, refs, **options), timeout)


def cpu_path(key: str, data: bytes, max_batch_bytes: int) -> int:
    """The CPU path of one object (no network): gunzip, frame, detect, parse+map, batch,
    gzip each request body. Returns the records."""
    from shared import formats
    from shared.batching import batches
    from shared.reader import TextSource, decompress

    text = TextSource(decompress(data[i:i + (256 << 10)]
                                 for i in range(0, len(data), 256 << 10)))
    fmt = formats.detect(key, text.head)
    ctx = formats.ObjectContext(source="bench", bucket=BUCKET, key=key)
    rows = ((p, r) for p, r in enumerate(fmt.parse(text, ctx)) if isinstance(r, dict))
    n = 0
    for b in batches(rows, max_batch_bytes):
        b.gzipped()
        n += len(b)
    return n


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) process ``pid`` has used so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """Core-seconds the whole machine spent busy (not idle or waiting on I/O) since boot."""
    try:
        cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in cpu]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class CPUMeter:
    """CPU seconds used while the ``with`` block runs: by this process (the in-process
    emulators), by each of the stack's subprocesses (moto, Azurite) and by the whole machine
    (every process, other users' too)."""

    def __init__(self, stack: Any) -> None:
        self._pids = {name: proc.pid for name, proc in getattr(stack, "_procs", [])}

    def _now(self) -> dict[str, float]:
        t = os.times()
        return {"bench_process": t.user + t.system, "machine": machine_busy_seconds(),
                **{name: process_cpu_seconds(pid) for name, pid in self._pids.items()}}

    def __enter__(self) -> CPUMeter:
        self._start, self._t0 = self._now(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.wall = time.perf_counter() - self._t0
        self.used = {name: round(end[name] - self._start[name], 2) for name in end}


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM of its own address space). Not ru_maxrss: on Linux that
    carries the parent's RSS across fork+exec, so a child looked as big as the bench runner."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(arg: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from shared import pipeline
    from shared.errors import TransientError

    conn = pipeline.connector()
    if arg.get("cpu"):  # the same objects through the CPU path only (bytes fetched untimed)
        out = {"objects": []}
        for ref in arg["refs"]:
            key = json.loads(ref)["key"]
            data = conn.aws.call(conn.settings.sources[0], "s3", lambda c, k=key: c.get_object(
                Bucket=BUCKET, Key=k)["Body"].read())
            t = time.perf_counter()
            n = cpu_path(key, data, conn.settings.max_batch_bytes)
            out["objects"].append({"records_out": n, "seconds": round(time.perf_counter() - t, 3)})
        out["seconds"] = round(sum(o["seconds"] for o in out["objects"]), 3)
        return out
    warm_batches = 0
    for ref in arg.get("warm", ()):  # untimed: a worker that has already run an object
        warm_batches += pipeline.process_object(conn, ref).batches
    sampler = _Sampler() if arg.get("trace") else None
    threads = _ThreadCPU() if arg.get("thread_cpu") else None
    base = peak_rss_mb()
    out: dict[str, Any] = {"objects": []}
    if arg.get("start_at"):  # several children start together (the processes bench)
        time.sleep(max(0.0, arg["start_at"] - time.time()))
    t0 = time.perf_counter()
    cpu0 = os.times().user + os.times().system
    for ref in arg["refs"]:
        t = time.perf_counter()
        for attempt in range(1, 6):  # as the host does: a retry resumes from the checkpoint
            try:
                stats = pipeline.process_object(conn, ref, dequeue_count=attempt)
                break
            except TransientError as err:  # e.g. the time budget ran out on a busy machine
                print(f"attempt {attempt}: {err}", file=sys.stderr, flush=True)
        out["objects"].append({"outcome": stats.outcome, "records_in": stats.records_in,
                               "records_out": stats.records_out,
                               "records_dropped": stats.records_dropped,
                               "records_skipped": stats.records_skipped,
                               "bytes_in": stats.bytes_in, "batches": stats.batches,
                               "checkpoint_saves": stats.checkpoint_saves,
                               "attempts": attempt,
                               "seconds": round(time.perf_counter() - t, 3)})
    out["seconds"] = round(time.perf_counter() - t0, 3)
    out["ended_at"] = time.time()
    used = os.times()
    out["cpu_seconds_used"] = round(used.user + used.system - cpu0, 3)  # all threads
    out["warm_batches"] = warm_batches  # batches the warm objects sent (requests accepted)
    out["rss_mb_before"] = round(base, 1)
    out["rss_mb_peak"] = round(peak_rss_mb(), 1)
    if sampler is not None:
        out["tracemalloc"] = sampler.stop()
    if threads is not None:
        out["thread_cpu_seconds"] = threads.stop()
    return out


class _ThreadCPU:
    """Per kind of thread (its name without the pool index: MainThread, upload, lease, ...):
    seconds on a core and seconds runnable but waiting for one (the run queue: the machine's
    other processes), and how many times it was put on a core (``slices``: every wait for the
    GIL, a socket or a lock ends in one), from /proc/self/task/<tid>/schedstat read every
    ``every`` seconds (a thread that ends between two reads loses at most that much). Wall
    time beyond the two is spent blocked: on the GIL, a socket, a lock."""

    def __init__(self, every: float = 0.05) -> None:
        self._last: dict[int, tuple[str, int, int, int]] = {}
        self._read()
        self._base = {tid: values[1:] for tid, values in self._last.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), name="cpu-sampler",
                                        daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for t in threading.enumerate():
            try:
                run, wait, slices = Path(f"/proc/self/task/{t.native_id}/schedstat"
                                         ).read_text().split()[:3]
            except (OSError, ValueError):
                continue
            name = t.name.rsplit("_", 1)[0] if t.name[-1:].isdigit() else t.name
            self._last[t.native_id] = (name, int(run), int(wait), int(slices))

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self._read()

    def stop(self) -> dict[str, dict[str, float]]:
        self._stop.set()
        self._thread.join()
        self._read()
        out: dict[str, list[float]] = {}
        for tid, (name, run, wait, slices) in self._last.items():
            run0, wait0, slices0 = self._base.get(tid, (0, 0, 0))
            acc = out.setdefault(name, [0.0, 0.0, 0])
            acc[0] += (run - run0) / 1e9
            acc[1] += (wait - wait0) / 1e9
            acc[2] += slices - slices0
        return {name: {"cpu_s": round(a, 2), "runqueue_s": round(b, 2), "slices": int(n)}
                for name, (a, b, n) in sorted(out.items(), key=lambda kv: -kv[1][0])}


class _Sampler:
    """tracemalloc in a thread: keeps the snapshot taken when traced memory was largest."""

    def __init__(self, every: float = 1.0) -> None:
        import tracemalloc

        self._tm = tracemalloc
        tracemalloc.start(1)
        self._best: tuple[int, Any] = (0, None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            current = self._tm.get_traced_memory()[0]
            if current > self._best[0] * 1.1:
                self._best = (current, self._tm.take_snapshot())

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        peak = self._tm.get_traced_memory()[1]
        size, snap = self._best
        top = []
        if snap is not None:
            for stat in snap.statistics("lineno")[:12]:
                frame = stat.traceback[0]
                top.append({"where": f"{Path(frame.filename).name}:{frame.lineno}",
                            "mb": round(stat.size / 1e6, 1), "blocks": stat.count})
        self._tm.stop()
        return {"peak_mb": round(peak / 1e6, 1), "snapshot_mb": round(size / 1e6, 1),
                "top": top}


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        import logging

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        arg = sys.argv[2]
        if arg.startswith("@"):
            path = Path(arg[1:])
            arg = path.read_text()
            path.unlink()
        print(json.dumps(_child(json.loads(arg))), flush=True)
    else:
        sys.exit(__doc__)
