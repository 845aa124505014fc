"""Rows -> upload batches of at most ``max_bytes`` of JSON (before gzip).

Each row is serialised exactly once, with orjson, into the bytes the request body is joined
from. A batch remembers the record positions it carries so a retry can skip what was already
accepted and a dead letter can name its record range. A row that cannot fit a batch on its own
is yielded as ``Oversize`` and dead-lettered alone.

Every body is valid JSON: a NaN or infinite float (Python's json module reads the literals
``NaN``/``Infinity`` from hostile input) is written as ``null``, never as a bare ``NaN`` the
service would refuse. The service silently cuts any field value over 64 KB (REFERENCE.md:
Logs Ingestion limits), so a longer field is clipped here instead, visibly: it ends in
``...[clipped N bytes]`` and the number of clipped fields is reported through ``on_clip``
(the object's health row counts them).

Bodies are gzipped with ISA-L (``isal``), level ``GZIP_LEVEL``: chosen from the measured table
of ``benchmarks/cpu.py`` (level x request size -> MB/s, ratio, requests per GB).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union

import orjson
from isal import isal_zlib

# The choice from the measured table (benchmarks/cpu.py, `compression` in results.json)
GZIP_LIB = "isal"
GZIP_LEVEL = 2
GZIP_WHY = ("isal level 2 at 1,000,000-byte bodies. Measured on our CloudTrail / VPC Flow "
            "rows: 3.9 / 3.1 GB/s, ratio 18.6 / 18.4; zlib 6 (what gzip.compress and the SDK "
            "use): 0.24 / 0.19 GB/s, ratio 21.2 / 24.1; isal 1 is no faster and compresses "
            "less, isal 3 is 5x slower and compresses worse, zlib-ng 1 is half the speed at "
            "ratio 12.7. The 1 MB limit is on the uncompressed body, so the ratio only saves "
            "network bytes; the largest body under the limit gives the fewest requests "
            "(1,223 / 3,196 per GB of input, max 55 KB of gzip per request)")

FIELD_LIMIT = 64 * 1024  # bytes of one field value the service keeps (it cuts the rest)
_CLIP_MARK = "...[clipped {} bytes]"
_OPTS = orjson.OPT_NON_STR_KEYS


def compress(body: bytes) -> bytes:
    """One request body as gzip (deterministic: no timestamp in the header)."""
    return isal_zlib.compress(body, GZIP_LEVEL, 31)


@dataclass
class Batch:
    rows: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # record positions (0-based) in the object
    size: int = 2  # "[" + "]"

    def add(self, position: int, row: bytes) -> None:
        self.size += len(row) + (1 if self.rows else 0)
        self.rows.append(row)
        self.positions.append(position)

    def body(self) -> bytes:
        return b"[" + b",".join(self.rows) + b"]"

    def gzipped(self) -> bytes:
        return compress(self.body())

    def split(self) -> tuple[Batch, Batch]:
        half = len(self.rows) // 2
        return _of(self.rows[:half], self.positions[:half]), _of(self.rows[half:],
                                                                  self.positions[half:])

    @property
    def first(self) -> int:
        return self.positions[0]

    @property
    def last(self) -> int:
        return self.positions[-1]

    def __len__(self) -> int:
        return len(self.rows)


def _of(rows: list[bytes], positions: list[int]) -> Batch:
    b = Batch()
    for p, r in zip(positions, rows):
        b.add(p, r)
    return b


@dataclass(frozen=True)
class Oversize:
    position: int
    size: int
    reason: str = ""  # set when the row cannot be serialised at all (nested too deeply)


def _finite(value: Any) -> Any:
    """``value`` with every NaN/infinite float replaced by None (for the fallback encoder)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=_OPTS)
    except TypeError:
        # what orjson refuses: integers beyond 64 bits, strings with lone surrogates (the
        # json module decodes "\ud800" escapes into them). json writes both as valid JSON
        # (ASCII escapes); floats are made finite first (allow_nan=False would raise).
        return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=True,
                          allow_nan=False).encode("ascii")


def clip(text: str, limit: int = FIELD_LIMIT) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, the cut marked with its size."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    keep = limit - len(_CLIP_MARK.format(len(data)))
    head = data[:keep].decode("utf-8", "ignore")  # not inside a character
    removed = len(data) - len(head.encode("utf-8"))
    return head + _CLIP_MARK.format(removed)


