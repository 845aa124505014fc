"""Streaming decompression and framing of object content.

An S3 body arrives as an iterator of byte chunks. ``decompress`` (``shared/decompress.py``)
detects compressions and archives from the magic bytes (not the key suffix) and unwraps them,
bounded. ``TextSource`` frames the result for the parsers: lines, a stream of concatenated
JSON values, or the items of one top-level array (CloudTrail's ``Records``), never holding the
whole object.
"""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import orjson

from .decompress import Limits, decompress
from .errors import ConnectorError

HEAD_BYTES = 64 * 1024
_MAX_VALUE_CHARS = 64 * 1024 * 1024  # one JSON value larger than this is not a log record
MAX_LINE_CHARS = 1024 * 1024  # one text line longer than this is not a log record
_TOO_DEEP = "nested too deeply (thousands of levels) to be a log record"
_TOKEN = re.compile(r'[\[\]{}"]')
_STRING_END = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
__all__ = ["HEAD_BYTES", "MAX_LINE_CHARS", "JsonGarbage", "Limits", "TextSource", "decompress"]


class TextSource:
    """Decoded text of one object, consumed once, framed three ways.

    ``head`` (the first 64 KB of text) is available before consumption for detection.
    """

    def __init__(self, chunks: Iterable[bytes], *, where: str = "object"):
        self.where = where
        self._bytes = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer: list[str] = []
        head = []
        size = 0
        self._head_raw: list[bytes] = []
        # a fault while reading the head (a small truncated or corrupt object) is kept and
        # raised where the text after the head is read: the records before it are delivered
        self._fault: ConnectorError | None = None
        try:
            for chunk in self._bytes:
                self._head_raw.append(chunk)
                text = self._decoder.decode(chunk)
                head.append(text)
                size += len(text)
                if size >= HEAD_BYTES:
                    break
        except ConnectorError as err:
            self._fault = err
            self._bytes = iter(())
        self.head = "".join(head)
        if self.head.startswith("\ufeff"):
            self.head = self.head[1:]
        self._pending: str | None = self.head
        # lines over MAX_LINE_CHARS: how many, and the first ones as (line, length, sample)
        self.long_line_count = 0
        self.long_lines: list[tuple[int, int, str]] = []

    def raw_chunks(self) -> Iterator[bytes]:
        """The (decompressed) object as byte chunks, from its start, for binary formats (see
        parquet_source.spooled). Only before any text was consumed."""
        if self._pending is None:
            raise RuntimeError("raw_chunks() after the text was consumed")
        self._pending = None
        if self._fault is not None:
            raise self._fault  # a binary object cut short cannot be read at all
        yield from self._head_raw
        yield from self._bytes

    def finish(self) -> None:
        """Raise the fault met while reading the head if no framing read past it (a parser
        that saw an empty head, or stopped early): it must not pass as a clean object."""
        if self._fault is not None:
            fault, self._fault = self._fault, None
            raise fault

    def _text_chunks(self) -> Iterator[str]:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            if pending:
                yield pending
        if self._fault is not None:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                yield tail
            fault, self._fault = self._fault, None
            raise fault
        for chunk in self._bytes:
            text = self._decoder.decode(chunk)
            if text:
                yield text
        tail = self._decoder.decode(b"", final=True)
        if tail:
            yield tail

    def lines(self) -> Iterator[str]:
        """Each line without its line ending (LF or CRLF), the last unterminated one too.

        A line longer than ``MAX_LINE_CHARS`` is not held: it comes out as an empty line (so
        line numbers stay true) and is listed in ``long_lines`` for the caller to dead-letter.
        Linear time whatever the line length (the text of a line is joined once, at its end).
        """
        carry: list[str] = []  # the current line's pieces, no newline in them yet
        carried = 0
        overlong = 0  # while skipping a line longer than the cap: its length so far
        sample = ""
        number = 0
        for text in self._text_chunks():
            if "\n" not in text:
                if overlong:
                    overlong += len(text)
                    continue
                carry.append(text)
                carried += len(text)
                if carried > MAX_LINE_CHARS:
                    sample, overlong = "".join(carry)[:200], carried
                    carry, carried = [], 0
                continue
            parts = text.split("\n")
            last = parts.pop()
            if overlong:
                self._long_line(number + 1, overlong + len(parts[0]), sample)
                overlong = 0
                parts[0] = ""
            elif carry:
                carry.append(parts[0])
                parts[0] = "".join(carry)
            if "\r" not in text and not parts[0].endswith("\r") and \
                    len(text) <= MAX_LINE_CHARS and len(parts[0]) <= MAX_LINE_CHARS:
                yield from parts  # the common case: plain LF lines of sane length
            elif len(text) > MAX_LINE_CHARS or len(parts[0]) > MAX_LINE_CHARS:
                for n, line in enumerate(parts, start=number + 1):  # a line may be too long
                    if len(line) > MAX_LINE_CHARS:
                        self._long_line(n, len(line), line[:200])
                        line = ""
                    yield line[:-1] if line.endswith("\r") else line
            else:
                for line in parts:
                    yield line[:-1] if line.endswith("\r") else line
            number += len(parts)
            carry, carried = ([last], len(last)) if last else ([], 0)
            if carried > MAX_LINE_CHARS:
                sample, overlong = last[:200], carried
                carry, carried = [], 0
        if overlong:
            self._long_line(number + 1, overlong, sample)
            yield ""
        elif carry:
            rest = "".join(carry)
            yield rest[:-1] if rest.endswith("\r") else rest

    def _long_line(self, number: int, length: int, sample: str) -> None:
        self.long_line_count += 1
        if len(self.long_lines) < 100:
            self.long_lines.append((number, length, sample))

    def json_values(self) -> Iterator[Any | JsonGarbage]:
        """Concatenated JSON values (newline-separated or back to back, as Firehose writes).

        Text that is not JSON is yielded as ``JsonGarbage`` (with its position) and skipped to
        the next line, so one bad line does not lose the rest of the object.

        JSON lines are read from the bytes as they come (``_byte_values``): no decode to text
        and encode back. From the first line that cannot be read that way the rest of the
        object is decoded and read as text (``_text_values``, the reference way): the same
        values either way.
        """
        if self._pending is None or self._fault is not None:
            # text consumed already, or a fault met reading the head (a small, cut object)
            yield from _text_values(_JsonCursor(self._text_chunks()), 0)
            return
        self._pending = None
        data = b"".join(self._head_raw)
        self._head_raw = []
        if data.startswith(_BOM):  # what the head's text dropped
            data = data[len(_BOM):]
        yield from _byte_values(data, self._bytes)

    def json_array_items(self, key: str) -> Iterator[Any]:
        """Items of ``{"<key>": [ ... ]}`` one at a time (CloudTrail's Records).

        Documents back to back (the members of an archive) are read one after the other.
        Raises ``ValueError`` if the text is not an object whose ``key`` holds an array.
        """
        cur = _JsonCursor(self._text_chunks())
        opening = re.compile('"' + re.escape(key) + r'"\s*:\s*(\S)')
        while not (m := opening.search(cur.buf)):
            if not cur.more():
                raise ValueError(f"no '{key}' array in the object")
        if m.group(1) != "[":
            raise ValueError(f"'{key}' is not an array")
        cur.pos = m.end()
        slow_until = 0  # after a window orjson refused, the json module reads up to its end
        while cur.skip(" \t\r\n,"):
            if cur.buf[cur.pos] == "]":
                if not _next_document(cur, opening, key):
                    return
                continue
            if cur.pos >= slow_until:
                items, end = cur.fast_items()
                if items is not None:
                    yield from items
                    continue
                slow_until = end
            value, err = cur.decode()
            if err is not None and err.msg == _TOO_DEEP:
                sample = cur.buf[cur.pos:cur.pos + 200]
                if _skip_value(cur):  # one record too deep: rejected alone, the rest goes on
                    yield JsonGarbage(0, err.msg, sample)
                    continue
            if err is not None:
                raise ValueError(f"invalid JSON in '{key}': {err.msg}") from err
            yield value
        raise ValueError(f"'{key}' array is not closed (truncated object?)")


