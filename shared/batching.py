"""Rows -> upload batches of at most ``max_bytes`` of JSON (before gzip).

Each row is serialised exactly once. A batch remembers the record positions it carries so a
retry can skip what was already accepted and a dead letter can name its record range. A row
that cannot fit a batch on its own is yielded as ``Oversize`` and dead-lettered alone.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Union


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
        return gzip.compress(self.body(), compresslevel=6, mtime=0)

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


def encode(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def batches(rows: Iterable[tuple[int, dict[str, Any]]], max_bytes: int
            ) -> Iterator[Union[Batch, Oversize]]:
    """Group ``(position, row)`` pairs into batches whose JSON body is <= ``max_bytes``."""
    current = Batch()
    for position, row in rows:
        try:
            data = encode(row)
        except (RecursionError, ValueError) as err:  # a value nested ~1000 deep: this row only
            yield Oversize(position, -1, f"record {position} cannot be serialised as JSON "
                                         f"({type(err).__name__}: {err})")
            continue
        if len(data) + 2 > max_bytes:
            yield Oversize(position, len(data))
            continue
        if current.rows and current.size + len(data) + 1 > max_bytes:
            yield current
            current = Batch()
        current.add(position, data)
    if current.rows:
        yield current
