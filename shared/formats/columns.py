"""The one generator of the formats' row mappers: a function written out column by column
from the templates below, compiled once as ``<generated module.name>`` (what tracebacks and
profiles show; ``fn.source`` keeps the text, ``fn.columns`` the declaration). Each value is
read once, a column set only when it has a value: no per-column calls, no dict of Nones. A
format keeps only its declaration; no text of an object ever goes into the code.

* split text lines (ELB and S3 access logs, VPC Flow): ``fields_mapper``, columns ``(index,
  column, kind)`` of the kinds of ``FIELD_CODE``;
* JSON values (GuardDuty, WAF, Route 53, Network Firewall, Security Hub): ``mapper``, columns
  ``(name, alternative, ...)``; an alternative is ``(conversion, path)`` (``VALUE_CODE``, or
  ``const``: the path is the value), the first that gives a value wins (KQL's ``a or b``:
  every conversion gives None or a true value). A path is a root argument of the mapper and
  keys; a key under a value that is not an object gives None.

tests/test_access_mappers.py, test_vpcflow_mapper.py and test_json_mappers.py hold every
mapper to the plain mapping it replaced (key order included, on every fixture record and
thousands of altered ones).
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import base

Path = tuple[Any, ...]
Alternative = tuple[str, Path]
Column = tuple[Any, ...]  # (name, Alternative, ...)


def function(name: str, params: str, body: Sequence[str], scope: dict[str, Any],
             module: str, columns: Sequence[Any]) -> Callable[..., Any]:
    """``def name(params): body`` (lines, indented here) compiled with the names of
    ``scope``, the filename ``<generated module.name>``; ``fn.columns``: its declaration."""
    source = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body)
    env = {"__name__": module, **scope}
    exec(compile(source, f"<generated {module}.{name}>", "exec"), env)  # noqa: S102 - our text
    fn = env[name]
    fn.source, fn.columns = source, tuple(columns)
    return fn


def _caller() -> str:  # the module that called fields_mapper / mapper
    return sys._getframe(2).f_globals.get("__name__", "?")


# ---- split text fields: a str, '-' (no value), or '' / None (split_fields, a short line) ---

# the statements that set row[{col}] from a field {v} that is not '-' (nor empty) when it is a
# value of the column's kind: junk, out of range, NaN and infinity are no value. The second
# try is not dead: str.strip (int64, real) strips U+001C..U+001F, int() and float() do not
_INT = """try:
    x = int({v})
except ValueError:
    x = int64({v})
if x is not None{bounds}:
    row[{col!r}] = x"""
_EPOCH = """x = EPOCHS.get({v})
if x is None:
    x = epoch_text({v})
if x is not None:
    row[{col!r}] = x
"""
FIELD_CODE: dict[str, str] = {
    "text": "row[{col!r}] = {v}",
    "int32": _INT.replace("{bounds}", " and -2147483648 <= x <= 2147483647"),
    "int64": _INT.replace("{bounds}", ""),
    "real": """try:
    x = float({v})
except ValueError:
    x = real({v})
if x is not None and x == x and x != INF and x != NINF:
    row[{col!r}] = x""",
    # (host column, port column) from host:port or [v6]:port
    "hostport": """h, s, p = {v}.rpartition(':')
