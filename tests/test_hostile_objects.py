"""Hostile objects end to end (issue 8): real objects in moto S3 -> SQS -> timer -> Azure queue
-> queue function (host semantics) -> Logs Ingestion emulator. Every case is one object in one
shared world; each test below checks one case's outcome: delivered (with its record count),
dead-lettered (stage, kind, reason) or records rejected alone. The README's "Bad input" table
lists the same cases."""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
import zstandard
from sample_logs import cloudtrail, guardduty, vpcflow

GD, RAW = "Custom-AWSGuardDuty", "Custom-AWSS3Raw"
HEALTH = "Custom-AWSS3ConnectorHealth"
GD_PREFIX = "AWSLogs/123456789012/GuardDuty/us-east-1/2026/12/01/"


def gd_lines(n: int) -> list[str]:
    return gzip.decompress(guardduty(n)[1]).decode().splitlines()


def gd_text(n: int) -> bytes:
    return ("\n".join(gd_lines(n)) + "\n").encode()


def vpc_text(n: int) -> bytes:
    return gzip.decompress(vpcflow(n)[1])


def ct_text(n: int) -> bytes:
    return gzip.decompress(cloudtrail(n)[1])


def _inject(text: bytes, record: bytes) -> bytes:
    """``text`` (a CloudTrail log file) with ``record`` first in its Records array."""
    start = text.index(b"[", text.index(b'"Records"')) + 1
    return text[:start] + record + text[start:]


CT_PREFIX = "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/01/"


def nested(depth: int) -> str:
    return '{"schemaVersion":"2.0","accountId":"1","type":"x","severity":1,"id":"deep",' \
           '"updatedAt":"2026-12-01T00:00:00Z","service":' + "[" * depth + "]" * depth + "}"


