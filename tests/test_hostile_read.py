"""Reading from S3 under hostile conditions: integrity checks (ChecksumMode=ENABLED, checksums
and MD5 ETags verified while streaming), the decompressed-bytes cap, and the memory bounds of
the reader and the rejected-record bookkeeping."""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tracemalloc
import zlib
from typing import Any

import boto3
import crc32c
import pytest
from botocore.response import StreamingBody
from sample_logs import guardduty

from shared.decompress import OUT_BYTES, Limits, decompress
from shared.errors import DecompressionLimitError, IntegrityError, ObjectReadError
from shared.notifications import ObjectRef
from shared.objects import ObjectStream, choose_check
from shared.reader import MAX_LINE_CHARS, TextSource

GD = "Custom-AWSGuardDuty"
HEALTH = "Custom-AWSS3ConnectorHealth"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def declaring_client(algorithm: str) -> Any:
    """An S3 client that sends a checksum value we choose, declared as S3's SDKs declare it
    (x-amz-sdk-checksum-algorithm), so the object is stored with that value as its checksum."""
    client = boto3.client("s3", region_name="us-east-1")

    def declare(request: Any, **_: Any) -> None:
        request.headers["x-amz-sdk-checksum-algorithm"] = algorithm
    client.meta.events.register("before-sign.s3.PutObject", declare)
    return client


def object_rows(world: Any) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in world.accepted(HEALTH):
        if r["Kind"] == "object" and r["Outcome"] != "duplicate":  # moto may notify twice
            rows.setdefault(r["S3Key"], []).append(r)
    return rows


def test_every_integrity_check_runs_while_streaming_and_a_mismatch_is_dead_lettered(world):
    src = world.add_source("integrity")
    bucket = src["_bucket"]
    keys: dict[str, str] = {}

    def put(name: str, **kw: Any) -> bytes:
        key, data, _ = guardduty(2)
        keys[name] = key
        kw.pop("client", world.s3).put_object(Bucket=bucket, Key=key, Body=data, **kw)
        return data

    put("crc32", ChecksumAlgorithm="CRC32")
    put("sha1", ChecksumAlgorithm="SHA1")
    put("sha256", ChecksumAlgorithm="SHA256")
    put("plain")
    key, data, _ = guardduty(2)
    keys["crc32c"] = key
    declaring_client("CRC32C").put_object(Bucket=bucket, Key=key, Body=data,
                                          ChecksumCRC32C=b64(crc32c.crc32c(data).to_bytes(4,
                                                                                     "big")))
    key, data, _ = guardduty(2)
    keys["crc32c_wrong"] = key
    declaring_client("CRC32C").put_object(Bucket=bucket, Key=key, Body=data,
                                          ChecksumCRC32C="AAAAAA==")
    key, data, _ = guardduty(2)
    keys["sha256_wrong"] = key
    declaring_client("SHA256").put_object(Bucket=bucket, Key=key, Body=data,
                                          ChecksumSHA256=b64(hashlib.sha256(b"other").digest()))
    # a multipart object: its checksum is composite (-N), its ETag not an MD5 of the content
    key, data, _ = guardduty(2)
    keys["multipart"] = key
    body = gzip.decompress(data) + b"\n" * (5 << 20)  # part 1 must be >= 5 MiB
    mp = world.s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    parts = []
    for n, piece in enumerate((body[:5 << 20], body[5 << 20:] + b"\n"), start=1):
        p = world.s3.upload_part(Bucket=bucket, Key=key, UploadId=mp["UploadId"],
                                 PartNumber=n, Body=piece, ChecksumAlgorithm="SHA256")
        parts.append({"ETag": p["ETag"], "PartNumber": n, "ChecksumSHA256": p["ChecksumSHA256"]})
    world.s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=mp["UploadId"],
                                       MultipartUpload={"Parts": parts})
    world.configure()
    host = world.host()
    host.run_timer()
    run = host.drain()
    rows = object_rows(world)
    assert rows[keys["multipart"]][-1]["Outcome"] == "delivered", rows[keys["multipart"]]
    check = {name: rows[key][-1].get("IntegrityCheck") for name, key in keys.items()}
    assert check == {"crc32": "crc32 (sdk)", "sha1": "sha1 (sdk)", "sha256": "sha256 (sdk)",
                     "plain": "md5-etag", "crc32c": "crc32c", "crc32c_wrong": "crc32c",
                     "sha256_wrong": "sha256 (sdk)", "multipart": "none:multipart"}
    good = ("crc32", "sha1", "sha256", "plain", "crc32c", "multipart")
    assert all(rows[keys[n]][-1]["Outcome"] == "delivered" for n in good)
    # a mismatch is retried on every attempt, then dead-lettered as `integrity` with both values
    poison = {i["object"]["key"]: i for i in host.poison_items_all()}
    for name in ("crc32c_wrong", "sha256_wrong"):
        outcomes = [r["Outcome"] for r in rows[keys[name]]]
        assert outcomes == ["retrying"] * (host.max_dequeue - 1) + ["dead_lettered"]
        item = poison[keys[name]]
        assert (item["kind"], item["stage"], item["attempts"]) == ("integrity", "read",
                                                                   host.max_dequeue)
        assert "mismatch" in item["reason"]
    assert "S3 says AAAAAA==" in poison[keys["crc32c_wrong"]]["reason"]
    assert b64(hashlib.sha256(b"other").digest()) in poison[keys["sha256_wrong"]]["reason"]
    assert set(poison) == {keys["crc32c_wrong"], keys["sha256_wrong"]}
    assert run.moved_to_poison == 0  # our envelope, never the host's bare item


