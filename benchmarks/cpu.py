"""CPU path per format, side by side in one run: ours, the floor and the SDK path.

  python -m benchmarks.cpu [--quick]

For each format one generated, realistic gzip object (``tests/sample_logs.py``; formats without
a generator repeat the records of their AWS sample fixture) goes through three paths, on one
core, with no network, on the same bytes, repetitions interleaved (best of N):

* **ours**: ``reader.TextSource(decompress(...))`` -> ``formats.detect`` -> the format's parser
  and mapper -> ``batching.batches`` -> ``Batch.gzipped()`` (the request bodies we send);
* **floor**: what any connector must at least do with those bytes: gunzip (the fastest
  inflater installed), ``orjson.loads`` per record (JSON formats; line formats: the line split
  into a dict of its fields, by the fastest of ``SPLITTERS`` that gives our parser's field
  values on every line of the object and of the format's AWS sample fixture: ``"GET / HTTP/1.1"``
  one field, not three), ``orjson.dumps`` per record, bodies of the same size joined and
  gzipped with the compressor and level we ship. No mapping, no validation. The earlier floor
  of the line formats (``str.split(" ")``, which cuts quoted fields apart and gives CloudFront's
  tab-separated lines as one field) is reported too: ``floor_split_mb_s``,
  ``ratio_vs_split_floor``;
* **sdk**: our reader, parser and mapper into a list, then ``LogsIngestionClient.upload(list)``
  (which serialises, chunks and gzips itself) over an ``HttpTransport`` of ours that discards
  each request and answers 204.

MB/s are of *uncompressed* input. ``run(quick)`` returns the dict that ``benchmarks/run.py``
puts in results.json; ``compression`` is the level x request-size table the shipped choice
(``batching.GZIP_LEVEL``, the ``MAX_BATCH_BYTES`` default) was made from; ``formats_memory``
the peak RSS of our path per format for a small and a 10x larger object, each streamed from a
file in a fresh interpreter (``memory``): flat in object size, every format.
"""
from __future__ import annotations

import argparse
import cProfile
import csv
import gzip
import io
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from isal import isal_zlib as _inflate_lib  # the floor inflates with the fastest there is

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import sample_logs  # noqa: E402

from shared import batching, formats  # noqa: E402
from shared.reader import TextSource, decompress  # noqa: E402

MAX_BYTES = 1_000_000
CHUNK = 256 * 1024  # S3 body chunks as the pipeline reads them


# ---- the objects -----------------------------------------------------------------------------

def _fixture(golden: str) -> tuple[Any, str]:
    """The golden case of an AWS sample fixture, and the fixture's text."""
    from golden.support import CASES
    case = next(c for c in CASES if c.golden == golden)
    data = case.file.read_bytes()
    return case, gzip.decompress(data).decode() if data[:2] == b"\x1f\x8b" else data.decode()


def _fixture_object(golden: str, n: int) -> tuple[str, bytes, int]:
    """An object of ``n`` records made by repeating the records of an AWS sample fixture."""
    case, text = _fixture(golden)
    if case.fmt == "securityhub":  # one multi-line JSON document: one compact line each
        records = [json.dumps(json.loads(text))]
        header: list[str] = []
    else:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        header = [ln for ln in lines if ln.startswith("#")]
        records = [ln for ln in lines if not ln.startswith("#")]
    records = [r for r in records if _gives_row(case.key, header + [r])]
    out = header + [records[i % len(records)] for i in range(n)]
    return case.key, gzip.compress(("\n".join(out) + "\n").encode()), n


def _gives_row(key: str, lines: list[str]) -> bool:
    try:
        return bool(list(_rows(key, ("\n".join(lines) + "\n").encode())))
    except formats.FormatError:
        return False


