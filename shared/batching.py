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
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
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


class Batch:
    """One request body, built as its rows come: ``[row,row,...]`` in one bytearray, with the
    offset past each row's separator (``ends``) and each row's record position. The rows are
    copied into the body as they are encoded and their own bytes are dropped at once: orjson
    (3.12+) returns each row in a buffer of at least ~4 KB that it never shrinks, so a batch
    holding its ~4,000 VPC Flow rows as bytes objects took ~35 MB instead of its 1 MB body
    (benchmarks/RESULTS.md, memory)."""

    __slots__ = ("_body", "ends", "positions", "size")

    def __init__(self) -> None:
        self._body = bytearray(b"[]")
        self.ends = array("I")  # per row: the offset just past its "," (or the closing "]")
        self.positions: list[int] = []  # record positions (0-based) in the object
        self.size = 2  # len(body())

    def add(self, position: int, row: bytes) -> None:
        body = self._body
        if self.positions:
            body[-1] = 0x2C  # the closing "]" becomes the separator
            body += row
        else:
            body[-1:] = row
        body += b"]"
        self.ends.append(len(body))
        self.positions.append(position)
        self.size = len(body)

    @property
    def rows(self) -> list[bytes]:
        """Each row's JSON (a copy: for tests and splits, not the hot path)."""
        body, out, start = self._body, [], 1
        for end in self.ends:
            out.append(bytes(body[start:end - 1]))
            start = end
        return out

    def body(self) -> bytes:
        return bytes(self._body)

    def gzipped(self) -> bytes:
        return compress(self._body)

    def split(self) -> tuple[Batch, Batch]:
        half = len(self.positions) // 2
        rows = self.rows
        return _of(rows[:half], self.positions[:half]), _of(rows[half:], self.positions[half:])

    @property
    def first(self) -> int:
        return self.positions[0]

    @property
    def last(self) -> int:
        return self.positions[-1]

    def __len__(self) -> int:
        return len(self.positions)


def _of(rows: list[bytes], positions: list[int]) -> Batch:
    b = Batch()
    for p, r in zip(positions, rows):
        b.add(p, r)
    return b


def _closed(body: bytearray, ends: array, positions: list[int]) -> Batch:
    """A batch from the hot loop's parts: ``body`` is "[" + each row and "," (the last "," is
    made the closing "]" here); ``ends`` the offsets past each separator."""
    body[-1] = 0x5D
    b = Batch.__new__(Batch)
    b._body, b.ends, b.positions, b.size = body, ends, positions, len(body)
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
    limit = max_bytes - 2
    check = min(limit, FIELD_LIMIT)  # a row longer than this needs a second look
    dumps = orjson.dumps
    # the hot loop: orjson called directly and without OPT_NON_STR_KEYS (the option costs
    # ~220 ns per row; a row with a non-str key raises TypeError and goes to _dumps, which
    # writes it with the option); each row is copied into the body at once and its bytes
    # dropped (see Batch); size = len(body) = 1 + sum(len(row) + 1), the last "," being the
    # closing "]"
    body, ends, where, size = bytearray(b"["), array("I"), [], 1
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
        if size + n > max_bytes and where:
            yield _closed(body, ends, where)
            body, ends, where, size = bytearray(b"["), array("I"), [], 1
        size += n
        body += data
        body += b","
        ends.append(size)
        where.append(position)
    if where:
        yield _closed(body, ends, where)


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
        self._open()

    def _open(self) -> None:
        self.body, self.ends, self.positions, self.size = bytearray(b"["), array("I"), [], 1

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
        if self.size + n > self.max_bytes and self.positions:
            ready = self.flush()
        self.size += n
        self.body += data
        self.body += b","
        self.ends.append(self.size)
        self.positions.append(position)
        return ready

    def flush(self) -> Batch | None:
        """The open batch (None when empty); a new one is started."""
        if not self.positions:
            return None
        done = _closed(self.body, self.ends, self.positions)
        self._open()
        return done