# ---- unit: the MD5 ETag path (botocore's own StreamingBody over bytes) -------------------

REF = ObjectRef(source="s", bucket="bkt", key="AWSLogs/a.log")


def stream_of(data: bytes, **resp: Any) -> ObjectStream:
    resp["Body"] = StreamingBody(io.BytesIO(data), len(data))
    integrity, check = choose_check(resp)
    return ObjectStream(resp["Body"], REF, integrity=integrity, check=check)


def test_an_md5_etag_is_checked_and_a_mismatch_names_both_values():
    data = b"line\n" * 1000
    good = stream_of(data, ETag=f'"{hashlib.md5(data).hexdigest()}"')
    assert good.integrity == "md5-etag" and b"".join(good) == data
    bad = stream_of(data, ETag='"0123456789abcdef0123456789abcdef"')
    with pytest.raises(IntegrityError) as err:
        b"".join(bad)
    assert "0123456789abcdef0123456789abcdef" in err.value.message
    assert hashlib.md5(data).hexdigest() in err.value.message


@pytest.mark.parametrize("resp, expected", [
    ({"ETag": '"0123456789abcdef0123456789abcdef"', "ServerSideEncryption": "aws:kms"},
     "none:kms"),
    ({"ETag": '"0123456789abcdef0123456789abcdef"', "SSECustomerAlgorithm": "AES256"},
     "none:kms"),
    ({"ETag": '"0123456789abcdef0123456789abcdef-3"'}, "none:multipart"),
    ({"ETag": '"0123456789abcdef0123456789abcdef"', "ServerSideEncryption": "AES256"},
     "md5-etag"),
    ({"ETag": '"abc"', "ChecksumCRC32C": "AAAAAA==-4"}, "none:multipart"),
    ({"ETag": '"abc"', "ChecksumCRC32C": "AAAAAA==",
      "ResponseMetadata": {"HTTPHeaders": {"x-amz-checksum-type": "COMPOSITE"}}},
     "none:multipart"),
    ({"ETag": '"abc"', "ChecksumCRC32C": "AAAAAA=="}, "crc32c"),
    ({}, "none"),
])
def test_which_check_applies(resp: dict[str, Any], expected: str):
    assert stream_of(b"x", **resp).integrity == expected


# ---- the decompressed-bytes cap, end to end --------------------------------------------------

def test_an_object_over_max_decompressed_bytes_is_dead_lettered_with_both_numbers(world):
    src = world.add_source("cap")
    key = ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/12/01/"
           "123456789012_vpcflowlogs_us-east-1_fl-0c_20261201T0000Z_cap.log.gz")
    header = (b"version account-id interface-id srcaddr dstaddr srcport dstport protocol "
              b"packets bytes start end action log-status\n")
    data = gzip.compress(header + b"\n" * (3 << 20))
    world.put(src, key, data)
    world.configure(MAX_DECOMPRESSED_BYTES=str(1 << 20))
    host = world.host()
    host.run_timer()
    run = host.drain()
    [item] = host.poison_items()
    assert (item["kind"], item["stage"]) == ("decompression_limit", "read")
    assert "exceeds the cap of 1048576 bytes" in item["reason"]
    assert f"from {len(data)} stored bytes" in item["reason"]
    assert run.failed == 0