class _JsonCursor:
    """A window over a stream of text for incremental JSON decoding: it holds only the text
    not yet decoded (plus at most 1 MB already decoded) and reads more when a value is cut."""

    def __init__(self, chunks: Iterator[str]):
        self._chunks = chunks
        self._decoder = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.exhausted = False

    def more(self) -> bool:
        """Append the next chunk, dropping what was consumed; False at the end of the text."""
        nxt = next(self._chunks, None)
        if nxt is None:
            self.exhausted = True
            return False
        self.buf, self.pos = self.buf[self.pos:] + nxt, 0
        return True

    def skip(self, chars: str) -> bool:
        """Move past ``chars``; True when another character follows, False at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in chars:
                self.pos += 1
            if self.pos < len(self.buf):
                return True
            if self.exhausted or not self.more():
                return False

    # ---- the fast path: orjson where it reads exactly what the json module would --------

    def fast_lines(self) -> tuple[Iterator[Any], int]:
        """The values of the whole lines from ``pos`` up to the last newline in the next
        ``_WINDOW`` characters, each line one object or array that orjson reads exactly as
        json does (blank lines passed over), with one encode and one split for all of them;
        ``pos`` ends at the first line that is not such a value. Also returns where the
        window ended: the caller reads the rest of it value by value (the reference way).

        The values come from an iterator that decodes each line when it is taken (``pos``
        is set when it is done): a record is mapped and encoded while its objects are fresh
        in the cache, and freed then, instead of a window's worth of records built first and
        freed together (which cost ~2 us per GuardDuty finding)."""
        buf, pos = self.buf, self.pos
        end = buf.rfind("\n", pos, pos + _WINDOW)
        if end < 0 and len(buf) - pos < _WINDOW and not self.exhausted and self.more():
            buf, pos = self.buf, self.pos  # the line at pos goes on in the next chunk
            end = buf.rfind("\n", pos, pos + _WINDOW)
        if end < 0:
            return iter(()), pos + _WINDOW  # a line longer than the window, or the last
        window = buf[pos:end + 1]
        data = window.encode("utf-8", "surrogatepass")
        if data.translate(_NUMBER_TABLE).rfind(_LONG_NUMBER) >= 0:  # (rfind: see _orjson)
            return iter(()), end + 1  # an integer orjson would read as a float (_orjson)
        return self._window_values(pos, data, len(data) != len(window)), end + 1

    def _window_values(self, pos: int, data: bytes, wide: bool) -> Iterator[Any]:
        loads, used = orjson.loads, 0
        lines = data.split(b"\n")
        lines.pop()  # the empty text after the window's last newline
        try:
            for line in lines:
                if line[:1] in _OPENERS:
                    try:
                        value = loads(line)
                    except orjson.JSONDecodeError:
                        break
                    used += len(line) + 1
                    yield value
                    continue
                if line.strip(b" \t\r\x00"):
                    break  # not an object or array: read the reference way
                used += len(line) + 1
        finally:
            if wide:  # not ASCII: bytes read -> characters read
                used = len(data[:used].decode("utf-8", "surrogatepass"))
            self.pos = pos + used

    def fast_value(self) -> Any:
        """The object or array at ``pos`` decoded by orjson, or ``_MISS`` (nothing consumed)
        when it is not one complete value ending a line or the text read so far, or followed
        by ``{`` (Firehose writes values back to back); ``decode`` then reads it the
        reference way."""
        buf, pos = self.buf, self.pos
        if buf[pos] not in "{[":
            return _MISS
        line_end = buf.find("\n", pos)
        if line_end < 0:
            line_end = len(buf)
        start = pos
        for _ in range(8):  # a "}{" inside a string is tried and passed over, a few times
            cut = buf.find("}{", start, line_end)
            if cut >= 0:
                end = cut + 1
            else:
                # the line's end, or the buffer's: an object or array that ends there is
                # complete (the next chunk cannot go on with it; Firehose's gzip members come
                # one per chunk); one cut there fails and is read the reference way
                end = line_end
            value = _orjson(buf[pos:end])
            if value is not _MISS:
                self.pos = end
                return value
            if cut < 0:
                return _MISS
            start = cut + 1
        return _MISS

    def fast_items(self) -> tuple[list[Any] | None, int]:
        """The array items from ``pos`` up to the last ``},{`` in the next ``_ITEMS_WINDOW``
        characters (``_WINDOW`` when there is none), decoded by orjson in one call;
        ``(None, end)`` when it cannot (``end``: where that window ended). The window bounds
        the records held at once."""
        buf, pos = self.buf, self.pos
        for size in (_ITEMS_WINDOW, _WINDOW):  # a record longer than the first: the second
            stop = pos + size
            end = max(buf.rfind("},{", pos, stop), buf.rfind("}, {", pos, stop)) + 1
            if end > pos:
                break
        else:
            return None, 0
        items = _orjson("[" + buf[pos:end] + "]")
        if items is _MISS:
            return None, end
        self.pos = end
        return items, end

    def decode(self) -> tuple[Any, json.JSONDecodeError | None]:
        """The next value as ``(value, None)``, or ``(None, error)`` when more text cannot
        fix the error (``pos`` is then left at the bad value)."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if (_more_may_fix(err, self.buf) and not self.exhausted
                        and len(self.buf) - self.pos < _MAX_VALUE_CHARS and self.more()):
                    continue
                return None, err
            except RecursionError:
                # nested deeper than Python's decoder goes: one bad value, not a crash
                return None, json.JSONDecodeError(
                    _TOO_DEEP, self.buf,
                    self.pos)
            if (end == len(self.buf) and isinstance(value, (int, float))
                    and not self.exhausted and self.more()):
                continue  # a number at the end of the buffer may go on in the next chunk
            self.pos = end
            if self.pos > 1 << 20:
                self.buf, self.pos = self.buf[self.pos:], 0
            return value, None


