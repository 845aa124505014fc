"""Row mappers written out from a list of columns: each value read once, a column set only
when it has a value, no intermediate dict to filter (what ``cloudtrail.map_event`` does by
hand, for the JSON formats whose rows are plain column <- field mappings).

A column is ``(name, alternative, ...)``; an alternative is ``(conversion, path)``, the first
one that gives a value wins (KQL's ``a or b`` of the DCR transforms: every conversion gives
None or a value that is true, so "first not None" is "or"). A path is a root argument of the
mapper followed by keys; a key under a value that is not an object gives None (``_get``).
Conversions are the lenient ones of ``base``:

* ``str``: ``kql_string``; ``raw``: the value as it is (dynamic columns);
* ``bool``: ``kql_bool``; ``when``: ``when``; ``epoch`` / ``epoch_ms``: ``when_epoch``;
* ``int32``: ``int32``; ``trunc32``: ``trunc_int32``; ``const``: the path is the value.

The generated code is the plain mapping unrolled (``source`` keeps it for reading); each mapper
is held to the mapping it replaced by ``tests/test_json_mappers.py`` (the same rows, key order
included, on every fixture record and thousands of altered ones).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import base

Path = tuple[Any, ...]
Alternative = tuple[str, Path]
Column = tuple[Any, ...]  # (name, Alternative, ...)

_CALLS = {"when": "when", "epoch": "when_epoch", "epoch_ms": "when_epoch_ms",
          "int32": "int32", "trunc32": "trunc_int32", "str": "kql_string",
          "bool": "kql_bool"}
_EMPTY: dict[str, Any] = {}  # read only: what a key under a non-object reads from


def _when_epoch_ms(value: Any) -> str | None:
    return base.when_epoch(value, millis=True)


def _value_code(conv: str, source: str, out: str, direct: bool = False) -> list[str]:
    """Lines that set ``out`` to ``conv`` of the expression ``source`` (every conversion
    gives None for None: no call for a missing field). ``direct``: ``out`` is only tested
    for truth after (an empty str need not become None)."""
    if conv == "raw":
        return [f"{out} = {source}"]
    if conv == "str":  # kql_string gives None or a non-empty str; a non-empty str is itself,
        # an int its digits
        return [f"{out} = {source}",
                f"if {out}.__class__ is not str: {out} = None if {out} is None else "
                f"str({out}) if {out}.__class__ is int else kql_string({out})",
                *(() if direct else (f"elif not {out}: {out} = None",))]
    if conv == "bool":
        return [f"{out} = {source}",
                f"if {out}.__class__ is not bool and {out} is not None: "
                f"{out} = kql_bool({out})"]
    if conv == "int32":
        return [f"{out} = {source}",
                f"if {out}.__class__ is not int or not -2147483648 <= {out} <= 2147483647: "
                f"{out} = None if {out} is None else int32({out})"]
    if conv == "trunc32":  # a float or int well inside the int range: int() is toint()
        return [f"{out} = {source}",
                f"if ({out}.__class__ is float or {out}.__class__ is int) and "
                f"-2147483649.0 < {out} < 2147483648.0: {out} = int({out})",
                f"elif {out} is not None: {out} = trunc_int32({out})"]
    if conv == "when":  # the cache of base.when read inline; a miss (or a cached None) asks
        return [f"{out} = {source}",
                f"if {out}.__class__ is str: {out} = WHEN_GET({out}) or when({out})",
                f"elif {out} is not None: {out} = when({out})"]
    return [f"{out} = {source}", f"if {out} is not None: {out} = {_CALLS[conv]}({out})"]


def mapper(name: str, roots: Sequence[str], columns: Sequence[Column], *,
           preludes: Sequence[tuple[str, str]] = (),
           env: dict[str, Any] | None = None) -> Callable[..., dict[str, Any]]:
    """A function ``name(*roots) -> row`` for ``columns``; ``preludes`` are ``(variable,
    expression)`` computed first (roots for paths), with the names of ``env`` in scope."""
    lines = [f"def {name}({', '.join(roots)}):"]
    body: list[str] = []
    for var, expr in preludes:
        body.append(f"{var} = {expr}")
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
    lines.append("    row = {}")
    lines += ["    " + ln for ln in body]
    lines.append("    return row")
    code = "\n".join(lines) + "\n"
    scope: dict[str, Any] = {
        "kql_string": base.kql_string, "kql_bool": base.kql_bool, "when": base.when,
        "WHEN_GET": base._WHEN.get, "when_epoch": base.when_epoch,
        "when_epoch_ms": _when_epoch_ms, "int32": base.int32, "trunc_int32": base.trunc_int32,
        "EMPTY": _EMPTY, **(env or {})}
    exec(compile(code, f"<columns {name}>", "exec"), scope)  # noqa: S102 - our own text
    fn = scope[name]
    fn.source = code
    fn.columns = tuple(columns)
    return fn