if s:
    if {v}[0] == '[' and h[-1] == ']':  # {v}[0] is h[0]: h is not empty then
        h = h[1:-1]
    if h:
        row[{col[0]!r}] = h
    if p and p != '-':
{port}
else:
    row[{col[0]!r}] = {v}""",
    # epoch seconds -> ISO, a datetime column that is also TimeGenerated (time_else: only
    # when no column before it set TimeGenerated)
    "time": _EPOCH + "    row['TimeGenerated'] = x",
    "time_else": _EPOCH + """    if row['TimeGenerated'] is None:
        row['TimeGenerated'] = x""",
}
_EPOCHS: dict[str, str | None] = {}  # epoch text -> ISO; flow logs repeat a few values
_EPOCHS_MAX = 65536


def epoch_text(value: str) -> str | None:
    try:
        return _EPOCHS[value]
    except KeyError:
        pass
    try:
        stamp = base.when_epoch(int(value))
    except ValueError:
        stamp = None
    if len(value) <= base.CACHE_KEY_MAX:
        if len(_EPOCHS) >= _EPOCHS_MAX:
            _EPOCHS.clear()
        _EPOCHS[value] = stamp
    return stamp


_FIELD_SCOPE = {"int64": base.int64, "real": base.real, "INF": float("inf"),
                "NINF": float("-inf"), "EPOCHS": _EPOCHS, "epoch_text": epoch_text}


def _indent(text: str, depth: int) -> list[str]:
    return [" " * depth + line for line in text.split("\n")]


def fields_mapper(name: str, width: int, time: str | None,
                  columns: Sequence[tuple[int, Any, str] | str], *, args: str = "f",
                  blank: bool = True, scope: dict[str, Any] | None = None
                  ) -> Callable[..., dict[str, Any]]:
    """``name(args) -> row`` for the split fields ``f`` of one line: ``TimeGenerated`` first
    (the expression ``time`` of ``f``, dropped when None; ``time=None``: set by ``time``
    columns, left None for the caller), then ``columns`` in row order: ``(index, column,
    kind)`` (a field past the end of the line is no value) or statements, as they are.
    ``width``: the fields AWS writes (a shorter line is padded with None); ``blank``: fields
    may be '' or None (not after str.split())."""
    body = [] if not width else [f"if len(f) < {width}:",
                                 f"    f = f + [None] * ({width} - len(f))"]
    body.append(f"row = {{'TimeGenerated': {time}}}")
    test = "if v and v != '-':" if blank else "if v != '-':"
    for column in columns:
        if isinstance(column, str):
            body += column.split("\n")
            continue
        i, col, kind = column
        port = "\n".join(_indent(FIELD_CODE["int32"].format(v="p", col=col[1]), 8)) \
            if kind == "hostport" else ""
        code = FIELD_CODE[kind].format(v="v", col=col, port=port)
        body += [f"v = f[{i}]", test, *_indent(code, 4)]
    if time is not None:
        body += ["if row['TimeGenerated'] is None:", "    del row['TimeGenerated']"]
    body.append("return row")
    return function(name, args, body, {**_FIELD_SCOPE, **(scope or {})}, _caller(), columns)


# ---- JSON values ---------------------------------------------------------------------------

# the statements that set {out} to the value of the expression {src} by a conversion, or to
# None (every conversion gives None for None: no call for a missing field)
VALUE_CODE: dict[str, str] = {
    "raw": "{out} = {src}",  # a dynamic column
    # kql_string gives None or a non-empty str; a non-empty str is itself, an int its digits
    # (an empty str stays when {out} is only tested for truth after)
    "str": """{out} = {src}
if {out}.__class__ is not str: {out} = None if {out} is None else \
str({out}) if {out}.__class__ is int else kql_string({out})
elif not {out}: {out} = None""",
    "bool": """{out} = {src}
if {out}.__class__ is not bool and {out} is not None: {out} = kql_bool({out})""",
    "int32": """{out} = {src}
if {out}.__class__ is not int or not -2147483648 <= {out} <= 2147483647: \
{out} = None if {out} is None else int32({out})""",
    # a float or int well inside the int range: int() is toint()
    "trunc32": """{out} = {src}
if ({out}.__class__ is float or {out}.__class__ is int) and \
-2147483649.0 < {out} < 2147483648.0: {out} = int({out})
elif {out} is not None: {out} = trunc_int32({out})""",
    # the cache of base.when read inline; a miss (or a cached None) asks
    "when": """{out} = {src}
if {out}.__class__ is str: {out} = WHEN_GET({out}) or when({out})
elif {out} is not None: {out} = when({out})""",
    "epoch": """{out} = {src}
if {out} is not None: {out} = when_epoch({out})""",
    "epoch_ms": """{out} = {src}