_MISS = object()
_WINDOW = 256 * 1024  # characters of JSON lines split at once; of array items at most
# array items decoded by one orjson call: ~30 CloudTrail records, mapped while their objects
# are in the cache (256 KB windows: 8% more CPU per CloudTrail object)
_ITEMS_WINDOW = 32 * 1024
# bytes.translate table: ASCII digits -> "d"; what may come right before the integer part of a
# JSON number inside an object or array (whitespace, "[", ":", ",", its "-") -> " "; every other
# byte -> "q": a quote or a letter (digits inside a string: a hex id, "session=1e1797..."), and
# "." / "e" / "E" / "+": digits after those are a fraction or an exponent, whose number is a
# float for json and orjson alike (the same double; an exponent too large for one: orjson
# refuses it and json reads it). Before, "e" was a " " too: a random hex id holding an "e" and
# 19 decimal digits (about every other benchmark GuardDuty / WAF object has one) sent its
# whole window of lines the slow way.
_NUMBER_TABLE = bytes(100 if 48 <= c <= 57 else 32 if c in b" \t\r\n[:,-" else 113
                      for c in range(256))
_LONG_NUMBER = b" " + b"d" * 19
_OPENERS = (b"{", b"[")
_BOM = "\ufeff".encode()


def _orjson(text: str) -> Any:
    """``text`` decoded by orjson when that gives what ``json.loads`` gives, else ``_MISS``.

    orjson refuses what json also refuses, and NaN/Infinity, lone surrogates and numbers
    overflowing a double, which json accepts: those go to json (``_MISS``). The one value
    orjson reads differently is an integer beyond 64 bits (it gives a float): any number of
    19 digits or more that follows what a JSON number may follow (not a quote or a letter: the
    digits of a hex id inside a string) goes to json.
    """
    try:
        data = text.encode()
    except UnicodeEncodeError:
        return _MISS
    # rfind, not find / in: the same answer, 2-5x sooner on these marks (find's two-way
    # search stumbles over the many runs of "d"; 85 against 310-420 us per 256 KB of
    # CloudWatch Logs payloads, 28 against 87 of Network Firewall lines)
    if data.translate(_NUMBER_TABLE).rfind(_LONG_NUMBER) >= 0:
        return _MISS
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _MISS


