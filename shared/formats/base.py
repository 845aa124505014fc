"""What a log format is: detection hints, a parser and the table it maps to.

A parser receives the object's ``TextSource`` and an ``ObjectContext`` and yields, in order,
one item per input record: a mapped row (``dict`` of the table's columns, datetimes as ISO
strings, ``TimeGenerated`` from the event's own time), a ``Rejected`` (the record could not be
read; it is dead-lettered with the reason), or a ``Skipped`` (not an event, e.g. a
CONTROL_MESSAGE; counted, not sent). A parser raises ``FormatError`` when the content as a
whole does not fit the format (wrong guess, truncated file).

A format whose objects can hold records of several tables (``Format.tables``: Network Firewall
alert/flow/TLS events, EventBridge streams of findings, CloudWatch Logs payloads of several
log groups) yields a record of another table as ``Routed(table, row)``; its own table's rows
stay plain dicts. The pipeline sends each table's rows to that table's DCR stream and applies
the provenance rules to every routed record (``provenance``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Union

import orjson

from ..errors import FormatError
from ..reader import JsonGarbage, TextSource

MAX_RAW = 4096  # characters of a rejected record kept for the person who reads the reason


@dataclass(frozen=True)
class ObjectContext:
    source: str
    bucket: str
    key: str
    event_time: str | None = None  # S3 event time (ISO), fallback when a line has no time

    @property
    def account_id(self) -> str | None:
        m = re.search(r"AWSLogs/(?:o-[a-z0-9]+/)?(?:aws-account-id=)?(\d{12})/", self.key)
        return m.group(1) if m else None


@dataclass(frozen=True)
class Rejected:
    position: int  # 1-based line or record number within the object
    reason: str
    raw: str = ""

    def __post_init__(self) -> None:
        if len(self.raw) > MAX_RAW:
            object.__setattr__(self, "raw", self.raw[:MAX_RAW] + "...")


@dataclass(frozen=True)
class Skipped:
    position: int
    reason: str


class Routed(tuple):
    """A mapped row of another table than the format's own: ``Routed(table, row)``. A tuple
    (two slots, no per-record dict) so a mixed object costs one small object per record."""

    __slots__ = ()

    def __new__(cls, table: str, row: dict[str, Any]) -> Routed:
        return tuple.__new__(cls, (table, row))

    @property
    def table(self) -> str:
        return self[0]

    @property
    def row(self) -> dict[str, Any]:
        return self[1]


Item = Union[dict[str, Any], Rejected, Skipped, Routed]
Parser = Callable[[TextSource, ObjectContext], Iterator[Item]]


@dataclass(frozen=True)
class Format:
    """A log format.

    ``key_pattern`` recognises the S3 key layout AWS uses; ``sniff(head)`` confirms from the
    first 64 KB of text. ``table`` is None for objects that are deliberately not ingested
    (CloudTrail digest files): they are skipped and counted.
    """

    name: str
    table: str | None
    parse: Parser
    sniff: Callable[[str], bool]
    key_pattern: re.Pattern[str] | None = None
    description: str = ""
    # True: may be chosen from content alone when no key pattern matched
    content_detectable: bool = True
    tags: tuple[str, ...] = field(default_factory=tuple)
    # Formats whose objects are binary (VPC Flow Logs Parquet) cannot be read from decoded
    # text: the caller passes the whole decompressed object as bytes instead.
    parse_bytes: Callable[[bytes, ObjectContext], Iterator[Item]] | None = None
    # the other tables this format's parser may route records to (``Routed`` items); empty:
    # every row is of ``table`` (the single-table path, as fast as it was)
    tables: tuple[str, ...] = ()
    # formats with the same envelope (e.g. "cloudwatch-logs", "eventbridge") parse the same
    # objects and route each other's records: detection may pick one for another
    envelope: str = ""

    @property
    def routes(self) -> tuple[str, ...]:
        """Every table a record of this format's objects may go to, its own first."""
        return ((self.table,) if self.table else ()) + self.tables


# ---- helpers shared by the mappers -------------------------------------------------------

def iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_from_epoch(seconds: float | int | str) -> str:
    return iso(datetime.fromtimestamp(float(seconds), tz=UTC))


def iso_from_epoch_ms(ms: float | int | str) -> str:
    return iso(datetime.fromtimestamp(float(ms) / 1000.0, tz=UTC))


# Text that is already what iso_from_text gives (UTC, "Z", whole seconds or 6 digits of a
# nonzero fraction): it is kept as is once datetime accepts it, without the round trip
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?Z", re.ASCII)