# name -> (builder(n), records for ~1 MB of uncompressed input, floor framing)
FORMATS: dict[str, tuple[Callable[[int], tuple[str, bytes, int]], int, str]] = {
    "cloudtrail": (sample_logs.cloudtrail, 730, "records"),
    "vpcflow": (sample_logs.vpcflow, 9300, "header_lines"),
    "guardduty": (sample_logs.guardduty, 1400, "json_lines"),
    "alb": (sample_logs.alb, 2000, "lines"),
    "waf": (sample_logs.waf, 640, "json_lines"),
    "s3access": (sample_logs.s3access, 2500, "lines"),
    "cloudwatch": (sample_logs.cloudwatch, 5000, "members"),
    "nlb": (lambda n: _fixture_object("nlb_access", n), 2800, "lines"),
    "elb-classic": (lambda n: _fixture_object("elb_classic_access", n), 3600, "lines"),
    "cloudfront": (lambda n: _fixture_object("cloudfront", n), 3300, "lines"),
    "route53": (lambda n: _fixture_object("route53_resolver", n), 2400, "json_lines"),
    "netfw-alert": (lambda n: _fixture_object("network_firewall_alert", n), 1700, "json_lines"),
    "netfw-flow": (lambda n: _fixture_object("network_firewall_flow", n), 2000, "json_lines"),
    "netfw-tls": (lambda n: _fixture_object("network_firewall_tls", n), 2800, "json_lines"),
    "securityhub": (lambda n: _fixture_object("securityhub_asff_00", n), 400, "json_lines"),
}
MAIN = ("cloudtrail", "vpcflow")
# line formats: the golden fixture whose lines the floor's split must also get right, and the
# fields our parser reads from a line (ELB and S3 access: split_fields; CloudFront: tabs)
LINE_FIXTURES = {"alb": "alb_access", "nlb": "nlb_access", "elb-classic": "elb_classic_access",
                 "s3access": "s3_server_access", "cloudfront": "cloudfront"}


def our_fields(name: str, line: str) -> list[str]:
    from shared.formats.base import split_fields
    return line.split("\t") if name == "cloudfront" else split_fields(line)


def build(name: str, mb: float) -> tuple[str, bytes, int]:
    builder, per_mb, _ = FORMATS[name]
    return builder(max(10, int(per_mb * mb)))


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i:i + CHUNK]


# ---- the three paths -------------------------------------------------------------------------

def _rows(key: str, data: bytes) -> Iterator[dict[str, Any]]:
    return _object_rows(key, _chunks(data))


