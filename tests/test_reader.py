"""Decompression by magic bytes (multi-member gzip too) and the three framings."""
import gzip
import json
import zlib

import pytest

from shared.errors import ObjectReadError
from shared.reader import JsonGarbage, Limits, TextSource, decompress


def chunked(data: bytes, size: int = 7):
    return [data[i:i + size] for i in range(0, len(data), size)]


def text_of(data: bytes, size: int = 7) -> TextSource:
    return TextSource(decompress(chunked(data, size)))


def test_plain_text_passes_through_unchanged():
    assert b"".join(decompress(chunked(b"hello\nworld"))) == b"hello\nworld"


def test_gzip_is_detected_by_magic_bytes_not_by_name():
    data = gzip.compress(b"a\nb\n")
    assert list(text_of(data).lines()) == ["a", "b"]


def test_multi_member_gzip_yields_every_member():
    data = gzip.compress(b'{"a":1}') + gzip.compress(b'{"a":2}') + gzip.compress(b'{"a":3}')
    assert [v["a"] for v in text_of(data, 5).json_values()] == [1, 2, 3]


def test_truncated_gzip_is_an_error():
    data = gzip.compress(b"x" * 10000)[:-30]
    with pytest.raises(ObjectReadError, match="truncated"):
        list(text_of(data).lines())


def test_corrupt_gzip_is_an_error():
    data = b"\x1f\x8b\x08\x00" + b"\xff" * 50
    with pytest.raises(ObjectReadError, match="corrupt|truncated"):
        list(text_of(data).lines())


def test_lines_handle_crlf_and_a_last_unterminated_line_and_utf8_split_across_chunks():
    data = "é1\r\nü2\n3".encode()
    assert list(text_of(data, 1).lines()) == ["é1", "ü2", "3"]


def test_json_values_back_to_back_and_garbage_in_between():
    data = b'{"a":1}{"a":2}\nnot json\n{"a":3}'
    out = list(text_of(data, 3).json_values())
    assert [v["a"] for v in out if isinstance(v, dict)] == [1, 2, 3]
    garbage = [v for v in out if isinstance(v, JsonGarbage)]
    assert len(garbage) == 1 and "not valid JSON" in garbage[0].reason


def test_json_array_items_stream_records_of_a_large_object():
    records = [{"eventID": str(i), "pad": "x" * 500} for i in range(3000)]
    data = gzip.compress(json.dumps({"Records": records}).encode())
    items = text_of(data, 65536).json_array_items("Records")
    assert [r["eventID"] for r in items] == [str(i) for i in range(3000)]


def test_json_array_items_errors():
    with pytest.raises(ValueError, match="no 'Records'"):
        list(text_of(b'{"other": []}').json_array_items("Records"))
    with pytest.raises(ValueError, match="not closed"):
        list(text_of(b'{"Records": [{"a":1},').json_array_items("Records"))
    with pytest.raises(ValueError, match="not an array"):
        list(text_of(b'{"Records": 5}').json_array_items("Records"))


def test_head_is_available_before_consumption():
    t = text_of(zlib.compress(b"") if False else b'{"Records":[]}')
    assert t.head.startswith('{"Records"')
    assert list(t.json_array_items("Records")) == []


def test_highly_compressed_input_is_inflated_in_bounded_pieces():
    data = gzip.compress(b"\n" * (40 * 1024 * 1024))  # 1003x: over the default ratio cap
    pieces = list(decompress([data], limits=Limits(max_ratio=10_000)))
    assert sum(len(p) for p in pieces) == 40 * 1024 * 1024
    assert max(len(p) for p in pieces) <= 1024 * 1024
