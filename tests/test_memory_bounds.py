"""What an object costs in memory does not grow with its records: accepted batches are released,
rejected positions are intervals, refused batches merge into a few dead letters, and Parquet is
read row group by row group from a spooled temporary file. Measured with tracemalloc around
the real pipeline (moto S3 -> process_object -> the Logs Ingestion emulator)."""
from __future__ import annotations

import gzip
import json
import tracemalloc

from shared import parquet_source
from shared.checkpoints import Ranges

VPC = "Custom-AWSVPCFlow"
HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
          "bytes start end action log-status\n")
KEY = ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/01/123456789012_vpcflowlogs_"
       "us-east-1_fl-0123456789abcdef0_20261201T2100Z_{}.log.gz")


def _vpc(n: int, *, bad_every: int = 0) -> bytes:
    lines = [HEADER]
    for i in range(n):
        if bad_every and i % bad_every == 0:
            lines.append("this line is not a flow record\n")
        else:
            lines.append(f"2 123456789012 eni-0a1b 10.0.0.{i % 250} 198.51.100.{i % 250} "
                         f"{1024 + i % 60000} 443 6 {i % 90 + 1} {i * 3} 1764622800 "
                         f"1764622860 ACCEPT OK\n")
    return gzip.compress("".join(lines).encode(), 1)


def _peak(world, body: str) -> tuple[float, object]:
    from shared import pipeline

    conn = pipeline.connector()
    tracemalloc.start()
    try:
        stats = pipeline.process_object(conn, body)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    return peak, stats


def _ref(source, key: str) -> str:
    return f'{{"source":"{source["name"]}","bucket":"{source["_bucket"]}","key":"{key}"}}'


def test_a_large_object_does_not_keep_its_accepted_rows(world):
    world.stack.ingestion.keep_records = False
    try:
        source = world.add_source("mem")
        world.configure()
        peaks = []
        for n in (20_000, 120_000):
            key = KEY.format(f"n{n}")
            world.s3.put_object(Bucket=source["_bucket"], Key=key, Body=_vpc(n))
            peak, stats = _peak(world, _ref(source, key))
            assert stats.outcome == "delivered" and stats.records_out == n
            peaks.append(peak)
        # 6x the records: the encoded rows (~35 MB at 120k) must not all be held
        assert peaks[1] < peaks[0] * 2 + 5, peaks
        # and what is held is about the batches in flight (4 sent, 1 waiting, 1 open: ~6 MB of
        # bodies) with the reader and the SDKs: ~15 MB. Batches that kept orjson's row buffers
        # (>= 4 KB a row) peaked at 69 MB here
        assert peaks[1] < 40, peaks
    finally:
        world.stack.ingestion.keep_records = True


def test_an_object_of_rejected_lines_stays_bounded(world):
    source = world.add_source("bad")
    world.configure()
    peaks = []
    for n in (30_000, 180_000):
        key = KEY.format(f"bad{n}")
        world.s3.put_object(Bucket=source["_bucket"], Key=key, Body=_vpc(n, bad_every=1))
        peak, stats = _peak(world, _ref(source, key))
        assert stats.records_dropped == n and stats.outcome == "partial"
        peaks.append(peak)
    # 6x the rejected lines; a list of their positions alone grew by ~6 MB
    assert peaks[1] < peaks[0] * 1.3 + 2, peaks
    envelopes = list(world.host().poison.receive_messages(messages_per_page=32))
    assert len(envelopes) == 2  # one per object, with the count
    counts = sorted(json.loads(m.content)["records"]["count"] for m in envelopes)
    assert counts == [30_000, 180_000]


def test_every_other_line_rejected_costs_16_bytes_an_interval():
    r = Ranges()
    for p in range(0, 2_000_000, 2):
        r.append(p)
    assert len(r) == 1_000_000 and r.interval_count() == 1_000_000
    assert 1_000_000 in r and 1_000_001 not in r and r.head(3) == [0, 2, 4]
    assert r._flat.itemsize * len(r._flat) == 16_000_000


def test_refused_batches_merge_into_a_few_dead_letters(world):
    world.stack.ingestion.inject(400, count=10_000, stream=VPC, message="refused for the test")
    source = world.add_source("refused")
    world.configure(MAX_BATCH_BYTES="20000")
    n = 20_000
    key = KEY.format("refused")
    world.s3.put_object(Bucket=source["_bucket"], Key=key, Body=_vpc(n))
    from shared import pipeline

    stats = pipeline.process_object(pipeline.connector(), _ref(source, key))
    assert stats.records_dropped == n and stats.batches == 0
    envelopes = list(world.host().poison.receive_messages(messages_per_page=32))
    assert 1 <= len(envelopes) <= 10  # ~150 refused batches, at most 10 envelopes of one kind
    world.stack.ingestion.reset()