def _object_rows(key: str, chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    from golden.support import declared_kind  # the "kinds" a source declares (provenance)
    text = TextSource(decompress(chunks))
    fmt = formats.detect(key, text.head, kind=declared_kind(key))
    ctx = formats.ObjectContext(source="bench", bucket="bench", key=key)
    for item in fmt.parse(text, ctx):
        if type(item) is dict:
            yield item


def ours(key: str, data: bytes) -> int:
    """Our path: records out (the gzip bodies are made and dropped)."""
    n = 0
    for b in batching.batches(enumerate(_rows(key, data)), MAX_BYTES):
        if isinstance(b, batching.Batch):
            b.gzipped()
            n += len(b)
    return n


def _gunzip(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        d = _inflate_lib.decompressobj(31)
        out.append(d.decompress(rest))
        rest = d.unused_data
    return b"".join(out)


# ---- the floor's line split: candidates, each (lines) -> iterator of field lists ------------

def _split_space(lines: list[str]) -> Iterator[list[str]]:
    for line in lines:
        yield line.split(" ")


def _split_tab(lines: list[str]) -> Iterator[list[str]]:
    for line in lines:
        yield line.split("\t")


def _split_csv(lines: list[str]) -> Iterator[list[str]]:
    return csv.reader(lines, delimiter=" ", quotechar='"')


_RX = re.compile(r'"([^"]*)"|\[([^\]]*)\]|([^ ]+)')


def _split_regex(lines: list[str]) -> Iterator[list[str]]:
    findall = _RX.findall
    for line in lines:
        yield [a or b or c for a, b, c in findall(line)]


def _split_quotes(lines: list[str]) -> Iterator[list[str]]:
    """str.split on quotes, then on spaces outside them (right when every quoted text is a
    whole field and the quotes are balanced)."""
    for line in lines:
        segs = line.split('"')
        fields = segs[0].split()
        for k in range(1, len(segs), 2):
            fields.append(segs[k])
            fields += segs[k + 1].split()
        yield fields


def _split_quotes_bracket(lines: list[str]) -> Iterator[list[str]]:
    """_split_quotes after one ``[bracketed]`` field (S3 access: the time). Its loop is
    written out again on purpose: a call per line would slow the floor it times."""
    for line in lines:
        i = line.find("[")
        if i >= 0:
            j = line.find("]", i)
            fields = line[:i].split()
            fields.append(line[i + 1:j])
            line = line[j + 1:]
        else:
            fields = []
        segs = line.split('"')
        fields += segs[0].split()
        for k in range(1, len(segs), 2):
            fields.append(segs[k])
            fields += segs[k + 1].split()
        yield fields


SPLITTERS: dict[str, Callable[[list[str]], Iterator[list[str]]]] = {
    "str.split(' ')": _split_space, "str.split(tab)": _split_tab, "csv": _split_csv,
    "re.findall": _split_regex, "quotes": _split_quotes, "quotes+bracket": _split_quotes_bracket}
OLD_SPLIT = "str.split(' ')"  # the floor of the earlier rounds
FLOOR_LINES = ("line formats: the floor's 'loads' is the fastest of SPLITTERS that gives our "
               "parser's field values (quoted and bracketed fields whole) on every line of the "
               "object and of the format's AWS sample fixture (floor_split names it, "
               "floor_split_us_per_line times each candidate); floor_split_mb_s / "
               "ratio_vs_split_floor: the earlier floor, str.split(' '), which cuts quoted "
               "fields apart (CloudFront: one field per line)")


def _record_lines(data: bytes) -> list[str]:
    return [ln for ln in _gunzip(data).decode().split("\n") if ln and ln[0] != "#"]


def _fixture_lines(name: str) -> list[str]:
    text = _fixture(LINE_FIXTURES[name])[1]
    return [ln for ln in text.splitlines() if ln.strip() and ln[0] != "#"]


def choose_splitter(name: str, data: bytes, repeat: int = 3) -> tuple[str, dict[str, Any]]:
    """The fastest splitter that gives our parser's fields on every line of the object and of
    the fixture; and per candidate its process-time microseconds per line, or "wrong"."""
    lines = _record_lines(data)
    check = lines + _fixture_lines(name)
    want = [our_fields(name, ln) for ln in check]
    table: dict[str, Any] = {}
    for label, fn in SPLITTERS.items():
        try:
            right = list(fn(check)) == want
        except (IndexError, ValueError, csv.Error):
            right = False
        if not right:
            table[label] = "wrong"
            continue
        best = float("inf")
        for _ in range(repeat):
            t = time.process_time()
            for _fields in fn(lines):
                pass
            best = min(best, time.process_time() - t)
        table[label] = round(best / max(1, len(lines)) * 1e6, 3)
    timed = {k: v for k, v in table.items() if v != "wrong"}
    if not timed:
        raise AssertionError(f"{name}: no floor splitter gives our fields: {table}")
    return min(timed, key=timed.__getitem__), table


def _floor_records(data: bytes, framing: str, split: str = OLD_SPLIT) -> Iterator[Any]:
    if framing == "members":  # one JSON document per gzip member (Firehose / CloudWatch)
        rest = data
        while rest:
            d = _inflate_lib.decompressobj(31)
            doc = orjson.loads(d.decompress(rest))
            rest = d.unused_data
            yield from doc["logEvents"]
        return
    raw = _gunzip(data)
    if framing == "records":
        yield from orjson.loads(raw)["Records"]
        return
    lines = raw.split(b"\n")
    if framing == "json_lines":
        for line in lines:
            if line:
                yield orjson.loads(line)
        return
    text = raw.decode()
    lines = text.split("\n")
    names = [f"f{i}" for i in range(64)]
    if framing == "header_lines":  # VPC Flow: str.split is its parser's split too
        names = lines[0].split(" ")
        lines = lines[1:]
        for line in lines:
            if line and line[0] != "#":
                yield dict(zip(names, line.split(" ")))
        return
    for fields in SPLITTERS[split]([ln for ln in lines if ln and ln[0] != "#"]):
        yield dict(zip(names, fields))


def floor(key: str, data: bytes, framing: str, split: str = OLD_SPLIT) -> int:
    """The floor: records out. Each row is copied into one bytearray body at once, as
    ``batching.batches`` does (a list of orjson's rows, each in a >= 4 KB buffer, then joined
    was ~2x slower per row)."""
    dumps, compress = orjson.dumps, batching.compress
    n, body = 0, bytearray(b"[")
    for rec in _floor_records(data, framing, split):
        row = dumps(rec)
        if len(body) + len(row) + 1 > MAX_BYTES and len(body) > 1:
            body[-1] = 0x5D  # the last "," closes the body
            compress(body)
            body = bytearray(b"[")
        body += row
        body += b","
        n += 1
    if len(body) > 1:
        body[-1] = 0x5D
        compress(body)
    return n


def _sdk_client():
    from azure.core.credentials import AccessToken
    from azure.core.pipeline.transport import HttpResponse, HttpTransport
    from azure.monitor.ingestion import LogsIngestionClient

    class _Answer(HttpResponse):
        def __init__(self, request):
            super().__init__(request, None)
            self.status_code, self.reason, self.headers = 204, "No Content", {}
            self.content_type = None

        def body(self) -> bytes:
            return b""

    class DiscardTransport(HttpTransport):
        """Takes each request, drops it and answers 204 (no network)."""

        requests = 0

        def __enter__(self):
            return self

        def __exit__(self, *args):
            pass

        def open(self):
            pass

        def close(self):
            pass

        def send(self, request, **kwargs):
            self.requests += 1
            assert request.headers.get("Content-Encoding") == "gzip" and request.body
            return _Answer(request)

    class Token:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("bench", int(time.time()) + 3600)

    transport = DiscardTransport()
    return LogsIngestionClient("https://bench.invalid", Token(), transport=transport,
                               retry_total=0), transport


_CLIENT: Any = None
_TRANSPORT: Any = None


def sdk_requests() -> int:
    """Requests the SDK path has handed to its transport so far."""
    return _TRANSPORT.requests if _TRANSPORT is not None else 0


def sdk(key: str, data: bytes) -> int:
    """Our parse and map, then the SDK's list upload: records out."""
    global _CLIENT, _TRANSPORT
    if _CLIENT is None:
        _CLIENT, _TRANSPORT = _sdk_client()
    rows = list(_rows(key, data))
    _CLIENT.upload(rule_id="dcr-bench", stream_name="Custom-Bench", logs=rows)
    return len(rows)


# ---- measuring -------------------------------------------------------------------------------

def _time(fn: Callable[[], int]) -> tuple[float, int]:
    """CPU seconds of this process (one core; on a shared machine wall time would also count
    the other processes' turns) and the path's result."""
    t = time.process_time()
    n = fn()
    return time.process_time() - t, n


def measure(name: str, mb: float, repeat: int) -> dict[str, Any]:
    key, data, _ = build(name, mb)
    framing = FORMATS[name][2]
    input_bytes = len(_gunzip(data))
    split, splitters = (choose_splitter(name, data) if framing == "lines"
                        else (OLD_SPLIT, {}))
    paths = {"ours": lambda: ours(key, data), "floor": lambda: floor(key, data, framing, split),
             "sdk": lambda: sdk(key, data)}
    if split != OLD_SPLIT:  # the earlier floor, for comparison
        paths["floor_old"] = lambda: floor(key, data, framing, OLD_SPLIT)
    best = {p: float("inf") for p in paths}
    counts: dict[str, int] = {}
    for _ in range(repeat):  # interleaved: a slow moment of the machine hits all three
        for p, fn in paths.items():
            secs, n = _time(fn)
            best[p] = min(best[p], secs)
            counts[p] = n
    if len(set(counts.values())) != 1:
        raise AssertionError(f"{name}: the paths disagree on the records: {counts}")
    mb_in = input_bytes / 1e6

    def rate(p: str) -> float:
        return mb_in / best[p]

    out = {"mb_s": round(rate("ours"), 2), "records_s": round(counts["ours"] / best["ours"]),
           "floor_mb_s": round(rate("floor"), 2), "sdk_mb_s": round(rate("sdk"), 2),
           "ratio_vs_floor": round(rate("ours") / rate("floor"), 3),
           "ratio_vs_sdk": round(rate("ours") / rate("sdk"), 3),
           "input_mb": round(mb_in, 2), "records": counts["ours"]}
    if framing in ("lines", "header_lines"):
        out["floor_split"] = split  # how the floor split a line (FLOOR_LINES)
        old = "floor_old" if "floor_old" in best else "floor"
        out["floor_split_mb_s"] = round(rate(old), 2)
        out["ratio_vs_split_floor"] = round(rate("ours") / rate(old), 3)
        if splitters:
            out["floor_split_us_per_line"] = splitters
    return out


def profile(name: str, mb: float = 4, top: int = 25) -> str:
    """cProfile of our path for one format (cumulative and own time), as text."""
    key, data, _ = build(name, mb)
    prof = cProfile.Profile()
    prof.enable()
    ours(key, data)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# ---- the compression table -------------------------------------------------------------------

def _compressors() -> dict[str, Callable[[bytes, int], bytes]]:
    out: dict[str, Callable[[bytes, int], bytes]] = {
        "zlib": lambda b, lv: zlib.compress(b, lv, 31)}
    out["isal"] = lambda b, lv: _inflate_lib.compress(b, lv, 31)
    try:  # optional, for the comparison only (pip install zlib-ng)
        from zlib_ng import zlib_ng
        out["zlib-ng"] = lambda b, lv: zlib_ng.compress(b, lv, 31)
    except ImportError:  # pragma: no cover
        pass
    return out


LEVELS = {"zlib": (1, 6), "isal": (0, 1, 2, 3), "zlib-ng": (1, 6)}
SIZES = (250_000, 500_000, 1_000_000)


def compression_table(mb: float, repeat: int) -> dict[str, Any]:
    """gzip library x level x request size on our encoded rows of CloudTrail and VPC Flow:
    MB/s (of uncompressed body), compression ratio, requests per GB of input."""
    table = []
    for name in MAIN:
        key, data, _ = build(name, mb)
        input_bytes = len(_gunzip(data))
        rows = [batching.encode(r) for r in _rows(key, data)]
        for size in SIZES:
            bodies, body, used = [], [], 2
            for r in rows:
                if used + len(r) + 1 > size and body:
                    bodies.append(b"[" + b",".join(body) + b"]")
                    body, used = [], 2
                body.append(r)
                used += len(r) + 1
            if body:
                bodies.append(b"[" + b",".join(body) + b"]")
            total = sum(len(b) for b in bodies)
            for lib, fn in _compressors().items():
                for level in LEVELS[lib]:
                    best, out = float("inf"), 0
                    for _ in range(repeat):
                        t = time.perf_counter()
                        out = sum(len(fn(b, level)) for b in bodies)
                        best = min(best, time.perf_counter() - t)
                    table.append({"format": name, "lib": lib, "level": level,
                                  "request_bytes": size,
                                  "mb_s": round(total / best / 1e6, 1),
                                  "ratio": round(total / out, 2),
                                  "requests_per_gb": round(len(bodies) * 1e9 / input_bytes),
                                  "max_gzip_bytes": max(len(fn(b, level)) for b in bodies)})
    return {"table": table, "choice": {
        "lib": batching.GZIP_LIB, "level": batching.GZIP_LEVEL, "request_bytes": MAX_BYTES,
        "why": batching.GZIP_WHY}}


# ---- memory per format -------------------------------------------------------------------

def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory_child(key: str, path: str) -> dict[str, Any]:
    """Our path over the gzip object in ``path``, read in S3-sized chunks (never whole): the
    peak RSS of this interpreter before and after, and the records sent."""
    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    before, n = _peak_rss_mb(), 0
    for b in batching.batches(enumerate(_object_rows(key, chunks())), MAX_BYTES):
        if isinstance(b, batching.Batch):
            b.gzipped()
            n += len(b)
    return {"rss_mb_before": round(before, 1), "rss_mb_peak": round(_peak_rss_mb(), 1),
            "records": n}


def memory(small_mb: float, large_mb: float, names: Iterator[str] | None = None
           ) -> dict[str, Any]:
    """Per format: peak RSS of ``memory_child`` (a fresh interpreter each) for an object of
    ``small_mb`` and one of ``large_mb`` (uncompressed), and large over small."""
    out: dict[str, Any] = {}
    for name in names or FORMATS:
        row: dict[str, Any] = {}
        for label, mb in (("small", small_mb), ("large", large_mb)):
            key, data, _ = build(name, mb)
            raw = len(_gunzip(data))
            with tempfile.NamedTemporaryFile(suffix=".gz", delete=False) as f:
                f.write(data)
            del data
            try:
                proc = subprocess.run([sys.executable, "-m", "benchmarks.cpu", "--memory-child",
                                       key, f.name], cwd=ROOT, capture_output=True, text=True,
                                      check=True)
            finally:
                os.unlink(f.name)
            child = json.loads(proc.stdout.strip().splitlines()[-1])
            row[f"raw_mb_{label}"] = round(raw / (1 << 20), 1)
            row[f"rss_mb_{label}"] = child["rss_mb_peak"]
            row[f"records_{label}"] = child["records"]
            row["rss_mb_baseline"] = child["rss_mb_before"]
        row["ratio"] = round(row["rss_mb_large"] / row["rss_mb_small"], 2)
        out[name] = row
        print(f"formats_memory {name}: {row}", flush=True)
    return out


# ---- entry points ----------------------------------------------------------------------------

def run(quick: bool = False) -> dict[str, Any]:
    mb, repeat = (1.5, 3) if quick else (8.0, 5)
    main_mb = 3.0 if quick else 16.0
    out: dict[str, Any] = {"formats": {}}
    for name in FORMATS:
        out["formats"][name] = measure(name, main_mb if name in MAIN else mb, repeat)
    out["floor_lines"] = FLOOR_LINES
    out["compression"] = compression_table(1.0 if quick else 4.0, 2 if quick else 3)
    out["formats_memory"] = memory(*((2.0, 20.0) if quick else (20.0, 200.0)))
    return out


def _print(result: dict[str, Any]) -> None:
    print("| format | input MB | ours MB/s | records/s | floor MB/s | sdk MB/s | vs floor | "
          "vs sdk | floor split | str.split floor MB/s | vs str.split floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in result["formats"].items():
        print(f"| {name} | {r['input_mb']} | {r['mb_s']} | {r['records_s']:,} | "
              f"{r['floor_mb_s']} | {r['sdk_mb_s']} | {r['ratio_vs_floor']} | "
              f"{r['ratio_vs_sdk']} | {r.get('floor_split', 'orjson')} | "
              f"{r.get('floor_split_mb_s', '')} | {r.get('ratio_vs_split_floor', '')} |")
    print()
    print("| format | lib | level | request bytes | MB/s | ratio | requests/GB | max gzip |")
    print("|---|---|---|---|---|---|---|---|")
    for r in result["compression"]["table"]:
        print(f"| {r['format']} | {r['lib']} | {r['level']} | {r['request_bytes']:,} | "
              f"{r['mb_s']} | {r['ratio']} | {r['requests_per_gb']:,} | "
              f"{r['max_gzip_bytes']:,} |")
    print("\nchoice:", result["compression"]["choice"])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="small objects, fewer repetitions")
    ap.add_argument("--profile", metavar="FORMAT", help="print a cProfile of our path")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--only", metavar="FORMAT", action="append", help="measure these only")
    ap.add_argument("--memory-child", nargs=2, metavar=("KEY", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child)))
        return
    if args.profile:
        print(profile(args.profile))
        return
    if args.only:
        mb, repeat = (3.0, 3) if args.quick else (16.0, 5)
        result = {"formats": {n: measure(n, mb, repeat) for n in args.only},
                  "floor_lines": FLOOR_LINES, "compression": {"table": [], "choice": {}}}
    else:
        result = run(args.quick)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        _print(result)


if __name__ == "__main__":
    main()