def zipped(members: dict[str, bytes], *, encrypt: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if name.endswith("/"):
                z.writestr(zipfile.ZipInfo(name), b"")
                continue
            z.writestr(name, data)
    out = buf.getvalue()
    if encrypt:  # mark every entry encrypted (flag bit 0), as a password-protected zip is
        raw = bytearray(out)
        for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            i = raw.find(sig)
            while i >= 0:
                raw[i + at] |= 0x1
                i = raw.find(sig, i + 4)
        out = bytes(raw)
    return out


def tarred(members: dict[str, bytes], *, extras: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        if extras:
            d = tarfile.TarInfo("logs/")
            d.type = tarfile.DIRTYPE
            t.addfile(d)
            link = tarfile.TarInfo("logs/latest")
            link.type, link.linkname = tarfile.SYMTYPE, "a.log"
            t.addfile(link)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Case:
    key: str
    data: bytes
    outcome: str            # the health row's Outcome
    records_out: int        # records accepted by the Logs Ingestion API
    poison: tuple[tuple[str, str, str], ...] = ()  # (stage, kind, reason substring) each


_REF_TIME = "2026-12-01T00:00:00Z"


def _parquet_flows() -> bytes:
    """A small VPC Flow Logs Parquet file (pyarrow writes it)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 500
    table = pa.table({"version": [2] * n, "account_id": ["123456789012"] * n,
                      "interface_id": ["eni-1"] * n, "srcaddr": ["10.0.0.1"] * n,
                      "dstaddr": ["10.0.0.2"] * n, "srcport": list(range(n)),
                      "dstport": [443] * n, "protocol": [6] * n, "packets": [1] * n,
                      "bytes": [10] * n, "start": [1764547200] * n, "end": [1764547260] * n,
                      "action": ["ACCEPT"] * n, "log_status": ["OK"] * n})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _cases() -> dict[str, Case]:
    five = gd_text(5)
    second_header = (b"version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                     b"packets bytes start end action log-status\n"
                     b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 10 1764547200 1764547260 "
                     b"ACCEPT OK\n"
                     b"dstport srcport start end interface-id srcaddr dstaddr action "
                     b"log-status\n"
                     b"443 5555 1764547200 1764547260 eni-2 10.0.0.3 10.0.0.4 REJECT OK\n")
    truncated = gzip.compress(five)[:-40]  # cut inside the last gzip block / trailer
    got = zlib.decompressobj(wbits=31).decompress(truncated)
    complete = got.count(b"\n")  # whole lines before the cut: these are delivered
    text_lines = b"".join(b"line %d of an application log\n" % i for i in range(3000))
    return {
        # ---- A: bombs --------------------------------------------------------------------
        "gzip_zero_bomb_in_raw": Case(
            "app/bomb.log.gz", gzip.compress(b"\0" * (48 << 20), 9), "dead_lettered", 0,
            (("read", "object_read", "unknown binary content"),)),
        "gzip_of_gzip_bomb": Case(
            "app/bomb2.log.gz", gzip.compress(gzip.compress(b"\n" * (64 << 20), 9), 9),
            "dead_lettered", 0, (("read", "decompression_limit", "expansion ratio"),)),
        "zip_bomb_member": Case(
            "app/bomb.zip", zipped({"a.log.gz": gzip.compress(b"\n" * (64 << 20), 9)}),
            "dead_lettered", 0, (("read", "decompression_limit", "MAX_EXPANSION_RATIO"),)),
        "tar_gz_bomb_member": Case(
            "app/bomb.tgz", gzip.compress(tarred({"a.log.gz": gzip.compress(
                b"\n" * (64 << 20), 9)}), 9),
            "dead_lettered", 0, (("read", "decompression_limit", "stored bytes"),)),
        # ---- B: compressions and containers ----------------------------------------------
        "plain_text": Case(GD_PREFIX + "plain.jsonl", five, "delivered", 5),
        "gzip": Case(GD_PREFIX + "a.jsonl.gz", gzip.compress(five), "delivered", 5),
        "gzip_in_gzip": Case(GD_PREFIX + "b.jsonl.gz.gz", gzip.compress(gzip.compress(five)),
                             "delivered", 5),
        "gzip_three_deep": Case(GD_PREFIX + "c.gz", gzip.compress(gzip.compress(
            gzip.compress(five))), "delivered", 5),
        "gzip_four_deep": Case(GD_PREFIX + "d.gz", gzip.compress(gzip.compress(gzip.compress(
            gzip.compress(five)))), "dead_lettered", 0,
            (("read", "object_read", "nested deeper than 3"),)),
        "multi_member_gzip": Case(GD_PREFIX + "e.gz", gzip.compress(gd_text(2))
                                  + gzip.compress(gd_text(3)), "delivered", 5),
        "gzip_zero_padding": Case(GD_PREFIX + "f.gz", gzip.compress(five) + b"\0" * 4096,
                                  "delivered", 5),
        "zstd": Case(GD_PREFIX + "g.jsonl.zst", zstandard.ZstdCompressor().compress(five),
                     "delivered", 5),
        "zstd_two_frames": Case(GD_PREFIX + "g2.zst",
                                zstandard.ZstdCompressor().compress(gd_text(2))
                                + zstandard.ZstdCompressor().compress(gd_text(3)),
                                "delivered", 5),
        "bzip2": Case(GD_PREFIX + "h.jsonl.bz2", bz2.compress(five), "delivered", 5),
        "xz": Case(GD_PREFIX + "i.jsonl.xz", lzma.compress(five), "delivered", 5),
        "zip_of_two_logs": Case(GD_PREFIX + "j.zip", zipped({"a.jsonl": gd_text(2),
                                                            "b.jsonl": gd_text(3)}),
                                "delivered", 5),
        "zip_with_dir_and_gzip_member": Case(
            GD_PREFIX + "k.zip", zipped({"logs/": b"", "logs/a.jsonl.gz": gzip.compress(five),
                                         "logs/b.jsonl": gd_text(1)}), "delivered", 6),
        "zip_member_without_final_newline": Case(
            GD_PREFIX + "k2.zip", zipped({"a": gd_text(2).rstrip(b"\n"), "b": gd_text(2)}),
            "delivered", 4),
        "tar_gz_of_vpc_logs_with_dirs_and_links": Case(
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/01/"
            "123456789012_vpcflowlogs_us-east-1_fl-0a_20261201T0000Z_tar1.log.gz",
            gzip.compress(tarred({"logs/a.log": vpc_text(4), "logs/b.log": vpc_text(6)},
                                 extras=True)), "delivered", 10),
        "zip_of_three_cloudtrail_files": Case(
            CT_PREFIX + "ct.zip", zipped({"a.json.gz": gzip.compress(ct_text(3)),
                                          "b.json": ct_text(4), "c.json": ct_text(2)}),
            "delivered", 9),
        "tar_gz_of_cloudtrail_files": Case(
            CT_PREFIX + "ct.tar.gz", gzip.compress(tarred({"a.json": ct_text(5),
                                                           "b.json": ct_text(1)})),
            "delivered", 6),
        "cloudtrail_record_nested_5000_deep": Case(
            CT_PREFIX + "ct-deep.json", _inject(ct_text(2), b'{"eventVersion": "1.08", '
                b'"x": "a]\\"}", "requestParameters": ' + b"[" * 5000 + b"]" * 5000 + b"}, "),
            "partial", 2, (("parse", "bad_record", "nested too deeply"),)),
        "cloudtrail_with_junk_after_the_document": Case(
            CT_PREFIX + "ct-junk.json", ct_text(3) + b"\nTRAILING JUNK\n", "dead_lettered", 3,
            (("parse", "bad_format", "unexpected content after the 'Records' array"),)),
        "plain_tar": Case(GD_PREFIX + "l.tar", tarred({"a.jsonl": five}), "delivered", 5),
        "encrypted_zip": Case(GD_PREFIX + "m.zip", zipped({"a.jsonl": five}, encrypt=True),
                              "dead_lettered", 0,
                              (("read", "object_read", "encrypted zip"),)),
        "7z": Case("app/x.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + os.urandom(200),
                   "dead_lettered", 0,
                   (("read", "object_read", "unsupported compression/container: 7z"),)),
        "rar": Case("app/x.rar", b"Rar!\x1a\x07\x01\x00" + os.urandom(200), "dead_lettered", 0,
                    (("read", "object_read", "unsupported compression/container: RAR"),)),
        "lz4": Case("app/x.lz4", b"\x04\x22\x4d\x18" + os.urandom(200), "dead_lettered", 0,
                    (("read", "object_read", "unsupported compression/container: LZ4"),)),
        "snappy": Case("app/x.sz", b"\xff\x06\x00\x00sNaPpY" + os.urandom(200),
                       "dead_lettered", 0,
                       (("read", "object_read", "unsupported compression/container: Snappy"),)),
        "random_binary_in_raw": Case(
            "app/blob.bin", bytes(range(256)) * 64, "dead_lettered", 0,
            (("read", "object_read", "unknown binary content"),)),
        "truncated_gzip_parquet": Case(  # the read fault, not "cannot be read as Parquet"
            "app/flows.parquet.gz", gzip.compress(_parquet_flows())[:-40], "dead_lettered", 0,
            (("read", "object_read", "truncated"),)),
        "corrupt_parquet": Case(  # Parquet is VPC Flow by content: tried, refused with reason
            "app/table.parquet", b"PAR1" + b"\x15\x00\x15" * 300 + b"PAR1", "dead_lettered", 0,
            (("parse", "bad_format", "Parquet object cannot be read"),)),
        "binary_line_in_text_after_the_head": Case(
            "app/mixed.log", text_lines + b"\x00\x01\x02\x03\x00\xff\xfe\n" + b"last\n",
            "partial", 3001, (("parse", "bad_record", "binary data"),)),
        "latin1_text_stays_text": Case(
            "app/latin1.log", "Connexion r\u00e9ussie pour l'utilisateur admin depuis 10.0.0.1\n"
            "Session ferm\u00e9e apr\u00e8s 30 minutes\n".encode("latin-1"), "delivered", 2),
        # ---- C: one bad spot ---------------------------------------------------------------
        "jsonl_first_line_invalid": Case(
            GD_PREFIX + "n.jsonl.gz", gzip.compress(b"{not json at all\n" + five), "partial", 5,
            (("parse", "bad_record", "not valid JSON"),)),
        "jsonl_only_garbage": Case(
            GD_PREFIX + "o.jsonl", b"garbage one\n{garbage two\ngarbage three\n",
            "dead_lettered", 0, (("parse", "bad_format", "content does not match"),)),
        "small_truncated_gzip": Case(
            GD_PREFIX + "p.jsonl.gz", truncated, "dead_lettered", complete,
            (("read", "object_read", "truncated"),)),
        "gzip_trailing_garbage": Case(
            GD_PREFIX + "q.jsonl.gz", gzip.compress(five) + b"this is not gzip at all",
            "dead_lettered", 5, (("read", "object_read", "trailing data"),)),
        "record_nested_5000_deep": Case(
            GD_PREFIX + "r.jsonl", (nested(5000) + "\n").encode() + gd_text(3), "partial", 3,
            (("parse", "bad_record", "nested too deeply"),)),
        # nested just under the decoder's limit: decoded, but too deep to serialise again
        **{f"record_nested_{d}_deep": Case(
            GD_PREFIX + f"deep{d}.jsonl", (nested(d) + "\n").encode() + gd_text(3), "partial", 3,
            (("*", "*", ""),)) for d in (985, 990, 995, 998)},
        "vpc_second_header_other_order": Case(
            "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/01/"
            "123456789012_vpcflowlogs_us-east-1_fl-0b_20261201T0000Z_hdr2.log",
            second_header, "delivered", 2),
        # ---- D: lines ---------------------------------------------------------------------
        "line_over_1mib_without_newline": Case(
            "app/long.log", b"ok line\n" + b"x" * (3 << 20), "partial", 1,
            (("parse", "bad_record", "longer than 1048576"),)),
        "line_over_1mib_in_the_middle": Case(
            "app/long2.log", b"one\n" + b"y" * (2 << 20) + b"\ntwo\n", "partial", 2,
            (("parse", "bad_record", "line 2"),)),
    }


CASES = _cases()


@pytest.fixture(scope="module")
def outcome(stack: Any) -> dict[str, Any]:
    """Run every case through the pipeline once; per key: final health row, poison items."""
    from conftest import World

    with pytest.MonkeyPatch.context() as mp:
        world = World(stack, mp)
        src = world.add_source("hostile", rawPrefixes=[""])  # the raw cases opt in
        for case in CASES.values():
            world.put(src, case.key, case.data)
        world.configure()
        host = world.host()
        host.run_timer()
        run = host.drain(max_seconds=300)
        rows: dict[str, dict[str, Any]] = {}
        attempts: dict[str, list[str]] = {}
        for r in world.accepted(HEALTH):
            if r["Kind"] == "object":
                # a second work item of a settled object (a notification the poller received
                # twice: SQS is at least once) is its own "duplicate" row; the object's outcome
                # is the row of the copy that did the work
                if r["Outcome"] != "duplicate" or r["S3Key"] not in rows:
                    rows[r["S3Key"]] = r
                attempts.setdefault(r["S3Key"], []).append(r["Outcome"])
        poison: dict[str, list[dict[str, Any]]] = {}
        for item in host.poison_items_all():
            poison.setdefault((item.get("object") or {}).get("key", "?"), []).append(item)
        raw_keys = {r.get("S3Key") for r in world.accepted(RAW)}
        from shared import pipeline

        pipeline.reset_connector()
        yield {"rows": rows, "poison": poison, "run": run, "raw_keys": raw_keys,
               "attempts": attempts, "world": world}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_object(outcome: dict[str, Any], name: str) -> None:
    case = CASES[name]
    row = outcome["rows"].get(case.key)
    assert row is not None, f"no health row for {name}"
    assert row["Outcome"] == case.outcome, row.get("Error")
    assert row.get("RecordsOut", 0) == case.records_out, row
    items = outcome["poison"].get(case.key, [])
    if case.poison == (("*", "*", ""),):  # one record alone, whichever stage caught it
        [item] = items
        assert (item["stage"], item["kind"]) in (("parse", "bad_record"),
                                                  ("deliver", "record_too_large"))
        assert item["records"]["count"] == 1 and "deep" in item["reason"] or \
            "serialised" in item["reason"]
        assert outcome["attempts"][case.key] == [case.outcome]
        return
    got = sorted((i["stage"], i["kind"]) for i in items)
    assert got == sorted((s, k) for s, k, _ in case.poison), items
    for stage, kind, text in case.poison:
        [item] = [i for i in items if (i["stage"], i["kind"]) == (stage, kind)]
        assert text in item["reason"], item["reason"]
    # fatal input is never retried: one attempt, one health row
    assert outcome["attempts"][case.key] == [case.outcome]
    if case.outcome == "dead_lettered" and case.records_out == 0:
        assert case.key not in outcome["raw_keys"]  # binary bytes never become raw rows


def test_no_work_item_failed_or_was_moved_by_the_host(outcome: dict[str, Any]) -> None:
    assert outcome["run"].failed == 0 and outcome["run"].moved_to_poison == 0


def test_bomb_reason_carries_both_numbers(outcome: dict[str, Any]) -> None:
    case = CASES["gzip_of_gzip_bomb"]
    [item] = outcome["poison"][case.key]
    reason = item["reason"]
    assert "x exceeds the cap of 1000x" in reason
    assert f"bytes from {len(case.data)} stored bytes" in reason  # both numbers


def test_second_vpc_header_maps_its_own_field_order(outcome: dict[str, Any]) -> None:
    rows = [r for r in outcome["world"].accepted("Custom-AWSVPCFlow") if r.get("InterfaceId")
            in ("eni-1", "eni-2")]
    by_eni = {r["InterfaceId"]: r for r in rows}
    assert by_eni["eni-2"]["DstPort"] == 443 and by_eni["eni-2"]["SrcPort"] == 5555
    assert by_eni["eni-2"]["Action"] == "REJECT" and by_eni["eni-1"]["DstPort"] == 2


def test_deep_record_is_one_rejected_record_with_its_line(outcome: dict[str, Any]) -> None:
    [item] = outcome["poison"][CASES["record_nested_5000_deep"].key]
    assert item["records"]["count"] == 1 and item["records"]["lines"] == [1]


def test_long_line_envelope_names_the_line_and_its_length(outcome: dict[str, Any]) -> None:
    [item] = outcome["poison"][CASES["line_over_1mib_without_newline"].key]
    assert item["records"]["lines"] == [2] and str(3 << 20) in item["reason"]
    assert len(json.dumps(item)) < 64 * 1024


def test_the_readme_bad_input_table_lists_every_case() -> None:
    from pathlib import Path

    from test_hostile_notifications import BAD_RECORDS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Bad input: every hostile case covered", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) >= 40
    ids = set(re.findall(r"`([a-z0-9_]+)`", section))
    missing = [name for name in list(CASES) + list(BAD_RECORDS) if name not in ids and not (
        name.startswith("record_nested_9") and "record_nested_985_deep" in ids)]
    assert missing == []