def iso_from_text(value: str) -> str:
    """Normalise an ISO-8601 timestamp (Z or offset) to UTC ISO; raises ValueError."""
    # the usual shape, YYYY-MM-DDTHH:MM:SSZ, told by its punctuation alone (datetime checks
    # the digits: it reads ASCII digits only): what _CANONICAL would match, without a regex
    if value.__class__ is str and len(value) == 20 and value[4::3] == "--T::Z":
        try:
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    if _CANONICAL.fullmatch(value):
        try:
            datetime.fromisoformat(value)  # a valid date and time (else: the error below)
            return value
        except ValueError:
            pass
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return iso(dt)


def to_int(value: Any) -> int | None:
    """'-' / '' / None -> None; ints and numeric strings -> int; raises ValueError otherwise."""
    if value is None or value == "-" or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    return int(str(value).strip())


def to_float(value: Any) -> float | None:
    if value is None or value == "-" or value == "":
        return None
    return float(value)


def dash_none(value: Any) -> Any:
    return None if value in ("-", "") else value


# ---- lenient converters: a bad value never raises, it becomes None (the field is dropped) --

INT32 = (-2**31, 2**31 - 1)


def int32(value: Any) -> int | None:
    """A value for an ``int`` column, or None when it is missing, not a number or too big."""
    number = int64(value)
    if number is None or not INT32[0] <= number <= INT32[1]:
        return None
    return number


def int64(value: Any) -> int | None:
    """A value for a ``long`` column (whole numbers only; '-', '' and junk give None)."""
    if value.__class__ is int:
        return value
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    if not text or text == "-":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def trunc_int32(value: Any) -> int | None:
    """KQL ``toint()`` of a real: truncates toward zero (GuardDuty severity 8.9 -> 8)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    result = int(number)
    return result if INT32[0] <= result <= INT32[1] else None


def real(value: Any) -> float | int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    if not text or text == "-":
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def kql_string(value: Any) -> str | None:
    """``tostring()`` as KQL does it: numbers as text, objects as compact JSON.

    None and the empty string give None (KQL yields "", which an analyst cannot tell apart
    from an absent value; absent keeps the row small).
    """
    if value.__class__ is str:
        return value or None
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return compact_json(value)


def kql_bool(value: Any) -> bool | None:
    """``tobool()``: true/false, "true"/"false" (any case), 1/0 numbers; anything else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("1", "0"):
            return lowered == "1"
    return None


def dash(value: str | None) -> str | None:
    """Access-log text field: '-' and '' mean 'no value'."""
    return None if value is None or value in ("-", "") else value


# Recent answers of when / when_epoch: the times of one log object repeat (a second holds many
# records). Bounded; plain dicts are safe to share between the worker's threads.
_WHEN: dict[Any, str | None] = {}
_WHEN_EPOCH: dict[Any, str | None] = {}
_CACHE_MAX = 8192
# a value longer than this is never remembered (a time is ~20-30 characters; a hostile field
# may be up to a line or a JSON value long, and 8,192 of those would not be bounded memory)
CACHE_KEY_MAX = 64


def when(value: Any) -> str | None:
    """An ISO-8601 text or a datetime column value, or None when it is not a valid time."""
    if not isinstance(value, str):
        return None
    try:
        return _WHEN[value]
    except KeyError:
        pass
    result = None
    if value.strip():
        try:
            result = iso_from_text(value)
        except ValueError:
            pass
    if len(value) <= CACHE_KEY_MAX:
        if len(_WHEN) >= _CACHE_MAX:
            _WHEN.clear()
        _WHEN[value] = result
    return result


def when_epoch(value: Any, *, millis: bool = False) -> str | None:
    """Epoch seconds (or milliseconds) as number or text -> ISO, None when not a time."""
    if value is None or isinstance(value, bool):
        return None
    key = (value, millis)
    try:
        return _WHEN_EPOCH[key]
    except (KeyError, TypeError):  # TypeError: unhashable (a list), not a time either
        pass
    try:
        number = float(value)
        result = iso_from_epoch_ms(number) if millis else iso_from_epoch(number)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    if len(_WHEN_EPOCH) >= _CACHE_MAX:
        _WHEN_EPOCH.clear()
    _WHEN_EPOCH[key] = result
    return result


def compact(row: dict[str, Any]) -> dict[str, Any]:
    """Drop the columns without a value (the contract: omit None)."""
    return {k: v for k, v in row.items() if v is not None}


_KEY_TIME = re.compile(r"_(\d{8}T\d{4})(\d{2})?Z(?=[_.])")