def _text_values(cur: _JsonCursor, index: int) -> Iterator[Any | JsonGarbage]:
    """``TextSource.json_values`` on text: ``index`` values were read before ``cur``."""
    slow_until = 0  # after lines orjson refused, the per-value way reads up to here
    while cur.skip(" \t\r\n\x00"):
        if cur.pos >= slow_until:
            values, slow_until = cur.fast_lines()
            n = 0
            for value in values:  # decoded one at a time as they are taken (see there)
                n += 1
                yield value
            if n:
                index += n
                continue
        index += 1
        yield _next_value(cur, index)


def _next_value(cur: _JsonCursor, index: int) -> Any | JsonGarbage:
    """The value at ``cur.pos``: by orjson when it is one complete value (``fast_value``),
    else read the reference way (json); or the rest of its line as garbage ``index``
    (``cur`` then past that line)."""
    value = cur.fast_value()
    if value is not _MISS:
        return value
    value, err = cur.decode()
    if err is None:
        return value
    newline = cur.buf.find("\n", cur.pos)
    stop = len(cur.buf) if newline < 0 else newline + 1
    garbage = JsonGarbage(index, f"not valid JSON: {err.msg}", cur.buf[cur.pos:stop])
    cur.pos = stop
    return garbage


def _byte_values(data: bytes, chunks: Iterator[bytes]) -> Iterator[Any | JsonGarbage]:
    """``TextSource.json_values`` on the object's bytes (``data``: what was read so far, then
    ``chunks``). Each window of whole lines (up to the last newline in the next ``_WINDOW``
    bytes) is checked for long integers at once (see ``_orjson``); each line that is an object
    or array is read by orjson straight from the bytes (orjson refuses invalid UTF-8, which
    the text would hold as U+FFFD: such a line goes the text way), blank lines are passed
    over. From the first line that is none of these to the window's end the text is decoded
    and read the reference way (``_stretch_values``); then the bytes again, unless a value
    went on past the window (then, as after a line longer than the window or at the last line
    without a newline, the rest of the object is read as text: ``_text_values``). Decoding
    starts and ends after a newline, a character boundary: it gives the text the object's
    decoder would."""
    loads, table, mark = orjson.loads, _NUMBER_TABLE, _LONG_NUMBER
    buf, pos, index = data, 0, 0
    exhausted = False
    while True:
        end = buf.rfind(b"\n", pos, pos + _WINDOW)
        if end < 0:
            if not exhausted and len(buf) - pos < _WINDOW:
                more = next(chunks, None)  # (a read fault is raised here, as by the text way)
                if more is None:
                    exhausted = True
                else:
                    buf, pos = buf[pos:] + more, 0
                continue
            if buf[pos:].strip(b" \t\r\n\x00"):  # a line longer than the window, or the last
                yield from _text_values(_JsonCursor(_decoded(buf[pos:], chunks)), index)
            return
        if pos == 0 and len(buf) <= _WINDOW:  # the usual: the whole buffer, no copy of it
            window = buf
        else:
            window = buf[pos:end + 1]
        if window.translate(table).rfind(mark, 0, end + 1 - pos) < 0:
            # each line [pos, stop) handed to orjson as a memoryview: no copy of it (a split
            # into bytes objects: 0.08-0.25 us more per record)
            view, find = memoryview(buf), buf.find
            while pos <= end:
                stop = find(b"\n", pos, end + 1)
                first = buf[pos]
                if first == 123 or first == 91:  # "{" or "["
                    try:
                        value = loads(view[pos:stop])
                    except orjson.JSONDecodeError:
                        break
                    index += 1
                    yield value
                elif stop > pos and buf[pos:stop].strip(b" \t\r\x00"):
                    break  # not an object or array: read the reference way
                pos = stop + 1
            else:
                continue
            del view
        # else: an integer orjson would read as a float (see _orjson): all the window
        beyond: list[bool] = []
        cur = _JsonCursor(_stretch(buf[pos:end + 1], buf, end + 1, chunks, beyond))
        cur.more()
        index = yield from _stretch_values(cur, index, beyond)
        if beyond:
            return  # the rest of the object was read as text
        pos = end + 1