def test_parquet_is_spooled_to_disk_beyond_the_memory_threshold():
    data = [b"PAR1" + b"x" * 1000] * 100
    f = parquet_source.spooled(iter(data), memory_bytes=10_000)
    try:
        assert f._rolled  # spilled to a temporary file
        assert f.read(4) == b"PAR1"
        f.seek(-1000, 2)
        assert f.read() == b"x" * 1000
    finally:
        f.close()


def test_ranges_behave_like_a_set_of_positions():
    import random

    rnd = random.Random(3)
    for _ in range(300):
        ref: set[int] = set()
        r = Ranges()
        for _ in range(rnd.randint(1, 6)):
            ps = rnd.sample(range(60), rnd.randint(0, 15))
            r.add(ps)
            ref |= set(ps)
        assert [p for p in range(-2, 70) if p in r] == sorted(ref) and len(r) == len(ref)
        ivs = r.intervals()
        assert all(a[1] < b[0] for a, b in zip(ivs, ivs[1:]))  # merged, adjacent ones too
        assert Ranges(ivs).intervals() == ivs
        if ref:
            assert (r.first, r.last, r.head(4)) == (min(ref), max(ref), sorted(ref)[:4])
        other = Ranges([[0, 3]])
        other.update(r)
        assert [p for p in range(70) if p in other] == sorted(ref | {0, 1, 2})


def _flow_rows(n: int):
    for i in range(n):  # VPC Flow rows as the mapper makes them (~330 bytes of JSON each)
        yield i, {"TimeGenerated": "2026-12-01T21:00:00.000Z", "Version": 2,
                  "AccountId": "123456789012", "InterfaceId": f"eni-0a1b2c3d4e5f{i % 97:05x}",
                  "SrcAddr": f"10.0.{i % 200}.{i % 250}", "DstAddr": "198.51.100.7",
                  "SrcPort": 1024 + i % 60000, "DstPort": 443, "Protocol": 6,
                  "Packets": i % 90 + 1, "Bytes": i * 3, "FlowStartTime": 1764622800,
                  "FlowEndTime": 1764622860, "Action": "ACCEPT", "LogStatus": "OK"}


def test_a_batch_costs_about_its_body_not_a_buffer_per_row():
    # orjson (3.12+) returns every row in a buffer of >= ~4 KB it never shrinks: batches that
    # kept their rows as those bytes objects held ~12x their body (the in-flight batches of
    # one VPC Flow object took ~150 MB of RSS instead of ~6 MB)
    from shared.batching import Batch, Batcher, batches

    tracemalloc.start()
    try:
        held = list(batches(_flow_rows(20_000), 1_000_000))
        batcher, routed = Batcher(1_000_000), []
        for position, row in _flow_rows(20_000):
            out = batcher.add(position, row)
            if out is not None:
                routed.append(out)
        routed.append(batcher.flush())
        current = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert all(isinstance(b, Batch) for b in held + routed) and len(held) >= 6
    bodies = sum(b.size for b in held + routed)
    # the bodies, plus a list of positions and an array of row ends per batch (~40 B a row)
    assert current < bodies * 1.2 + 40 * 40_000 + 500_000, (current, bodies)


def _flow_parquet(path, row_groups: int, rows: int = 2_000) -> None:
    import random

    import pyarrow as pa
    import pyarrow.parquet as pq

    rnd = random.Random(5)
    names = ["version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport",
             "dstport", "protocol", "packets", "bytes", "start", "end", "action",
             "log_status"]
    with pq.ParquetWriter(path, pa.schema([(n, pa.string() if n in (
            "account_id", "interface_id", "srcaddr", "dstaddr", "action", "log_status")
            else pa.int64()) for n in names]), compression="snappy") as writer:
        for _ in range(row_groups):
            writer.write_table(pa.table({
                "version": [2] * rows, "account_id": ["123456789012"] * rows,
                "interface_id": [f"eni-{rnd.getrandbits(64):016x}" for _ in range(rows)],
                "srcaddr": [f"10.0.{rnd.randrange(256)}.{rnd.randrange(256)}"
                            for _ in range(rows)],
                "dstaddr": ["198.51.100.7"] * rows, "srcport": [1024] * rows,
                "dstport": [443] * rows, "protocol": [6] * rows,
                "packets": [rnd.randrange(100) for _ in range(rows)],
                "bytes": [rnd.getrandbits(40) for _ in range(rows)],
                "start": [1764622800] * rows, "end": [1764622860] * rows,
                "action": ["ACCEPT"] * rows, "log_status": ["OK"] * rows}))