# ---- unit: bounded memory --------------------------------------------------------------------

def _chunks(data: bytes, size: int = 256 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_a_very_long_line_is_not_held_and_lines_after_it_arrive():
    # 12 MiB without a newline, then two lines: the reader holds about one chunk, not the line
    data = b"a" * (12 << 20) + b"\nafter\nlast"
    tracemalloc.start()
    text = TextSource(decompress(_chunks(data)))
    lines = list(text.lines())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert lines == ["", "after", "last"]
    assert text.long_line_count == 1 and text.long_lines[0][:2] == (1, 12 << 20)
    assert peak < 3 * MAX_LINE_CHARS + (1 << 20), peak  # not the 12 MiB line


def test_the_line_cap_keeps_line_numbers_and_crlf():
    data = b"one\r\n" + b"b" * (MAX_LINE_CHARS + 1) + b"\r\nthree\r\n"
    text = TextSource(decompress(_chunks(data, 4096)))
    assert list(text.lines()) == ["one", "", "three"]
    assert [n for n, _, _ in text.long_lines] == [2]


def test_rejected_records_are_kept_bounded_whatever_their_number():
    from shared import checkpoints as cp
    from shared.pipeline import _Rejected
    from shared.poison import for_object

    tracemalloc.start()
    rejected = _Rejected()
    for position in range(1, 200_001):  # 200,000 junk lines after one good record
        rejected.add(position)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rejected.count == 200_000 and len(rejected.ranges) == 200_000
    assert peak < 2 << 20, peak  # a list of 200,000 ints would be ~7 MB
    dead = cp.Ranges()
    rejected.settle(dead)
    assert dead.intervals() == [[1, 200_001]]
    from shared.errors import RecordError
    from shared.notifications import ObjectRef
    env = for_object(ObjectRef(source="s", bucket="bkt", key="k"), RecordError("bad"),
                     stage="parse", attempts=1, positions=rejected.ranges)
    assert env.records["count"] == 200_000 and len(env.records["positions"]) == 2000
    assert (env.records["first"], env.records["last"]) == (1, 200_000)


def test_a_gzip_bomb_stops_at_the_ratio_cap_with_bounded_pieces():
    bomb = gzip.compress(gzip.compress(b"\n" * (64 << 20), 9), 9)
    pieces = 0
    with pytest.raises(DecompressionLimitError, match="expansion ratio"):
        for piece in decompress([bomb], limits=Limits()):
            assert len(piece) <= OUT_BYTES
            pieces += 1
    assert pieces <= (16 << 20) // OUT_BYTES + 1  # stopped just past the first 16 MiB


def test_zstd_truncated_and_corrupt_are_read_faults():
    import zstandard

    frame = zstandard.ZstdCompressor().compress(b"line\n" * 100_000)
    with pytest.raises(ObjectReadError, match="zstd stream is truncated"):
        b"".join(decompress([frame[:-50]]))
    with pytest.raises(ObjectReadError, match="corrupt zstd"):
        b"".join(decompress([frame + b"garbage!"]))


def test_bzip2_and_xz_truncated_are_read_faults():
    import bz2
    import lzma

    for name, packed in (("bzip2", bz2.compress(b"x\n" * 100_000)),
                         ("xz", lzma.compress(b"x\n" * 100_000))):
        with pytest.raises(ObjectReadError, match=f"{name} stream is truncated"):
            b"".join(decompress([packed[:-30]]))


def test_corrupt_gzip_in_the_middle_keeps_the_output_before_it():
    good = gzip.compress(b"a\n" * 1000)
    bad = bytearray(gzip.compress(b"b\n" * 100_000))
    bad[20:40] = b"\xff" * 20
    out = bytearray()
    with pytest.raises(ObjectReadError, match="corrupt gzip data in member 2"):
        for piece in decompress(_chunks(good + bytes(bad), 64)):
            out += piece
    assert out == b"a\n" * 1000


def test_a_truncated_head_still_serves_the_text_before_the_fault():
    data = gzip.compress(b'{"a":1}\n' * 2000)[:-12]  # under the 64 KB head, cut at its end
    text = TextSource(decompress([data]))
    values = []
    with pytest.raises(ObjectReadError, match="truncated"):
        for v in text.json_values():
            values.append(v)
    assert len(values) > 1000 and values[0] == {"a": 1}


def test_a_fault_behind_an_empty_head_is_raised_by_finish():
    deep = gzip.compress(gzip.compress(gzip.compress(gzip.compress(b"x\n"))))
    text = TextSource(decompress([deep]))
    assert text.head == ""
    with pytest.raises(ObjectReadError, match="nested deeper than 3"):
        text.finish()


def test_deeply_nested_json_is_one_bad_value():
    data = ("[" * 100_000 + "]" * 100_000 + '\n{"ok": true}\n').encode()
    values = list(TextSource(decompress([data])).json_values())
    assert "nested too deeply" in values[0].reason and values[1] == {"ok": True}


def test_checksum_helpers_agree_with_the_reference_implementations():
    data = b"The quick brown fox jumps over the lazy dog"
    assert crc32c.crc32c(data) == 0x22620404  # RFC 3720 test vector family (CRC-32C)
    assert zlib.crc32(data) == 0x414FA339


def test_a_row_too_deep_to_serialise_is_dead_lettered_alone_not_retried():
    # a value can decode at a shallow stack and still be too deep to encode at a deeper one
    from shared.batching import Batch, Oversize, batches

    deep: list = []
    for _ in range(5000):  # built without recursion
        deep = [deep]
    out = list(batches([(0, {"a": 1}), (1, {"Fields": deep}), (2, {"b": 2})], 10_000))
    [bad] = [o for o in out if isinstance(o, Oversize)]
    assert bad.position == 1 and "cannot be serialised as JSON" in bad.reason
    assert [b.positions for b in out if isinstance(b, Batch)] == [[0, 2]]


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_a_too_deep_cloudtrail_record_is_skipped_across_chunks(chunk):
    deep = '{"s": "]]}}\\"[", "d": ' + "[" * 3000 + '"x]"' + "]" * 3000 + "}"
    doc = '{"Records": [{"a": 1}, ' + deep + ', {"b": "[{"}, {"c": 3}]}'
    text = TextSource(decompress(_chunks(doc.encode(), chunk)))
    items = list(text.json_array_items("Records"))
    assert items[0] == {"a": 1} and "nested too deeply" in items[1].reason
    assert items[2:] == [{"b": "[{"}, {"c": 3}]


def test_every_other_record_bad_is_bounded_by_a_cap_on_separate_stretches():
    from shared.errors import FormatError
    from shared.pipeline import _Rejected

    rejected = _Rejected()
    with pytest.raises(FormatError, match="separate stretches"):
        for position in range(0, 10 * _Rejected.MAX_RUNS, 2):  # good, bad, good, bad, ...
            rejected.add(position)
    assert rejected.runs == _Rejected.MAX_RUNS + 1 and rejected.count == _Rejected.MAX_RUNS


def test_a_zip_larger_than_the_byte_cap_is_not_spooled_past_it():
    import zipfile as zf

    buf = io.BytesIO()
    with zf.ZipFile(buf, "w", zf.ZIP_STORED) as z:
        z.writestr("a.log", os.urandom(3 << 20))
    zipfile_bytes = buf.getvalue()
    data = list(_chunks(zipfile_bytes))
    with pytest.raises(DecompressionLimitError, match="cannot be spooled"):
        b"".join(decompress(data, limits=Limits(max_bytes=1 << 20)))


def test_more_than_a_million_rejected_records_end_the_object(monkeypatch):
    from shared.errors import FormatError
    from shared.pipeline import _Rejected

    monkeypatch.setattr(_Rejected, "MAX_COUNT", 1000)  # the same rule, at a test's size
    rejected = _Rejected()
    with pytest.raises(FormatError, match="more than 1000 records could not be parsed"):
        for position in range(5000):
            rejected.add(position)
    assert rejected.count == 1001 and rejected.runs == 1


def test_a_single_layer_1000x_bomb_is_stopped_soon_after_the_first_16_mib():
    # the ratio is of the stored bytes actually inflated, not of the whole chunk pulled
    bomb = gzip.compress(b"\n" * (64 << 20), 9)  # ~1030x: one chunk holds all of it
    out = 0
    with pytest.raises(DecompressionLimitError, match="expansion ratio"):
        for piece in decompress([bomb]):
            out += len(piece)
    assert out <= 18 << 20, out
