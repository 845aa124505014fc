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


def _reference(m) -> None:
    """Every fast path off: each value through json.JSONDecoder.raw_decode, from the text."""
    m.setattr(reader, "_orjson", lambda t: reader._MISS)
    m.setattr(reader._JsonCursor, "fast_lines", lambda self: ([], 0))
    m.setattr(reader, "_byte_values", lambda data, chunks: reader._text_values(
        reader._JsonCursor(reader._decoded(data, chunks)), 0))


def _same(monkeypatch, text: str, how: str) -> None:
    for chunk in (len(text.encode()) + 1, 7, 64):
        fast = _frame(text, how, chunk)
        with monkeypatch.context() as m:
            _reference(m)
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


def _count_text_values(m) -> list[int]:
    """Count the values the text way (``_text_values`` / ``_stretch_values``) yields."""
    seen: list[int] = []

    def counting(real):
        def wrapper(*args):
            gen = real(*args)
            result = None
            while True:
                try:
                    value = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                if not seen or seen[-1] != id(value):
                    seen.append(id(value))
                yield value
            return result
        return wrapper

    m.setattr(reader, "_text_values", counting(reader._text_values))
    m.setattr(reader, "_stretch_values", counting(reader._stretch_values))
    return seen


def test_fast_path_is_taken_for_ordinary_lines(monkeypatch):
    text = "\n".join(json.dumps({"i": i}) for i in range(100))
    by_text = _count_text_values(monkeypatch)
    assert [v["i"] for v in TextSource(iter([text.encode()])).json_values()] == list(range(100))
    assert len(by_text) <= 1  # the last line, with no newline after it, goes the text way
    # and the text way (the rest of an object after a value longer than the bytes way's
    # window, or a source whose text was read) takes whole lines by orjson too
    monkeypatch.setattr(reader, "_byte_values", lambda data, chunks: reader._text_values(
        reader._JsonCursor(reader._decoded(data, chunks)), 0))
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
    assert [v["i"] for v in TextSource(iter([text.encode()])).json_values()] == list(range(100))
    # the last line, with no newline after it, may go the other ways
    assert len(lines) >= 99 and len(lines) + len(calls) >= 99


def test_bytes_way_goes_on_after_a_line_it_cannot_read(monkeypatch):
    """A long integer, a bad line, invalid UTF-8: the text way reads to the window's end, then
    the bytes way again (not the rest of the object as text)."""
    monkeypatch.setattr(reader, "_WINDOW", 4096)
    good = [json.dumps({"i": i, "pad": "p" * (i % 50)}) for i in range(3000)]
    odd = ['{"n": 123456789012345678901}', "not json", '{"u": "\xff"}', '{"a": 1} x',
           '{"lone": "\\ud800"}', '{"n": NaN}']
    lines = list(good)
    for k, bad in enumerate(odd):
        lines[400 * (k + 1)] = bad
    data = "\n".join(lines).encode("latin-1") + b"\n"
    with monkeypatch.context() as m:
        _reference(m)
        want = _frame(data.decode("utf-8", "replace"), "values", 1000)
    by_text = _count_text_values(monkeypatch)
    pieces = [data[i:i + 1000] for i in range(0, len(data), 1000)]
    out = list(TextSource(iter(pieces)).json_values())
    assert len(out) == 3001  # '{"a": 1} x': a value and a garbage line
    assert [("garbage", v.index, v.reason, v.raw) if isinstance(v, JsonGarbage)
            else ("value", repr(v)) for v in out] == want
    # each odd line costs at most the rest of its window (4 KB: < 80 lines) read as text
    assert 6 <= len(by_text) < 6 * 80


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
        _reference(m)
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
            _reference(m)
            slow = _frame(text, "items", chunk)
        assert fast == slow and len(fast) == 4001


def _random_number(r) -> str:
    digits = "".join(r.choice("0123456789") for _ in range(r.randint(1, 25))).lstrip("0") or "0"
    s = ("-" if r.random() < 0.3 else "") + digits
    if r.random() < 0.5:
        s += "." + "".join(r.choice("0123456789") for _ in range(r.randint(1, 40)))
    if r.random() < 0.4:
        s += r.choice("eE") + r.choice(["", "+", "-"]) + str(r.randint(0, 10 ** r.randint(1, 22)))
    return s


def test_numbers_read_from_the_bytes_are_what_json_reads(monkeypatch):
    """Integers over 64 bits (orjson gives a float) must reach json, whatever comes before
    them; fractions and exponents (a float either way) may stay with orjson; a hex id with an
    "e" and 19 digits is a string, not a long number, and keeps the bytes way."""
    import random
    r = random.Random(7)
    lines = []
    for _ in range(20_000):
        n = _random_number(r)
        lines.append(r.choice(['{"n": %s}', '{"n":%s}', '[%s]', '[1,%s]', '{"a": [0, %s]}',
                               '{"n":\t%s }', '{"s": "x", "n": %s}']) % n)
    text = "\n".join(lines) + "\n"
    want = [repr(json.loads(line)) for line in lines]
    got = [repr(v) for v in TextSource(iter([text.encode()])).json_values()]
    assert got == want
    assert sum("e+" in w or "e-" in w or "inf" in w for w in want) > 1000  # floats were met
    ids = "\n".join(json.dumps({"id": f"ab{i}e{10 ** 19 + i}cd", "s": f"session=1e{i:020d}"})
                    for i in range(500)) + "\n"
    by_text = _count_text_values(monkeypatch)
    assert len(list(TextSource(iter([ids.encode()])).json_values())) == 500 and not by_text


def test_invalid_utf8_lines_read_as_the_text_way_reads_them(monkeypatch):
    import random
    r = random.Random(3)
    bad = [b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80", b"\xff",
           b"\xef\xbb\xbf", b"\xef\xbf\xbf", b"\xf0\x9f\x98", b"\xf0\x9f\x98\x80"]
    lines = []
    for i in range(3000):
        line = json.dumps({"i": i, "s": "caf\u00e9"}).encode()
        if i % 7 == 0:
            cut = r.randrange(len(line))
            line = line[:cut] + r.choice(bad) + line[cut:]
        lines.append(line)
    data = _BOM_BYTES + b"\n".join(lines)
    for chunk in (len(data), 4096, 333):
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
        got = [repr(v) if not isinstance(v, JsonGarbage) else (v.index, v.reason, v.raw)
               for v in TextSource(iter(pieces)).json_values()]
        with monkeypatch.context() as m:
            _reference(m)
            want = [repr(v) if not isinstance(v, JsonGarbage) else (v.index, v.reason, v.raw)
                    for v in TextSource(iter(pieces)).json_values()]
        assert got == want and len(got) >= 3000


_BOM_BYTES = "\ufeff".encode()