def key_time(key: str) -> str | None:
    """The timestamp AWS puts in a log file name (``..._20180620T1620Z_...``), as ISO."""
    m = _KEY_TIME.search(key.rsplit("/", 1)[-1])
    if not m:
        return None
    try:
        dt = datetime.strptime(m.group(1) + (m.group(2) or "00"), "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    return iso(dt)


# ---- framing helpers -----------------------------------------------------------------------

_TOKEN = re.compile(r'\[[^\]]*\](?=\s|$)|(?:"[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]+|")+')
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')


def split_fields(line: str) -> list[str]:
    """Split an access-log line on spaces, keeping ``"quoted text"`` and ``[bracketed]`` whole.

    A field that is one quoted string loses its quotes (``\\"`` inside becomes ``"``); a field
    that merely contains quotes (NLB's ``"h2","http/1.1"``) is kept as written; brackets are
    removed.
    """
    if '"' not in line and "[" not in line:
        return line.split()  # what the tokenizer gives when nothing is quoted or bracketed
    if "\\" not in line:
        fast = _split_plain(line)
        if fast is not None:
            return fast
    out = []
    append = out.append
    for token in _TOKEN.findall(line):
        first = token[0]
        if first == "[" and token[-1] == "]" and len(token) > 1:
            append(token[1:-1])
        elif first == '"':
            inner = token[1:-1]
            if len(token) > 1 and token[-1] == '"' and '"' not in inner and "\\" not in inner:
                append(inner)  # what _QUOTED.fullmatch gives for a plain quoted string
                continue
            q = _QUOTED.fullmatch(token)
            append((q.group(1).replace('\\"', '"') if "\\" in token else q.group(1))
                   if q else token)
        else:
            append(token)
    return out


def _split_plain(line: str) -> list[str] | None:
    """``split_fields`` of a line without backslashes by str methods alone, or None when a
    quote or bracket is not a whole field (the tokenizer decides then): at most one
    ``[bracketed]`` field before any quote, every ``"quoted"`` field set apart by whitespace,
    or (NLB) no whitespace inside any quotes."""
    out: list[str] | None = None
    if "[" in line or "]" in line:
        i = line.find("[")
        j = line.find("]", i + 1)
        if (i < 0 or j < 0 or line.count("[") != 1 or line.count("]") != 1
                or '"' in line[:j] or (i and not line[i - 1].isspace())
                or (j + 1 < len(line) and not line[j + 1].isspace())):
            return None
        out = line[:i].split()
        out.append(line[i + 1:j])
        line = line[j + 1:]
    segs = line.split('"')  # even indexes: outside quotes; odd: a quoted field's text
    if out is None and len(segs) > 2 and " " not in segs[1]:
        fields = _split_unspaced(line, segs)  # NLB: no quoted text holds a space
        if fields is not None:
            return fields
    fields = _split_segments(segs) if len(segs) & 1 else None  # even: a quote is not closed
    if fields is None:
        return None if out is not None else _split_unspaced(line, segs)
    return fields if out is None else out + fields


def _split_segments(segs: list[str]) -> list[str] | None:
    """The fields of a line split at its (balanced) quotes, or None when a quoted text is not
    set apart by whitespace: before an opening quote whitespace or the start of the line,
    after a closing quote whitespace or the end of the line."""
    outside = segs[0]
    out = outside.split()
    last = len(segs) - 1
    if not last:
        return out
    if outside and not outside[-1].isspace():
        return None
    append = out.append
    for k in range(2, last + 1, 2):
        append(segs[k - 1])
        outside = segs[k]
        if outside:
            if not outside[0].isspace() or (k < last and not outside[-1].isspace()):
                return None
            out += outside.split()
        elif k < last:
            return None  # two quoted texts touch: ""
    return out


def _split_unspaced(line: str, segs: list[str]) -> list[str] | None:
    """A line (no brackets, no backslashes) whose closed quotes hold no whitespace (NLB's
    ``"h2","http/1.1"``): the tokenizer's fields are str.split's, a token that is one quoted
    string without its quotes."""
    inside = "".join(segs[1:-1:2])
    if inside.split() != ([inside] if inside else []):
        return None  # whitespace inside quotes
    head = segs[0]
    if head[-1:] == " ":  # the first quote starts a token: the tokens before it hold none
        fields = head.split()
        line = line[len(head):]
    else:
        fields = []
    fields += [t[1:-1] if t[0] == '"' and len(t) > 1 and t[-1] == '"' and '"' not in t[1:-1]
               else t for t in line.split()]
    return fields


LEADING_GARBAGE = 3  # bad values tolerated before the first good one (then: not JSON at all)


def json_records(text: TextSource, what: str = "object") -> Iterator[tuple[int, Any]]:
    """(position, value) for each JSON value of a JSON-lines / concatenated-JSON object.

    Non-JSON stretches come through as ``JsonGarbage`` values for the caller to reject one by
    one, also before the first good value (a bad first line does not condemn the object); when
    the first ``LEADING_GARBAGE`` values (or all of them) are not JSON the content as a whole
    is not what the format expects: ``FormatError``.
    """
    position = 0
    leading: list[Any] = []  # garbage (or bare scalars) before the first object or array
    seen_json = False
    for value in text.json_values():
        if not seen_json:
            if not isinstance(value, (dict, list)):
                leading.append(value)
                if len(leading) >= LEADING_GARBAGE:
                    break
                continue
            seen_json = True
            for bad in leading:
                position += 1
                yield position, bad
        position += 1
        yield position, value
    if not seen_json and leading:
        bad = [v for v in leading if isinstance(v, JsonGarbage)]
        if not bad:
            raise FormatError(f"{what} holds no JSON objects (starts with {leading[0]!r:.80})")
        raise FormatError(f"{what} is not JSON: {bad[0].reason} in {bad[0].raw.strip()[:80]!r}")


def tolerant_sniff(sniff: Callable[[str], bool], head: str) -> bool:
    """``sniff(head)``, or the same on the head without its first line when that line is not
    JSON (a JSON-lines object whose first line is broken is still that format)."""
    if sniff(head):
        return True
    first, sep, rest = head.lstrip().partition("\n")
    if not sep or not rest.strip():
        return False
    try:
        json.loads(first)
        return False  # the first line is fine: the content really does not match
    except (ValueError, RecursionError):
        return sniff(rest)


def garbage(position: int, value: JsonGarbage, what: str) -> Rejected:
    return Rejected(position, f"{what}: {value.reason}", value.raw)


# json.dumps(value, separators=(",", ":"), ensure_ascii=False[, default=str]) without building
# a JSONEncoder on every call
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_json_text = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
# orjson writes what json writes (strings, ints, keys, nesting) except: NaN/Infinity (null
# instead), floats that json writes with an exponent (orjson: 0.00001, 1.5e-7, 1e16 alike:
# every such float starts the text or follows a delimiter, and has an "e" or is 0.0000...),
# and what it refuses (integers over 64 bits, non-string keys, lone surrogates: TypeError)
_MAYBE_OTHER_FLOAT = re.compile(rb"(?:^|[:,\[])-?(?:0\.0000|\d+(?:\.\d+)?[eE])")
# bytes.translate table: digits -> "0", e/E -> "e", "." kept, every other byte -> " "
_FLOAT_MARKS = bytes(48 if 48 <= c <= 57 else 101 if c in (69, 101) else 46 if c == 46 else 32
                     for c in range(256))


def compact_json(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``, the same text, by
    orjson where it writes the same text (a few times faster), else by json."""
    try:
        out = orjson.dumps(value)
    except TypeError:
        return _compact_json(value)
    text = out.decode()
    if "null" in text:
        return _compact_json(value)  # a null may have been a NaN
    # a float that may differ has a digit right before an "e" or is 0.0000...: looked for in
    # one translated copy first (a regex scan costs more than the rest of this function)
    marks = out.translate(_FLOAT_MARKS)
    if (marks.find(b"0e") >= 0 or marks.find(b"0.0000") >= 0) and \
            _MAYBE_OTHER_FLOAT.search(out):
        return _compact_json(value)
    return text


def json_text(value: Any) -> str:
    return _json_text(value)


# ---- access-log lines (ELB, S3 access; their mappers: columns.fields_mapper) ---------------

def field_lines(text: TextSource, fmt: str, minimum: int,
                mapper: Callable[[list[str]], dict[str, Any]]) -> Iterator[Item]:
    """Space-separated access-log lines (ELB, S3): each line split by ``split_fields`` and
    mapped; a line with fewer than ``minimum`` fields or no valid time is rejected alone."""
    split = split_fields
    for n, line in enumerate(text.lines(), start=1):
        if not line or line.isspace():  # not line.strip(): no copy of every line
            continue
        fields = split(line)
        if len(fields) < minimum:
            yield Rejected(n, f"{fmt} line has {len(fields)} fields, expected at least "
                              f"{minimum}", line)
            continue
        row = mapper(fields)
        if "TimeGenerated" not in row:
            yield Rejected(n, f"{fmt} line has no valid time", line)
            continue
        yield row
