"""`make bench` in miniature (benchmarks/run.py --smoke): every section runs against the real
local stack and writes results.json with the documented structure. Structure and correctness
only (records delivered, requests counted), never timing: make bench measures."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_smoke_writes_every_section(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["mode"] == "smoke" and r["machine"]["cores"] >= 1 and r["machine"]["python"]
    for fmt in ("vpcflow", "cloudtrail", "vpcflow_parquet", "securitylake"):
        row = r["memory"][fmt]
        assert row["rss_mb_100mb"] > 0 and row["rss_mb_1gb"] > 0
        assert row["ratio"] == round(row["rss_mb_1gb"] / row["rss_mb_100mb"], 2)
    assert {"vpcflow", "cloudtrail", "ratio_vs_cpu"} <= set(r["e2e"])
    assert r["processes"]["ratio"] > 0 and r["processes"]["objects"] == 2
    # the health rows of 30 objects share one request (buffered, flushed at the child's exit)
    assert r["small_objects"]["requests"] == r["small_objects"]["objects"] + 1
    assert r["small_objects"]["requests_per_object"] <= 1.1
    assert r["poller"]["ratio"] > 0 and r["poller"]["rtt_ms"] == 30
