"""The fast paths of the mapper helpers give what their plain definitions give.

``iso_from_text`` tells the usual ``YYYY-MM-DDTHH:MM:SSZ`` by its punctuation before any
regex; ``compact_json`` writes with orjson and looks for floats that orjson may write
differently through one translated copy before its regex. Both are held here to the plain
definitions (the regex-only ``iso_from_text``; ``json.dumps`` with compact separators) on
thousands of random inputs, errors included.
"""
from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from typing import Any

from shared.formats import base

_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?Z", re.ASCII)


def reference_iso_from_text(value: str) -> str:
    if _CANONICAL.fullmatch(value):
        try:
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _outcome(fn: Any, value: Any) -> tuple[str, str]:
    try:
        return "ok", fn(value)
    except Exception as err:  # noqa: BLE001 - the same failure is part of the contract
        return "error", repr(err)


def _time_text(rnd: random.Random) -> Any:
    good = "2024-01-02T03:04:05Z"
    choice = rnd.random()
    if choice < 0.1:
        return rnd.choice([None, 20, 2.5, b"2024-01-02T03:04:05Z", ["x"] * 20])
    chars = list(rnd.choice([good, "2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z",
                             "2024-01-02T03:04:05.123456Z", "2024-01-02T03:04:05+02:00",
                             "2024-W01-1T03:04:05Z", "20240102T030405Z"]))
    for _ in range(rnd.randint(0, 2)):
        i = rnd.randrange(len(chars))
        chars[i] = rnd.choice("0123456789-T:Z+ .W\u0665\uff10x")
    return "".join(chars)


def test_iso_from_text_gives_what_the_regex_definition_gives() -> None:
    rnd = random.Random(3)
    seen = set()
    for _ in range(20_000):
        value = _time_text(rnd)
        ref = _outcome(reference_iso_from_text, value)
        assert _outcome(base.iso_from_text, value) == ref, value
        seen.add(ref[0])
    assert seen == {"ok", "error"}


def _value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.random()
    if depth < 3 and kind < 0.25:
        return {rnd.choice(["a", "b", "n\u00e9", "x1", "e"]): _value(rnd, depth + 1)
                for _ in range(rnd.randint(0, 4))}
    if depth < 3 and kind < 0.4:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return rnd.choice([
        None, True, False, 0, -7, 2**63, 2**64 + 1, 1.5, -0.0, 1e-7, 1.5e-7, 0.00001, 0.0001,
        1e16, 1e15, 123456789.125, 1e300, float("nan"), float("inf"), float("-inf"),
        "", "text", "1e5", "0.00001", "a\"b\\c", "\u4e2d\u00e9", "\ud800", "null",
        rnd.uniform(-1e-3, 1e-3), rnd.uniform(-1e20, 1e20), 10.0 ** rnd.randint(-12, 20)])


def test_compact_json_writes_what_json_dumps_writes() -> None:
    rnd = random.Random(5)
    fallbacks = 0
    for _ in range(20_000):
        value = _value(rnd)
        ref = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert base.compact_json(value) == ref, value
        fallbacks += "e" in ref or "null" in ref or "NaN" in ref
    assert fallbacks > 1000  # the cases orjson cannot write alone were met often