def test_parquet_memory_does_not_grow_with_its_row_groups(tmp_path):
    # pyarrow's iter_batches pre-buffered every row group (pre_buffer=True) and kept the
    # bytes read until the file was closed: RSS grew with the object (1 GB of VPC Flow text
    # as Parquet: 487 MB against 319 MB at 100 MB). Those reads are Python bytes (the spooled
    # file is a Python file), so tracemalloc sees them
    from shared.formats import ObjectContext, vpcflow

    ctx = ObjectContext(source="s", bucket="b", key=KEY.format("p").replace(".log.gz",
                                                                            ".parquet"))
    peaks = []
    for groups in (4, 40):
        path = tmp_path / f"flow{groups}.parquet"
        _flow_parquet(path, groups)
        with open(path, "rb") as f:
            source = parquet_source.spooled(iter(lambda: f.read(1 << 16), b""),
                                            memory_bytes=1 << 16)
        tracemalloc.start()
        try:
            n = sum(1 for row in vpcflow.parse_parquet(source, ctx) if isinstance(row, dict))
            peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        finally:
            tracemalloc.stop()
            source.close()
        assert n == groups * 2_000
        size = path.stat().st_size / 1e6
    # 10x the row groups (the larger file is ~3 MB): the peak is a batch of rows, not the
    # file's bytes
    assert peaks[1] < peaks[0] + size / 4, (peaks, size)


_SL_READ = """
import json, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
import pyarrow as pa
from shared.formats import ObjectContext, securitylake
ctx = ObjectContext(source="s", bucket="b", key=sys.argv[3])
tracemalloc.start()
with open(sys.argv[2], "rb") as f:
    n = sum(1 for row in securitylake.OCSF_API.parse_bytes(f, ctx) if isinstance(row, dict))
print(json.dumps({"rows": n, "python_mb": tracemalloc.get_traced_memory()[1] / 1e6,
                  "arrow_mb": pa.default_memory_pool().max_memory() / 1e6}))
"""


def test_security_lake_memory_does_not_grow_with_its_row_group(tmp_path):
    # Security Lake writes row groups of ~128 MB; read_row_group decoded one whole (Arrow
    # memory, then 5,000 rows at a time as Python): the peak grew with the row group (2,000 ->
    # 20,000 rows in one row group: Arrow + Python peak 14.4 -> 45.6 MB). Now pages of the
    # mapped columns are streamed, 1,000 rows at a time (7.6 -> 7.8 MB). Read in a fresh
    # interpreter: Arrow's pool keeps its peak for the life of the process
    import subprocess
    import sys
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq
    from make_security_lake_fixtures import OBJECTS, _load, _prune, derived_api_activity_1_1

    base = _prune(derived_api_activity_1_1(_load("generic_api_activity.ocsf.json"),
                                           error=False))
    base["observables"] = [{"name": "src_endpoint.ip", "type": "IP Address", "type_id": 2,
                            "value": base["src_endpoint"]["ip"]}]  # a column we do not map
    text = json.dumps(base)
    events = []
    for i in range(2_000):
        ev = json.loads(text)
        ev["time"] += i
        ev["metadata"]["uid"] = f"{i:08x}-ea5c-43c7-8c82-02ecb5ec7f09"
        ev["api"]["operation"] = f"Describe{i % 37}"
        events.append(ev)
    chunk = pa.Table.from_pylist(events)
    key = OBJECTS["CLOUD_TRAIL_MGMT.parquet"]
    root = str(Path(__file__).resolve().parents[1])
    peaks = []
    for copies in (1, 10):
        path = tmp_path / f"sl{copies}.parquet"
        table = pa.concat_tables([chunk] * copies)
        pq.write_table(table, path, row_group_size=table.num_rows, compression="zstd")
        assert pq.ParquetFile(path).num_row_groups == 1
        out = subprocess.run([sys.executable, "-c", _SL_READ, root, str(path), key],
                             capture_output=True, text=True, timeout=120, check=True)
        result = json.loads(out.stdout)
        assert result["rows"] == table.num_rows
        peaks.append(result["python_mb"] + result["arrow_mb"])
    # 10x the rows in the row group: the peak is a batch of rows, not the row group
    assert peaks[1] < peaks[0] * 1.5 + 2, peaks
