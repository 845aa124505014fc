"""Batches: <= max bytes of JSON, each row serialised once, oversize rows set apart."""
import gzip
import json

import pytest

from shared.batching import FIELD_LIMIT, Batch, Oversize, batches, clip


def rows(n, size=100):
    return [(i, {"TimeGenerated": "2024-01-01T00:00:00Z", "Message": "x" * size, "i": i})
            for i in range(n)]


def test_every_batch_body_is_valid_json_within_the_limit_and_nothing_is_lost():
    out = list(batches(rows(1000), 10_000))
    assert all(isinstance(b, Batch) for b in out)
    assert all(len(b.body()) <= 10_000 for b in out)
    assert all(b.size == len(b.body()) for b in out)
    got = [r["i"] for b in out for r in json.loads(b.body())]
    assert got == list(range(1000))
    assert len(out) > 10
    assert json.loads(gzip.decompress(out[0].gzipped())) == json.loads(out[0].body())


def test_a_row_larger_than_a_batch_is_set_apart_and_the_rest_flows():
    data = rows(3) + [(3, {"Message": "y" * 5000})] + [(4, {"Message": "z"})]
    out = list(batches(data, 1000))
    assert [o for o in out if isinstance(o, Oversize)] == [Oversize(3, len(json.dumps(
        {"Message": "y" * 5000}, separators=(",", ":"))))]
    assert [p for b in out if isinstance(b, Batch) for p in b.positions] == [0, 1, 2, 4]


def test_split_keeps_positions_and_rows_together():
    [b] = list(batches(rows(5), 100_000))
    left, right = b.split()
    assert left.positions == [0, 1] and right.positions == [2, 3, 4]
    assert [r["i"] for r in json.loads(right.body())] == [2, 3, 4]


def test_nan_and_infinity_leave_as_null_so_the_body_stays_valid_json():
    # Python's json module reads the literals NaN / Infinity from hostile input; the service
    # refuses a body with them bare, so they must leave as null
    nan_rows = [(0, {"Message": "a", "Score": float("nan"), "Nested": {"x": [float("inf")]}}),
                (1, {"Message": "b", "Big": 2 ** 70, "Low": float("-inf")})]  # json fallback
    [b] = list(batches(nan_rows, 100_000))
    body = b.body()
    assert b"NaN" not in body and b"Infinity" not in body
    assert json.loads(body, parse_constant=lambda c: pytest.fail(f"bare {c}")) == [
        {"Message": "a", "Score": None, "Nested": {"x": [None]}},
        {"Message": "b", "Big": 2 ** 70, "Low": None}]


def test_a_lone_surrogate_still_gives_valid_json():
    [b] = list(batches([(0, {"Message": "x\ud800y"})], 1000))
    assert json.loads(b.body()) == [{"Message": "x\ud800y"}]
    b.body().decode("utf-8")  # strict UTF-8


def test_fields_over_64_kb_are_clipped_visibly_and_counted():
    clips = []
    big = "é" * 40_000 + "tail"  # 80,004 bytes of UTF-8
    rows_in = [(0, {"Message": big, "Small": "s"}),
               (1, {"Dyn": {"k": "v" * 70_000}, "Other": "x" * 70_000}),
               (2, {"Message": "x" * FIELD_LIMIT})]  # exactly at the limit: kept whole
    [b] = list(batches(rows_in, 1_000_000, on_clip=clips.append))
    out = json.loads(b.body())
    assert clips == [1, 2]
    msg = out[0]["Message"]
    assert len(msg.encode()) <= FIELD_LIMIT and msg.startswith("é" * 1000)
    kept = len(msg.split("...[clipped ")[0].encode())
    assert msg.endswith(f"...[clipped {len(big.encode()) - kept} bytes]")
    assert out[0]["Small"] == "s"
    assert out[1]["Dyn"].startswith('{"k":"vvv') and "...[clipped " in out[1]["Dyn"]
    assert len(out[1]["Other"].encode()) <= FIELD_LIMIT
    assert out[2]["Message"] == "x" * FIELD_LIMIT


def test_clip_never_cuts_inside_a_character():
    text = "€" * 30_000  # 3 bytes each
    out = clip(text)
    out.encode("utf-8")
    assert len(out.encode()) <= FIELD_LIMIT and out.startswith("€" * 21_000)


def test_bodies_are_gzip_any_reader_opens():
    [b] = list(batches(rows(50), 100_000))
    gz = b.gzipped()
    assert gz[:2] == b"\x1f\x8b" and gzip.decompress(gz) == b.body()
    assert b.gzipped() == gz  # deterministic (no timestamp in the header)


def test_non_string_keys_are_written_as_text_as_before():
    # the hot loop calls orjson without OPT_NON_STR_KEYS; such a row takes the other way
    row = {"TimeGenerated": "2024-01-01T00:00:00Z", "Dyn": {1: "a", 2.5: [None]}}
    (batch,) = batches([(0, row)], 10_000)
    assert batch.body() == b'[{"TimeGenerated":"2024-01-01T00:00:00Z","Dyn":{"1":"a",' \
                           b'"2.5":[null]}}]'


def test_the_one_row_at_a_time_batcher_cuts_exactly_like_batches():
    # rows of many sizes, one over the limit, one with a field over 64 KB, one unserialisable
    import random

    from shared.batching import Batcher

    rng = random.Random(7)
    deep: list = []
    for _ in range(1200):
        deep = [deep]
    pairs = [(i, {"i": i, "pad": "x" * rng.randint(0, 3000)}) for i in range(400)]
    pairs[50] = (50, {"big": "y" * 70_000})
    pairs[120] = (120, {"huge": ["z" * 60_000] * 3})
    pairs[200] = (200, {"deep": deep})
    expected = list(batches(pairs, 20_000))
    batcher, got = Batcher(20_000), []
    for position, row in pairs:
        out = batcher.add(position, row)
        if out is not None:
            got.append(out)
    last = batcher.flush()
    got += [last] if last is not None else []
    assert batcher.flush() is None
    assert [type(b) for b in got] == [type(b) for b in expected]
    for a, b in zip(got, expected):
        if isinstance(a, Batch):
            assert (a.body(), a.positions, a.size) == (b.body(), b.positions, b.size)
        else:
            assert (a.position, a.size) == (b.position, b.size)