def _clip_fields(row: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The row with every field value over FIELD_LIMIT bytes clipped; and how many were.
    A dynamic (object/array) value that is too long becomes its clipped JSON text."""
    out, n = {}, 0
    for k, v in row.items():
        if isinstance(v, str):
            if len(v) * 4 > FIELD_LIMIT and len(v.encode("utf-8", "surrogatepass")) > FIELD_LIMIT:
                v, n = clip(v), n + 1
        elif isinstance(v, (dict, list, tuple)):
            text = _dumps(v)
            if len(text) > FIELD_LIMIT:
                v, n = clip(text.decode("utf-8")), n + 1
        out[k] = v
    return out, n


def encode(row: dict[str, Any], on_clip: Callable[[int], None] | None = None) -> bytes:
    """One row as compact JSON (UTF-8), valid always, no field over FIELD_LIMIT bytes."""
    data = _dumps(row)
    if len(data) > FIELD_LIMIT:  # only then can one field be too long
        clipped, n = _clip_fields(row)
        if n:
            data = _dumps(clipped)
            if on_clip is not None:
                on_clip(n)
    return data


def batches(rows: Iterable[tuple[int, dict[str, Any]]], max_bytes: int, *,
            on_clip: Callable[[int], None] | None = None
            ) -> Iterator[Union[Batch, Oversize]]:
    """Group ``(position, row)`` pairs into batches whose JSON body is <= ``max_bytes``.

    ``on_clip(n)`` is called for each row in which ``n`` fields were clipped to FIELD_LIMIT.
    """
    current = Batch()
    limit = max_bytes - 2
    check = min(limit, FIELD_LIMIT)  # a row longer than this needs a second look
    dumps = orjson.dumps
    # the hot loop: Batch.add inlined, orjson called directly and without OPT_NON_STR_KEYS (the
    # option costs ~220 ns per row; a row with a non-str key raises TypeError and goes to
    # _dumps, which writes it with the option); size = len("[" + ",".join(out) + "]") =
    # 1 + sum(len(row) + 1)
    out, where, size = current.rows, current.positions, 1
    for position, row in rows:
        try:
            try:
                data = dumps(row)
            except TypeError:
                data = _dumps(row)
        except (RecursionError, ValueError) as err:  # a value nested ~1000 deep: this row only
            yield Oversize(position, -1, f"record {position} cannot be serialised as JSON "
                                         f"({type(err).__name__}: {err})")
            continue
        n = len(data) + 1
        if n > check:
            if n > FIELD_LIMIT:
                data = encode(row, on_clip)
                n = len(data) + 1
            if n > limit + 1:
                yield Oversize(position, n - 1)
                continue
        if size + n > max_bytes and out:
            current.size = size
            yield current
            current = Batch()
            out, where, size = current.rows, current.positions, 1
        size += n
        out.append(data)
        where.append(position)
    if out:
        current.size = size
        yield current


class Batcher:
    """``batches`` for rows that arrive one at a time, for one table of an object whose
    records go to several (``routing``): ``add`` returns what is ready (a full batch, or an
    ``Oversize``) or None; ``flush`` the open batch at the end. The same bytes and cuts as
    ``batches`` (``tests/test_batching.py`` compares them)."""

    def __init__(self, max_bytes: int, *, on_clip: Callable[[int], None] | None = None):
        self.max_bytes = max_bytes
        self.limit = max_bytes - 2
        self.check = min(self.limit, FIELD_LIMIT)
        self.on_clip = on_clip
        self.current = Batch()
        self.size = 1

    def add(self, position: int, row: dict[str, Any]) -> Union[Batch, Oversize, None]:
        try:
            try:
                data = orjson.dumps(row, option=_OPTS)
            except TypeError:
                data = _dumps(row)
        except (RecursionError, ValueError) as err:  # a value nested ~1000 deep: this row only
            return Oversize(position, -1, f"record {position} cannot be serialised as JSON "
                                          f"({type(err).__name__}: {err})")
        n = len(data) + 1
        if n > self.check:
            if n > FIELD_LIMIT:
                data = encode(row, self.on_clip)
                n = len(data) + 1
            if n > self.limit + 1:
                return Oversize(position, n - 1)
        ready = None
        if self.size + n > self.max_bytes and self.current.rows:
            ready = self.flush()
        self.size += n
        self.current.rows.append(data)
        self.current.positions.append(position)
        return ready

    def flush(self) -> Batch | None:
        """The open batch (None when empty); a new one is started."""
        if not self.current.rows:
            return None
        done, self.current = self.current, Batch()
        done.size, self.size = self.size, 1
        return done