if {out} is not None: {out} = when_epoch_ms({out})""",
}


def _when_epoch_ms(value: Any) -> str | None:
    return base.when_epoch(value, millis=True)


_EMPTY: dict[str, Any] = {}  # read only: what a key under a non-object reads from
_JSON_SCOPE = {
    "kql_string": base.kql_string, "kql_bool": base.kql_bool, "when": base.when,
    "WHEN_GET": base._WHEN.get, "when_epoch": base.when_epoch,
    "when_epoch_ms": _when_epoch_ms, "int32": base.int32,
    "trunc_int32": base.trunc_int32, "EMPTY": _EMPTY}


def _value_code(conv: str, source: str, out: str, direct: bool = False) -> list[str]:
    """The lines of ``VALUE_CODE[conv]``; ``direct``: ``out`` is only tested for truth after."""
    lines = VALUE_CODE[conv].format(out=out, src=source).split("\n")
    return lines[:-1] if direct and conv == "str" else lines


def mapper(name: str, roots: Sequence[str], columns: Sequence[Column], *,
           preludes: Sequence[tuple[str, str]] = (),
           env: dict[str, Any] | None = None) -> Callable[..., dict[str, Any]]:
    """A function ``name(*roots) -> row`` for ``columns``; ``preludes`` are ``(variable,
    expression)`` computed first (roots for paths), with the names of ``env`` in scope."""
    body = [f"{var} = {expr}" for var, expr in preludes]
    # how many keys are read from each object (a root or one under it): an object read 3
    # times or more has its bound .get kept in a local
    reads: dict[Path, int] = {}
    for column in columns:
        for conv, path in column[1:]:
            if conv != "const":
                for n in range(2, len(path) + 1):
                    if n == len(path) or path[:n] not in reads:
                        reads[path[:n - 1]] = reads.get(path[:n - 1], 0) + 1
    # the objects under the roots that paths read from, each fetched once
    holders: dict[Path, str] = {}
    getters: dict[Path, str] = {}

    def get(path: Path) -> str:
        """The .get of the object at ``path`` (fetched, and bound when read often)."""
        if path in getters:
            return getters[path]
        var = path[0] if len(path) == 1 else holder(path)
        if reads.get(path, 0) < 3:
            return f"{var}.get"
        getters[path] = f"g_{var}"
        body.append(f"g_{var} = {var}.get")
        return getters[path]

    def holder(path: Path) -> str:
        if path not in holders:
            fetch = get(path[:-1])
            var = f"d{len(holders)}"
            holders[path] = var
            body.append(f"{var} = {fetch}({path[-1]!r})")
            body.append(f"if {var}.__class__ is not dict and not isinstance({var}, dict): "
                        f"{var} = EMPTY")
        return holders[path]

    def source(path: Path) -> str:
        if len(path) == 1:
            return path[0]
        return f"{get(path[:-1])}({path[-1]!r})"

    uses: dict[Alternative, int] = {}
    for column in columns:
        for alt in column[1:]:
            if alt[0] != "const":
                uses[alt] = uses.get(alt, 0) + 1
    shared: dict[Alternative, str] = {}  # values used by more than one column: computed once

    def value_of(alt: Alternative) -> str:
        if alt in shared:
            return shared[alt]
        var = f"s{len(shared)}"
        body.extend(_value_code(alt[0], source(alt[1]), var))
        shared[alt] = var
        return var

    for column in columns:
        col, alts = column[0], column[1:]
        if alts[0][0] == "const":
            body.append(f"row[{col!r}] = {alts[0][1]!r}")
            continue
        first = alts[0]
        if uses[first] > 1 or len(alts) > 1:
            body.append(f"v = {value_of(first)}")
        else:
            body.extend(_value_code(first[0], source(first[1]), "v", direct=True))
        for alt in alts[1:]:
            if uses[alt] > 1:
                var = value_of(alt)
                body.append(f"if v is None: v = {var}")
            else:  # needed only when the ones before gave nothing
                src = source(alt[1])  # (its holders fetched before the test)
                body.append("if v is None:")
                body.extend("    " + ln for ln in _value_code(alt[0], src, "v"))
        if first[0] == "str" and len(alts) == 1:
            body.append(f"if v: row[{col!r}] = v")  # None or a non-empty str
        else:
            body.append(f"if v is not None: row[{col!r}] = v")
    return function(name, ", ".join(roots), ["row = {}", *body, "return row"],
                    {**_JSON_SCOPE, **(env or {})}, _caller(), columns)
