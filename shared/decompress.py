"""Decompression and unwrapping of object content, detected by magic bytes, always bounded.

``decompress(chunks)`` turns the stored bytes of an object into its plain content, chunk by
chunk. After every layer it looks at the first bytes again, so gzip inside gzip, a ``.tar.gz``
or a zip holding gzip files are all unwrapped:

=================  ========================================================================
content            what happens
=================  ========================================================================
gzip               inflated, every member of a multi-member file; zero padding after the
                   last member is ignored, other trailing bytes are a ``read`` fault raised
                   after the records before them were delivered
zstd, bzip2, xz    decompressed (zstd with the ``zstandard`` package, the rest stdlib)
tar                regular-file members streamed in order (directories, links skipped)
zip                spooled to a temporary file (a zip's index is at its end), then each file
                   member streamed in order (directories skipped; encrypted: refused)
7z, rar, lz4,      ``ObjectReadError``: "unsupported compression/container: <what>"
snappy, lzma-alone
anything else      passed through as is (text, Parquet)
=================  ========================================================================

Layers nest at most ``Limits.max_depth`` deep. The whole output of one object is capped at
``Limits.max_bytes`` and, once more than ``Limits.ratio_after`` bytes came out, at
``Limits.max_ratio`` times the stored bytes read so far: a bomb is stopped with both numbers
(``DecompressionLimitError``, dead-lettered at stage ``read``) long before it fills memory.
Members of an archive are joined with a newline when one does not end with one, so the last
line of a member never runs into the first line of the next.
"""
from __future__ import annotations

import bz2
import lzma
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from isal import isal_zlib

from .errors import DecompressionLimitError, ObjectReadError

GiB = 1024 ** 3
MiB = 1024 ** 2
# largest piece of decompressed output produced at once: 128 KB, so the text a piece becomes
# is framed and parsed while it is in the cache (1 MB pieces: a GuardDuty object 11% and a
# CloudTrail object 13% more CPU, VPC Flow / ALB 3-4%; benchmarks/CPU.md)
OUT_BYTES = 128 * 1024
ZSTD_PIECE = 1024
ZSTD_MAX_WINDOW = 64 * 1024 * 1024
SNIFF_BYTES = 512        # enough to see a tar header's "ustar" at offset 257

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
# containers and compressions we recognise but do not read
UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\x04\x22\x4d\x18", "LZ4 frame"),
    (b"\xff\x06\x00\x00sNaPpY", "Snappy framed stream"),
    (b"\x5d\x00\x00\x80\x00", "LZMA (alone) stream"),
    (b"MSCF\x00\x00\x00\x00", "CAB archive"),
)


@dataclass(frozen=True)
class Limits:
    """Caps for one object (``Settings.decompress_limits``)."""

    max_bytes: int = 10 * GiB      # MAX_DECOMPRESSED_BYTES
    max_ratio: float = 1000.0      # MAX_EXPANSION_RATIO (output / stored bytes)
    ratio_after: int = 16 * MiB    # the ratio is only enforced past this much output
    max_depth: int = 3             # layers of compression/containers, nested


