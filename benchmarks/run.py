"""Benchmarks, measured side by side in one run; results in benchmarks/results.json.

  python -m benchmarks.run            full (make bench, < 25 min)
  python -m benchmarks.run --quick    smaller sizes (make bench-quick, < 3 min)
  python -m benchmarks.run --smoke    tiny sizes, for tests/test_bench_smoke.py (structure only)

Sections (each object end to end: moto S3 -> shared.pipeline.process_object -> the Logs
Ingestion emulator, in a fresh subprocess; generated data streamed to moto, never held whole):

* ``formats``/``compression``: the CPU path per format (benchmarks/cpu.py, perf-cpu's branch;
  skipped with a note when it is not merged yet);
* ``memory``: peak RSS (VmHWM of the child) for a small and a large object per format
  (``securitylake``: OCSF CloudTrail events in Parquet, row groups of ~128 MB);
* ``e2e``: end to end vs the CPU path for the same object (``ratio_vs_cpu``);
* ``processes``: objects/s of two worker processes over one (FUNCTIONS_WORKER_PROCESS_COUNT=2);
* ``small_objects``: Logs Ingestion requests per ~2 KB object, health rows included;
* ``poller``: notifications/s SQS -> work queue with 30 ms RTT, ours vs a naive loop.

The emulator runs in this process (its CPU competes with the children on a 2-core machine, as a
remote service would not): read the ratios, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import harness  # noqa: E402

MB = 1 << 20
PROFILES: dict[str, dict[str, Any]] = {
    "full": {"memory": {"vpcflow": (100 * MB, 1024 * MB), "cloudtrail": (100 * MB, 1024 * MB),
                        "vpcflow_parquet": (100 * MB, 1024 * MB),
                        "securitylake": (100 * MB, 1024 * MB)},
             "e2e_bytes": 100 * MB, "proc_objects": 8, "proc_bytes": 12 * MB,
             "small_objects": 2000},
    "quick": {"memory": {"vpcflow": (5 * MB, 40 * MB), "cloudtrail": (5 * MB, 40 * MB),
                         "vpcflow_parquet": (5 * MB, 40 * MB),
                         "securitylake": (5 * MB, 40 * MB)},
              "e2e_bytes": 16 * MB, "proc_objects": 4, "proc_bytes": 4 * MB,
              "small_objects": 300},
    "smoke": {"memory": {"vpcflow": (1 * MB, 3 * MB), "cloudtrail": (1 * MB, 3 * MB),
                         "vpcflow_parquet": (1 * MB, 3 * MB),
                         "securitylake": (1 * MB, 3 * MB)},
              "e2e_bytes": 1 * MB, "proc_objects": 2, "proc_bytes": 1 * MB,
              "small_objects": 30},
}
WARM_BYTES = 64 << 10  # the e2e child's untimed first object: one generated piece (~0.5-0.9 MB)
PACKAGES = ["orjson", "isal", "zlib-ng", "pyarrow", "azure-monitor-ingestion", "azure-core",
            "boto3", "moto", "azure-storage-queue", "azure-data-tables"]


def machine() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "packages": versions,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def bench_memory(rig: harness.Rig, sizes: dict[str, tuple[int, int]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fmt, (small, large) in sizes.items():
        row: dict[str, Any] = {}
        for label, size in (("100mb", small), ("1gb", large)):
            info = harness.put_generated(rig.s3, fmt, size)
            result = harness.run_child(rig.env, [rig.ref(info["key"])])
            obj = result["objects"][0]
            assert obj["outcome"] == "delivered" and obj["records_out"] == info["records"], \
                (fmt, obj, info)
            rig.s3.delete_object(Bucket=harness.BUCKET, Key=info["key"])
            row[f"rss_mb_{label}"] = result["rss_mb_peak"]
            row[f"seconds_{label}"] = obj["seconds"]
            row[f"raw_mb_{label}"] = round(info["raw_bytes"] / MB, 1)
            row[f"mb_per_s_{label}"] = round(info["raw_bytes"] / MB / obj["seconds"], 2)
            if "row_groups" in info:  # Security Lake: row groups of ~128 MB (harness)
                row[f"row_groups_{label}"] = info["row_groups"]
                row[f"stored_mb_{label}"] = round(info["stored_bytes"] / MB, 1)
            row["rss_mb_baseline"] = result["rss_mb_before"]
        row["ratio"] = round(row["rss_mb_1gb"] / row["rss_mb_100mb"], 2)
        out[fmt] = row
        print(f"memory {fmt}: {row}", flush=True)
    return out


def bench_e2e(rig: harness.Rig, size: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fmt in ("vpcflow", "cloudtrail"):
        info = harness.put_generated(rig.s3, fmt, size)
        ref = rig.ref(info["key"])
        warm_info = harness.put_generated(rig.s3, fmt, WARM_BYTES)  # one generated piece
        warm = warm_info["key"]
        cpu = harness.run_child(rig.env, [ref], cpu=True)["objects"][0]
        first = len(rig.stack.ingestion.requests)
        with harness.CPUMeter(rig.stack) as meter:
            # warm: a small object of the same format first, untimed, as a worker past its
            # first object (clients, connections, checkpoint table, token); the CPU path's
            # child fetches its bytes untimed too (E2E.md)
            whole = harness.run_child(rig.env, [ref], thread_cpu=True, warm=[rig.ref(warm)])
        e2e = whole["objects"][0]
        sent = [r for r in rig.stack.ingestion.requests[first:] if r.status == 204
                and "Health" not in r.stream][whole["warm_batches"]:]  # warm ones first
        assert e2e["records_out"] == cpu["records_out"] == info["records"], (cpu, e2e, info)
        for key in (info["key"], warm):
            rig.s3.delete_object(Bucket=harness.BUCKET, Key=key)
        out[fmt] = {"raw_mb": round(info["raw_bytes"] / MB, 1),
                    "warm_raw_mb": round(warm_info["raw_bytes"] / MB, 2),  # untimed, first
                    "cpu_seconds": cpu["seconds"], "e2e_seconds": e2e["seconds"],
                    "cpu_mb_per_s": round(info["raw_bytes"] / MB / cpu["seconds"], 2),
                    "e2e_mb_per_s": round(info["raw_bytes"] / MB / e2e["seconds"], 2),
                    "ratio_vs_cpu": round(cpu["seconds"] / e2e["seconds"], 2),
                    # CPU time the e2e process got (all its threads) over its wall time: below
                    # ~1 it waited for a core (moto, Azurite and the emulator share the machine)
                    "e2e_cpu_seconds_used": whole["cpu_seconds_used"],
                    # requests sent, and checkpoint saves while sending (GroupSaver: one save
                    # covers several accepted batches while parsing is the slower side)
                    "batches": e2e["batches"], "checkpoint_saves": e2e["checkpoint_saves"],
                    # per kind of thread of the e2e process: seconds on a core, and seconds
                    # runnable but waiting for one (the machine's other processes had it)
                    "e2e_threads": whole["thread_cpu_seconds"],
                    # CPU seconds during the e2e run (child start to exit): moto, Azurite,
                    # this process (the Logs Ingestion emulator: TLS, gunzip, JSON), and the
                    # whole machine (2 cores: 2 x wall is all there is; other users included)
                    "during_e2e_cpu_seconds": {**meter.used, "wall": round(meter.wall, 2)},
                    # for the DCR limits (2 GB/min, 12,000 requests/min): JSON sent per input
                    # byte, gzip on the wire, requests per GB of input
                    "json_out_per_in_byte": round(sum(r.uncompressed_size for r in sent)
                                                  / info["raw_bytes"], 3),
                    "wire_per_in_byte": round(sum(r.compressed_size for r in sent)
                                              / info["raw_bytes"], 3),
                    "requests_per_gb_in": round(len(sent) * (1 << 30) / info["raw_bytes"])}
        print(f"e2e {fmt}: {out[fmt]}", flush=True)
    out["ratio_vs_cpu"] = min(v["ratio_vs_cpu"] for v in out.values())
    out["emulator"] = rig.emulator_mode()  # what the emulator spent CPU on (see E2E.md)
    out["warm"] = ("each e2e child first processes a small object of the same format "
                   "(warm_raw_mb), untimed: a worker past its first object")
    # the CPU path's MB/s per format are per core: the throughput a worker process can reach
    return out


def bench_processes(rig: harness.Rig, n: int, size: int) -> dict[str, Any]:
    refs = []
    for _ in range(n):
        info = harness.put_generated(rig.s3, "vpcflow", size)
        refs.append(rig.ref(info["key"]))
    walls = {}
    for procs in (1, 2):
        start_at = time.time() + 6  # after every child has built its Connector
        children = [harness.start_child(rig.env, refs[i::procs], start_at=start_at)
                    for i in range(procs)]
        results = [harness.wait_child(c) for c in children]
        assert all(o["outcome"] == "delivered" for r in results for o in r["objects"])
        walls[procs] = max(r["ended_at"] for r in results) - start_at
    one, two = n / walls[1], n / walls[2]
    out = {"objects": n, "object_raw_mb": round(size / MB, 1),
           "objects_per_s_1": round(one, 3), "objects_per_s_2": round(two, 3),
           "ratio": round(two / one, 2)}
    print(f"processes: {out}", flush=True)
    return out


def bench_small_objects(rig: harness.Rig, n: int) -> dict[str, Any]:
    import gzip

    sys.path.insert(0, str(ROOT / "tests"))
    from sample_logs import guardduty

    refs = []
    for i in range(n):
        key, data, _ = guardduty(3)
        key = key.replace(".jsonl.gz", f"-{i}.jsonl.gz")
        rig.s3.put_object(Bucket=harness.BUCKET, Key=key, Body=data)
        refs.append(rig.ref(key))
    size = len(gzip.decompress(data))
    before = len(rig.stack.ingestion.requests)
    result = harness.run_child(rig.env, refs)  # health rows flushed by the buffer / at exit
    requests = len(rig.stack.ingestion.requests) - before
    assert all(o["outcome"] == "delivered" for o in result["objects"])
    out = {"objects": n, "object_bytes": size, "requests": requests,
           "requests_per_object": round(requests / n, 3),
           "objects_per_s": round(n / result["seconds"], 1)}
    print(f"small objects: {out}", flush=True)
    return out


def bench_cpu(quick: bool) -> dict[str, Any]:
    try:
        from benchmarks import cpu
    except ImportError:
        msg = ("benchmarks/cpu.py (the CPU path per format, branch perf-cpu) is not merged "
               "yet: formats/compression not measured")
        print(msg, flush=True)
        return {"note": msg}
    return cpu.run(quick)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes (< 3 min)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes (tests)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    ap.add_argument("--only", help="comma-separated sections to run")
    ap.add_argument("--formats", help="comma-separated formats of the memory section")
    args = ap.parse_args(argv)
    name = "smoke" if args.smoke else "quick" if args.quick else "full"
    profile = dict(PROFILES[name])
    if args.formats:
        profile["memory"] = {k: v for k, v in profile["memory"].items()
                             if k in args.formats.split(",")}
    only = set(args.only.split(",")) if args.only else None

    def wanted(section: str) -> bool:
        return only is None or section in only

    started = time.monotonic()
    results: dict[str, Any] = {"mode": name, "machine": machine(),
                               "sizes": {"memory_bytes": profile["memory"],
                                         "e2e_bytes": profile["e2e_bytes"],
                                         "note": "memory: rss_mb_100mb/rss_mb_1gb are the small "
                                                 "and large object of this mode (bytes of "
                                                 "uncompressed content in memory_bytes)"}}
    if wanted("cpu") and not args.smoke:
        results.update(bench_cpu(args.quick))
    with harness.Rig() as rig:
        if wanted("memory"):
            results["memory"] = bench_memory(rig, profile["memory"])
        if wanted("e2e"):
            results["e2e"] = bench_e2e(rig, profile["e2e_bytes"])
        if wanted("processes"):
            results["processes"] = bench_processes(rig, profile["proc_objects"],
                                                   profile["proc_bytes"])
        if wanted("small_objects"):
            results["small_objects"] = bench_small_objects(rig, profile["small_objects"])
        if wanted("poller"):
            from benchmarks import poller

            results["poller"] = poller.run(rig, quick=name != "full",
                                           smoke=name == "smoke")
            print(f"poller: {results['poller']}", flush=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out} in {results['seconds']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