def _stretch(data: bytes, buf: bytes, rest: int, chunks: Iterator[bytes],
             beyond: list[bool]) -> Iterator[str]:
    """The text of ``data`` (whole lines); asked for more, it notes it in ``beyond`` and goes on
    with the text of ``buf[rest:]`` and ``chunks``."""
    text = data.decode("utf-8", "replace")
    del data
    yield text
    beyond.append(True)
    yield from _decoded(buf[rest:], chunks)


def _stretch_values(cur: _JsonCursor, index: int,
                    beyond: list[bool]) -> Generator[Any | JsonGarbage, None, int]:
    """The values of the text in ``cur`` (a ``_stretch``) the reference way, as
    ``_text_values`` reads what ``fast_lines`` refused; returns the count of values so far.
    When a value goes on past the stretch, the rest of the object is read by
    ``_text_values``."""
    while True:
        buf, p = cur.buf, cur.pos
        n = len(buf)
        while p < n and buf[p] in " \t\r\n\x00":
            p += 1
        cur.pos = p
        if beyond:
            yield from _text_values(cur, index)
            return index
        if p == n:
            return index  # the stretch read up: the bytes way goes on after it
        index += 1
        yield _next_value(cur, index)


def _decoded(data: bytes, chunks: Iterator[bytes]) -> Iterator[str]:
    """The text of ``data`` and then of ``chunks`` (``TextSource._text_chunks``'s decoding)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data)
    del data
    if text:
        yield text
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def _skip_value(cur: _JsonCursor) -> bool:
    """Move ``cur`` past the array or object at ``cur.pos`` by counting brackets (strings
    respected), reading on as needed; False when the text ends (or passes the value cap)
    first. Only for a value too deep for the decoder."""
    depth, i = 0, cur.pos
    while True:
        m = _TOKEN.search(cur.buf, i)
        while m is not None:
            c = m.group()
            if c == '"':
                end = _STRING_END.match(cur.buf, m.end())
                if end is None:
                    break  # the string goes on in the next chunk
                i = end.end()
            else:
                depth += 1 if c in "[{" else -1
                i = m.end()
                if depth == 0:
                    cur.pos = i
                    return True
            m = _TOKEN.search(cur.buf, i)
        else:
            i = len(cur.buf)
        offset = i - cur.pos if m is None else m.start() - cur.pos
        if offset > _MAX_VALUE_CHARS or cur.exhausted or not cur.more():
            return False
        i = offset  # more() keeps the text from cur.pos on, at position 0


def _next_document(cur: _JsonCursor, opening: re.Pattern[str], key: str) -> bool:
    """After a closing ``]``: False at the end of the text (only braces and whitespace left),
    True with ``cur`` inside the next document's array; anything else is a ``ValueError``
    (content after the array must not be dropped unnoticed)."""
    cur.pos += 1
    if not cur.skip(" \t\r\n}\x00"):
        return False
    if cur.buf[cur.pos] != "{":
        raise ValueError(f"unexpected content after the '{key}' array: "
                         f"{cur.buf[cur.pos:cur.pos + 40]!r}")
    while not (m := opening.search(cur.buf, cur.pos)):
        if len(cur.buf) - cur.pos > HEAD_BYTES or not cur.more():
            raise ValueError(f"a second JSON document without a '{key}' array follows")
    if m.group(1) != "[":
        raise ValueError(f"'{key}' is not an array")
    cur.pos = m.end()
    return True


def _more_may_fix(err: json.JSONDecodeError, buf: str) -> bool:
    """Whether the decode error may be the buffer's end cutting a value (more text can fix
    it), or is a bad character before it (no amount of text can: without this, one bad line
    read up to 64M characters ahead into memory before it was reported)."""
    # a cut value fails at the end (a cut literal/escape a few characters before it), or as
    # an unterminated string, whose error points at the string's start
    return err.pos >= len(buf) - 16 or err.msg.startswith("Unterminated string")


class JsonGarbage:
    """A stretch of text in a JSON stream that is not JSON (position, reason, raw text)."""

    __slots__ = ("index", "reason", "raw")

    def __init__(self, index: int, reason: str, raw: str):
        self.index, self.reason, self.raw = index, reason, raw

    def __repr__(self) -> str:
        return f"JsonGarbage({self.index}, {self.reason!r})"