def kind_of(head: bytes) -> str | None:
    """The compression or container the bytes start with, or None for plain content."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[3:4] != b"0":
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(ZIP_MAGICS):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    for magic, name in UNSUPPORTED:
        if head.startswith(magic):
            return "unsupported:" + name
    return None


def decompress(chunks: Iterable[bytes], *, where: str = "object",
               limits: Limits | None = None) -> Iterator[bytes]:
    """Yield the plain content of an object whose stored bytes are ``chunks``."""
    meter = _Meter(where, limits or Limits())
    for out in _unwrap(meter.stored(chunks), meter, 0):
        meter.produced(len(out))
        yield out


class _Meter:
    """Counts stored bytes in and plain bytes out; enforces the caps."""

    def __init__(self, where: str, limits: Limits):
        self.where, self.limits = where, limits
        self.bytes_in = 0
        # stored bytes pulled but not yet inflated by the outermost gzip layer: the ratio is
        # of what was consumed, so a ~1000x bomb is stopped soon after ratio_after, not only
        # after a whole 256 KiB chunk inflated (~256 MB)
        self.unconsumed = 0
        self.bytes_out = 0

    def stored(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.bytes_in += len(chunk)
            yield chunk

    def produced(self, n: int) -> None:
        self.bytes_out += n
        lim = self.limits
        if self.bytes_out > lim.max_bytes:
            raise DecompressionLimitError(
                f"{self.where}: decompressed content exceeds the cap of {lim.max_bytes} bytes "
                f"(MAX_DECOMPRESSED_BYTES; {self.bytes_out} bytes from {self.bytes_in} stored "
                "bytes so far): not read further")
        consumed = max(1, self.bytes_in - self.unconsumed)
        if self.bytes_out > lim.ratio_after and self.bytes_out > lim.max_ratio * consumed:
            raise DecompressionLimitError(
                f"{self.where}: expansion ratio {self.bytes_out / consumed:.0f}x "
                f"exceeds the cap of {lim.max_ratio:g}x (MAX_EXPANSION_RATIO; {self.bytes_out} "
                f"bytes from {consumed} stored bytes): a decompression bomb or junk, "
                "not read further")


def _peek(it: Iterator[bytes], n: int) -> tuple[bytes, Iterator[bytes]]:
    """The first ``n`` bytes (fewer at the end) and an iterator over all of it again."""
    first = b""
    for chunk in it:
        first += chunk
        if len(first) >= n:
            break

    def again() -> Iterator[bytes]:
        if first:
            yield first
        yield from it
    return first, again()


def _unwrap(chunks: Iterator[bytes], meter: _Meter, depth: int) -> Iterator[bytes]:
    head, chunks = _peek(iter(chunks), SNIFF_BYTES)
    kind = kind_of(head)
    if kind is None:
        yield from chunks
        return
    where = meter.where
    if kind.startswith("unsupported:"):
        raise ObjectReadError(f"{where}: unsupported compression/container: "
                              f"{kind.split(':', 1)[1]}")
    if depth >= meter.limits.max_depth:
        raise ObjectReadError(f"{where}: compression/containers nested deeper than "
                              f"{meter.limits.max_depth} levels ({kind} inside); not read")
    if kind == "gzip":
        inner = _gunzip(chunks, where, meter if depth == 0 else None)
    elif kind == "zstd":
        inner = _zstd(chunks, where)
    elif kind == "bzip2":
        inner = _stdlib(chunks, where, "bzip2", bz2.BZ2Decompressor, OSError)
    elif kind == "xz":
        inner = _stdlib(chunks, where, "xz", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
                        lzma.LZMAError)
    elif kind == "tar":
        yield from _members(_tar_members(chunks, where), meter, depth)
        return
    else:
        yield from _members(_zip_members(chunks, where, meter), meter, depth)
        return
    yield from _unwrap(inner, meter, depth + 1)


def _members(members: Iterator[Iterator[bytes]], meter: _Meter,
             depth: int) -> Iterator[bytes]:
    """Each member's content (itself unwrapped), newline-separated."""
    for member in members:
        last = b"\n"
        for out in _unwrap(member, meter, depth + 1):
            if out:
                last = out[-1:]
                yield out
        if last != b"\n":
            yield b"\n"


def _gunzip(chunks: Iterator[bytes], where: str,
            meter: _Meter | None = None) -> Iterator[bytes]:
    """Every member of a (multi-member) gzip stream, bounded output per step. Inflated by
    ISA-L (``isal_zlib``: zlib's interface, 3-4x faster than zlib here: 0.23 against 0.85 us
    per 1 KB CloudTrail record, benchmarks/CPU.md)."""
    inflater = isal_zlib.decompressobj(wbits=31)
    fed = False  # the current member has received bytes and has not ended yet
    members = 0
    try:
        for pending in chunks:
            while pending:
                if not fed and members and not pending.startswith(GZIP_MAGIC[:len(pending)]):
                    if not pending.lstrip(b"\x00"):
                        pending = b""  # zero padding after the last member
                        continue
                    raise ObjectReadError(
                        f"{where}: {len(pending)}+ bytes of trailing data after gzip member "
                        f"{members} (starting {pending[:16]!r}); the content before it was "
                        "read")
                fed = True
                # bounded output per step: a small compressed chunk can inflate enormously
                out = inflater.decompress(pending, OUT_BYTES)
                if meter is not None:  # the outermost layer: how much is still to inflate
                    meter.unconsumed = len(inflater.unconsumed_tail or inflater.unused_data)
                if out:
                    yield out
                if not inflater.eof:
                    pending = inflater.unconsumed_tail
                    continue
                members += 1
                pending, fed = inflater.unused_data, False
                inflater = isal_zlib.decompressobj(wbits=31)
    except (zlib.error, isal_zlib.error) as err:
        raise ObjectReadError(f"{where}: corrupt gzip data in member {members + 1} ({err}); "
                              "the content before it was read") from err
    if fed:
        raise ObjectReadError(f"{where}: gzip stream is truncated (member {members + 1} has no "
                              "end); the complete content before the cut was read")


