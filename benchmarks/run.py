"""Benchmarks, measured side by side in one run (shared, noisy machines: read the ratios).

  python -m benchmarks.run [--quick]

1. parse+map throughput per format (records/s) through the real reader and mappers;
2. peak memory of a large CloudTrail object: our streaming reader vs json.load of the whole
   decompressed file (tracemalloc peak, same data);
3. serialisation for upload: our batcher (each record serialised once) vs the SDK's list
   path (serialise to size, then serialise the chunk again);
4. end-to-end upload throughput against the Logs Ingestion emulator with 30 ms service
   latency: 1 upload in flight vs 4;
5. the poller: SQS notifications forwarded to the Azure work queue, 1 vs 10 threads.
Results are printed as a Markdown table and written to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sample_logs import cloudtrail, guardduty, vpcflow  # noqa: E402

from shared import formats  # noqa: E402
from shared.batching import batches  # noqa: E402
from shared.reader import TextSource, decompress  # noqa: E402


def chunks(data: bytes, size: int = 256 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def parse_all(key: str, data: bytes) -> int:
    text = TextSource(decompress(chunks(data)))
    fmt = formats.detect(key, text.head)
    ctx = formats.ObjectContext(source="bench", bucket="b", key=key)
    return sum(1 for item in fmt.parse(text, ctx) if isinstance(item, dict))


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_parse(scale: int) -> list[tuple[str, str]]:
    out = []
    for name, (key, data, n) in {"CloudTrail": cloudtrail(5000 * scale),
                                 "VPC Flow": vpcflow(50000 * scale),
                                 "GuardDuty": guardduty(2000 * scale)}.items():
        assert parse_all(key, data) == n
        secs = best_of(lambda k=key, d=data: parse_all(k, d))
        out.append((f"parse+map {name} ({n:,} records, {len(data) / 1e6:.1f} MB gz)",
                    f"{n / secs:,.0f} records/s"))
    return out


def bench_memory(scale: int) -> list[tuple[str, str]]:
    key, data, n = cloudtrail(20000 * scale, pad=400)
    raw_mb = len(gzip.decompress(data)) / 1e6

    def streaming() -> None:
        assert parse_all(key, data) == n

    def whole() -> None:
        doc = json.loads(gzip.decompress(data))
        from shared.formats.cloudtrail import map_event
        assert sum(1 for ev in doc["Records"] if map_event(ev)) == n

    peaks = []
    for fn in (streaming, whole):
        tracemalloc.start()
        fn()
        peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()
    return [(f"peak memory, CloudTrail {raw_mb:.0f} MB decompressed ({n:,} records): "
             "streaming vs json.load(whole)",
             f"{peaks[0]:.1f} MB vs {peaks[1]:.1f} MB (x{peaks[1] / peaks[0]:.1f} less)")]


def bench_serialise(scale: int) -> list[tuple[str, str]]:
    key, data, n = cloudtrail(10000 * scale)
    text = TextSource(decompress(chunks(data)))
    fmt = formats.detect(key, text.head)
    rows = [r for r in fmt.parse(text, formats.ObjectContext("b", "b", key))
            if isinstance(r, dict)]

    def ours() -> None:
        for b in batches(enumerate(rows), 1_000_000):
            b.gzipped()

    def sdk_like() -> None:
        # azure-monitor-ingestion's list path: json.dumps each record to size the chunk,
        # then json.dumps the chunk again, then gzip
        chunk, size = [], 0
        for r in rows:
            s = len(json.dumps(r))
            if size + s > 1024 * 1024 and chunk:
                gzip.compress(json.dumps(chunk).encode())
                chunk, size = [], 0
            chunk.append(r)
            size += s
        if chunk:
            gzip.compress(json.dumps(chunk).encode())

    a, b = best_of(ours), best_of(sdk_like)
    return [(f"serialise+gzip {n:,} CloudTrail rows: ours vs SDK list path",
             f"{a * 1000:.0f} ms vs {b * 1000:.0f} ms (x{b / a:.2f})")]


def bench_upload(scale: int) -> list[tuple[str, str]]:
    import os

    from azure.identity import ManagedIdentityCredential

    from devtools.stack import LocalStack
    from shared.ingestion import Ingestor, RetryPolicy

    out = []
    key, data, n = vpcflow(20000 * scale)
    text = TextSource(decompress(chunks(data)))
    fmt = formats.detect(key, text.head)
    rows = [r for r in fmt.parse(text, formats.ObjectContext("b", "b", key))
            if isinstance(r, dict)]
    with LocalStack(moto=False) as stack:
        os.environ.update(stack.env)
        cred = ManagedIdentityCredential()
        results = {}
        for in_flight in (1, 4):
            ing = Ingestor(stack.env["LOGS_INGESTION_ENDPOINT"], stack.env["DCR_IMMUTABLE_ID"],
                           cred, policy=RetryPolicy(3, 0.1, 1), in_flight=in_flight)
            stack.ingestion.reset()
            stack.ingestion.inject(latency=0.03, count=10_000)
            t = time.perf_counter()
            report = ing.send("Custom-AWSVPCFlow", batches(enumerate(rows), 200_000))
            results[in_flight] = time.perf_counter() - t
            assert report.records_out == n, report
            ing.close()
        out.append((f"upload {n:,} VPC rows in 200 KB batches, 30 ms service latency: "
                    "1 vs 4 in flight",
                    f"{n / results[1]:,.0f} vs {n / results[4]:,.0f} records/s "
                    f"(x{results[1] / results[4]:.1f})"))
    return out


def bench_poll(scale: int) -> list[tuple[str, str]]:
    import os

    import boto3

    from devtools.stack import LocalStack
    from shared import pipeline

    n = 200 * scale
    results = {}
    with LocalStack() as stack:
        os.environ.update(stack.env)
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="bench-notifications")["QueueUrl"]
        stack.keyvault.set_secret("k", "AKIABENCH")
        stack.keyvault.set_secret("s", "secret")
        os.environ.update({"AWS_SOURCES": json.dumps([{
            "name": "bench", "queueUrl": url, "region": "us-east-1",
            "accessKeyIdSecret": "k", "secretAccessKeySecret": "s",
            "buckets": {"bench-logs": ["AWSLogs/"]}}]),
            "SQS_WAIT_SECONDS": "0", "POLL_TIME_BUDGET_SECONDS": "300"})
        pipeline.reset_connector()
        conn = pipeline.connector()
        source = conn.settings.sources[0]
        for workers in (1, 10):
            for i in range(0, n, 10):
                sqs.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(j), "MessageBody": json.dumps({"Records": [{
                        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "bench-logs"},
                               "object": {"key": f"AWSLogs/k{i + j}", "eTag": "e"}}}]})}
                    for j in range(10)])
            t = time.perf_counter()
            stats = pipeline.poll_source(conn, source, time.monotonic() + 300, workers=workers)
            results[workers] = time.perf_counter() - t
            assert stats.objects_enqueued == n and stats.error is None, stats
        pipeline.reset_connector()
    # moto answers ReceiveMessage in ~90 ms (real SQS: ~20 ms), which bounds both runs
    return [(f"poller: forward {n} notifications SQS -> Azure queue (moto, Azurite): "
             "1 vs 10 forwarding threads",
             f"{n / results[1]:,.0f} vs {n / results[10]:,.0f} objects/s "
             f"(x{results[1] / results[10]:.1f})")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller inputs")
    args = ap.parse_args()
    scale = 1 if args.quick else 2
    rows: list[tuple[str, str]] = []
    for bench in (bench_parse, bench_memory, bench_serialise, bench_upload, bench_poll):
        rows += bench(scale)
        print(f"{rows[-1][0]}: {rows[-1][1]}", flush=True)
    table = ["| measurement | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    text = ("# Benchmark results\n\nMeasured by `make bench` (python -m benchmarks.run) on "
            "the 2-core development machine; compare the ratios, not the absolute numbers.\n\n"
            + "\n".join(table) + "\n")
    (ROOT / "benchmarks" / "RESULTS.md").write_text(text)
    print("\n" + "\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
