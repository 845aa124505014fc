"""The orjson fast path of the JSON framing reads exactly what the json module reads.

Each input is framed twice, once as shipped and once with the fast paths switched off (every
value through json.JSONDecoder.raw_decode, the reference), in whole and in small chunks; the
values, garbage positions and errors must be the same. The fast paths: ``fast_lines`` (whole
lines of a JSON-lines object, one orjson call each), ``fast_value`` (one value) and
``fast_items`` (a window of array items).
"""
import json

import pytest

from shared import reader
from shared.reader import JsonGarbage, TextSource


def _frame(text: str, how: str, chunk: int, key: str = "Records"):
    data = text.encode()
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
    src = TextSource(iter(pieces))
    out = []
    try:
        items = src.json_values() if how == "values" else src.json_array_items(key)
        for v in items:
            out.append(("garbage", v.index, v.reason, v.raw) if isinstance(v, JsonGarbage)
                       else ("value", repr(v)))  # repr: NaN == NaN, 1 != 1.0, int vs float
    except ValueError as err:
        out.append(("error", str(err)))
    return out


def _same(monkeypatch, text: str, how: str) -> None:
    for chunk in (len(text.encode()) + 1, 7, 64):
        fast = _frame(text, how, chunk)
        with monkeypatch.context() as m:
            m.setattr(reader, "_orjson", lambda t: reader._MISS)
            m.setattr(reader._JsonCursor, "fast_lines", lambda self: ([], 0))
            slow = _frame(text, how, chunk)
        assert fast == slow, (chunk, fast, slow)


TRICKY = [
    {"big": 18446744073709551616, "neg": -9223372036854775809, "ok": 9223372036854775807},
    {"id": "31953106606966983378809025079804211143289615424298221568", "n": 1},
    {"s": "a}{b", "t": "x},{y", "u": "}, {"},
    {"nested": [{"a": 1}, {"b": [{"c": None}]}], "f": 1.5e-07, "g": 1e16, "h": -0.0},
    {"uni": "é€𝄞", "esc": "\u0000\t\"\\", "lone": "\ud800"},
    [1, 2, {"x": "y"}],
]


@pytest.mark.parametrize("sep", ["\n", "", "\r\n", "\n\n  ", " "])
def test_json_values_fast_path_reads_what_json_reads(monkeypatch, sep):
    parts = [json.dumps(v) for v in TRICKY] + ['{"a": 1, "a": 2}', '{"n": NaN, "i": Infinity}',
                                                "not json",
                                                '{"pretty":\n  [1,\n 2]}', '{"x": 1e999}',
                                                "12345678901234567890123", '"str"', "true",
                                                '{"cut": ']
    _same(monkeypatch, sep.join(parts), "values")


@pytest.mark.parametrize("compact", [True, False])
def test_json_array_items_fast_path_reads_what_json_reads(monkeypatch, compact):
    seps = (",", ":") if compact else (", ", ": ")
    records = [{"eventVersion": "1.08", "i": i, "r": [{"a": {"b": i}}, {"c": "},{"}]}
               for i in range(300)] + TRICKY
    text = json.dumps({"Records": records}, separators=seps)
    _same(monkeypatch, text, "items")
    _same(monkeypatch, text.replace('"i": 5', '"i": NaN').replace('"i":5', '"i":NaN'), "items")
    _same(monkeypatch, text[:len(text) // 2], "items")  # truncated
    bad = text.replace('"i": 7,', '"i": 7,,').replace('"i":7,', '"i":7,,')
    _same(monkeypatch, bad, "items")


def test_fast_path_is_taken_for_ordinary_lines(monkeypatch):
    calls = []
    real = reader._orjson
    monkeypatch.setattr(reader, "_orjson", lambda t: calls.append(1) or real(t))
    lines = []
    real_lines = reader._JsonCursor.fast_lines

    def counted(values):
        for v in values:
            lines.append(v)
            yield v

    monkeypatch.setattr(reader._JsonCursor, "fast_lines",
                        lambda self: (lambda out: (counted(out[0]), out[1]))(real_lines(self)))
    text = "\n".join(json.dumps({"i": i}) for i in range(100))
    assert [v["i"] for v in TextSource(iter([text.encode()])).json_values()] == list(range(100))
    # the last line, with no newline after it, may go the other ways
    assert len(lines) >= 99 and len(lines) + len(calls) >= 99


def _mixed_lines(n: int) -> list[str]:
    """JSON lines of every sort the fast line path must hand back to the reference way."""
    odd = ['{"id": "1121bb3466514210907757597a6ce309", "n": 7}',  # digits in a hex id
           '{"n": 12345678901234567890123}', '{"n": -9223372036854775809}',  # over 64 bits
           '', '   ', '\x00\x00', '{"a": 1}\r', '  {"lead": "space"}  ',
           '{"a": 1}{"b": 2}', '{"a": 1} {"b": 2}', '{"n": NaN}', 'not json', '12', '"s"',
           '{"lone": "\\ud800"}', '{"uni": "\u00e9\u20ac\U0001d11e"}', '[1, 2.5e-07, null]',
           '{"pretty":', '  [1, 2]}', '{"cut": ', '{"s": "}{"}', '{"f": 1e999}']
    out = []
    for i in range(n):
        out.append(odd[i % len(odd)] if i % 5 == 0 else json.dumps({"i": i, "v": "x" * (i % 97)}))
    return out


@pytest.mark.parametrize("chunk", [50_000, 4096, 333])
def test_json_lines_over_several_windows_read_what_json_reads(monkeypatch, chunk):
    monkeypatch.setattr(reader, "_WINDOW", 2048)  # many windows, lines across chunk ends
    text = "\n".join(_mixed_lines(3000)) + "\n"
    fast = _frame(text, "values", chunk)
    with monkeypatch.context() as m:
        m.setattr(reader, "_orjson", lambda t: reader._MISS)
        m.setattr(reader._JsonCursor, "fast_lines", lambda self: ([], 0))
        slow = _frame(text, "values", chunk)
    assert fast == slow
    assert sum(1 for v in fast if v[0] == "garbage") > 100


def test_array_items_over_several_windows_read_what_json_reads(monkeypatch):
    # ~1.5 MB of records: several 256 KB orjson windows, one record over a window on its own
    records = [{"eventVersion": "1.08", "i": i, "pad": "x" * (i % 700)} for i in range(4000)]
    records.insert(1234, {"eventVersion": "1.08", "huge": "y" * 400_000})
    text = json.dumps({"Records": records}, separators=(",", ":"))
    for chunk in (len(text) + 1, 64 * 1024):
        fast = _frame(text, "items", chunk)
        with monkeypatch.context() as m:
            m.setattr(reader, "_orjson", lambda t: reader._MISS)
            m.setattr(reader._JsonCursor, "fast_lines", lambda self: ([], 0))
            slow = _frame(text, "items", chunk)
        assert fast == slow and len(fast) == 4001