def _zstd(chunks: Iterator[bytes], where: str) -> Iterator[bytes]:
    try:
        import zstandard
    except ImportError as err:  # pragma: no cover - in requirements.txt
        raise ObjectReadError(f"{where}: unsupported compression/container: zstd "
                              "(the zstandard package is not installed)") from err
    # a frame may ask for a window of up to 2 GiB: refuse more than 64 MiB of memory
    dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    obj = dctx.decompressobj()
    fed = False
    out: list[bytes] = []
    size = 0
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                fed = True
                # decompressobj has no output bound: feed small pieces (1 KB of input gives
                # at most ~32 MB even of RLE blocks) and hand on about OUT_BYTES at a time
                piece, view = view[:ZSTD_PIECE], view[ZSTD_PIECE:]
                data = obj.decompress(piece)
                if data:
                    out.append(data)
                    size += len(data)
                    if size >= OUT_BYTES:
                        yield b"".join(out)
                        out, size = [], 0
                if obj.eof:
                    rest = obj.unused_data + bytes(view)
                    obj = dctx.decompressobj()
                    fed = False
                    view = memoryview(rest if rest.lstrip(b"\x00") else b"")
        if out:
            yield b"".join(out)
    except zstandard.ZstdError as err:
        raise ObjectReadError(f"{where}: corrupt zstd data ({err}); the content before it was "
                              "read") from err
    if fed:
        raise ObjectReadError(f"{where}: zstd stream is truncated; the complete content before "
                              "the cut was read")


def _stdlib(chunks: Iterator[bytes], where: str, name: str, make: Callable[[], Any],
            error: type[Exception]) -> Iterator[bytes]:
    """bzip2 / xz (multi-stream), bounded output per step."""
    dec = make()
    fed = False
    try:
        for pending in chunks:
            while pending or (fed and not dec.needs_input and not dec.eof):
                fed = True
                out = dec.decompress(pending, OUT_BYTES)
                pending = b""
                if out:
                    yield out
                if dec.eof:
                    pending, fed = dec.unused_data, False
                    dec = make()
                    if not pending.lstrip(b"\x00"):
                        pending = b""
    except (error, EOFError, ValueError) as err:
        raise ObjectReadError(f"{where}: corrupt {name} data ({err}); the content before it "
                              "was read") from err
    if fed:
        raise ObjectReadError(f"{where}: {name} stream is truncated; the complete content "
                              "before the cut was read")


class _ChunkFile:
    """A read-only, non-seekable file over an iterator of byte chunks (for tarfile's stream
    mode)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            out = self._buf + b"".join(self._chunks)
            self._buf = b""
            return out
        while len(self._buf) < n:
            nxt = next(self._chunks, None)
            if nxt is None:
                break
            self._buf += nxt
        out, self._buf = self._buf[:n], self._buf[n:]
        return out


def _read_file(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        block = f.read(256 * 1024)
        if not block:
            return
        yield block


def _tar_members(chunks: Iterator[bytes], where: str) -> Iterator[Iterator[bytes]]:
    try:
        with tarfile.open(fileobj=_ChunkFile(chunks), mode="r|") as tar:  # type: ignore[call-overload]
            for info in tar:
                if not info.isfile():
                    continue  # directories, links, devices: no log content
                f = tar.extractfile(info)
                if f is not None:
                    yield _read_file(f)
    except tarfile.TarError as err:
        raise ObjectReadError(f"{where}: corrupt or truncated tar archive ({err}); the members "
                              "before it were read") from err


def _zip_members(chunks: Iterator[bytes], where: str,
                 meter: _Meter) -> Iterator[Iterator[bytes]]:
    # a zip is read from its central directory at the end: spool it to local disk (not memory)
    with tempfile.TemporaryFile(prefix="s3zip-") as spool:
        for chunk in chunks:
            spool.write(chunk)
            if meter.bytes_in > meter.limits.max_bytes:  # local disk is bounded too
                raise DecompressionLimitError(
                    f"{where}: zip archive larger than {meter.limits.max_bytes} bytes "
                    "(MAX_DECOMPRESSED_BYTES) cannot be spooled to read its index")
        spool.seek(0)
        try:
            archive = zipfile.ZipFile(spool)
        except (zipfile.BadZipFile, OSError) as err:
            raise ObjectReadError(f"{where}: corrupt zip archive ({err})") from err
        with archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if info.flag_bits & 0x1:
                    raise ObjectReadError(f"{where}: zip member {info.filename!r} is encrypted; "
                                          "unsupported compression/container: encrypted zip")
                try:
                    f = archive.open(info)
                except NotImplementedError as err:
                    raise ObjectReadError(f"{where}: unsupported compression/container: zip "
                                          f"member {info.filename!r} ({err})") from err
                except (zipfile.BadZipFile, OSError) as err:
                    raise ObjectReadError(f"{where}: corrupt zip member {info.filename!r} "
                                          f"({err})") from err
                with f:
                    yield _zip_member(f, where, info.filename)


def _zip_member(f: IO[bytes], where: str, name: str) -> Iterator[bytes]:
    try:
        yield from _read_file(f)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
        raise ObjectReadError(f"{where}: corrupt zip member {name!r} ({err}); the content "
                              "before it was read") from err
