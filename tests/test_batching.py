"""Batches: <= max bytes of JSON, each row serialised once, oversize rows set apart."""
import gzip
import json

from shared.batching import Batch, Oversize, batches


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
