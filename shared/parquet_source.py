"""A seekable file for binary formats (VPC Flow Logs in Parquet), without the object in memory.

Parquet needs random access (the footer first, then each row group's column chunks), which an
S3 body stream cannot give. ``spooled`` copies the (decompressed) content into a
``SpooledTemporaryFile``: up to ``memory_bytes`` in memory, beyond that on local disk, so the
parser streams it (a few pages and 1,000-2,000 rows at a time, never a row group whole) and a
1 GB file costs those buffers, not 1 GB.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import IO

from .errors import ObjectReadError

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
