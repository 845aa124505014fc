"""A seekable file for binary formats (VPC Flow Logs in Parquet), without the object in memory,
and Parquet read from it a few pages at a time (``parquet_rows``).

Parquet needs random access (the footer first, then each row group's column chunks), which an
S3 body stream cannot give. ``spooled`` copies the (decompressed) content into a
``SpooledTemporaryFile``: up to ``memory_bytes`` in memory, beyond that on local disk, so the
parser streams it (a few pages and 1,000-2,000 rows at a time, never a row group whole) and a
1 GB file costs those buffers, not 1 GB.
"""
from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .errors import FormatError, ObjectReadError

MEMORY_BYTES = 16 * 1024 * 1024       # kept in memory below this, spilled to disk above
LIMIT_BYTES = 8 * 1024 * 1024 * 1024  # a binary object larger than this is refused


def spooled(chunks: Iterable[bytes], *, where: str = "object", memory_bytes: int = MEMORY_BYTES,
            limit: int = LIMIT_BYTES) -> IO[bytes]:
    """The bytes of ``chunks`` in a seekable temporary file, positioned at 0. The caller closes
    it (closing deletes it)."""
    f = tempfile.SpooledTemporaryFile(max_size=memory_bytes, prefix="s3obj-")
    size = 0
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise ObjectReadError(f"{where}: binary object larger than {limit} bytes")
            f.write(chunk)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def parquet_rows(data: bytes | IO[bytes], what: str, *, batch_rows: int, read_buffer: int,
                 columns: tuple[str, ...] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The rows of a Parquet object (its bytes, or a seekable file: ``spooled``), in lists of
    at most ``batch_rows`` dicts, row group after row group. ``columns``: the top-level fields
    to read (None: all). Needs the optional ``pyarrow``.

    Bounded by a few pages, not by the file or a row group (benchmarks/RESULTS.md): with
    ``pre_buffer`` pyarrow's read cache keeps every row group it pre-buffered until the file is
    closed (a 1 GB VPC Flow object: +180 MB of RSS; Security Lake's ~128 MB row groups whole);
    ``read_buffer`` streams a column chunk in pieces instead of reading it whole; one thread
    decodes one column at a time. Every failure is a ``FormatError`` naming ``what``: an
    object that cannot be opened, or a corrupt page further on (the rows before it were
    given: the caller sends them, and the object is dead-lettered with the reason)."""
    try:
        import pyarrow.parquet as pq  # optional: not in requirements.txt
    except ImportError as err:
        raise FormatError(f"{what}: install pyarrow (pip install pyarrow) to read "
                          "Parquet") from err
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=read_buffer)
        names = parquet.schema_arrow.names
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own error types
        raise FormatError(f"{what} cannot be read (not readable Parquet): {err}") from err
    wanted = None if columns is None else [n for n in names if n in columns]
    groups, read = parquet.num_row_groups, 0
    for group in range(groups):
        try:
            batches = parquet.iter_batches(batch_size=batch_rows, row_groups=[group],
                                           columns=wanted, use_threads=False)
            while (batch := next(batches, None)) is not None:
                rows = batch.to_pylist()
                read += len(rows)
                yield rows
        except Exception as err:  # noqa: BLE001 - pyarrow raises its own error types
            raise FormatError(f"{what}: row group {group + 1} of {groups} cannot be read "
                              f"after record {read}: {err}") from err
