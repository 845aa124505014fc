"""Per-source filters: drop records before they are batched, to cut ingestion cost.

A source in ``AWS_SOURCES`` may list ``"filters"``; each rule is evaluated on the *mapped row*
(the table's column names, the values as they would be sent), in order, and the first rule that
filters a row names it in the counts::

    "filters": [
      {"name": "kms-reads", "table": "AWSCloudTrail",
       "drop": {"all": [{"column": "EventName", "in": ["Decrypt", "GenerateDataKey"]},
                        {"column": "ReadOnly", "eq": true}]}},
      {"name": "internal-accepts", "table": "AWSVPCFlow",
       "drop": {"all": [{"column": "Action", "eq": "ACCEPT"},
                        {"column": "SrcAddr", "cidr": ["10.0.0.0/8"]},
                        {"column": "DstAddr", "cidr": ["10.0.0.0/8"]}]}},
      {"name": "prod-accounts", "table": ["AWSCloudTrail", "AWSGuardDuty"],
       "keep": {"column": "RecipientAccountId", "in": ["111122223333"]}}
    ]

A rule has a ``name`` (unique in the source), the ``table`` (or list of tables) it applies to,
and exactly one of ``drop`` (filter the rows the condition matches) or ``keep`` (filter the rows
it does not match). A condition is ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}`` or
one test ``{"column": C, <op>: value}`` with op one of ``eq``, ``ne``, ``in``, ``notIn``,
``prefix`` (text or list), ``regex`` (searched), ``cidr`` (list of networks, IPv4/IPv6),
``gt``/``ge``/``lt``/``le`` (numbers), ``exists`` (true/false). A test on a column the row does
not have is false (``exists: false`` and ``ne``/``notIn`` excepted, which are true). Every
problem (unknown table or column, bad op, bad regex or CIDR, duplicate name) is reported at
start-up with the source's name and the rule's.

Filtered is never lost: each object's health row counts ``RecordsFiltered`` and
``FilteredByRule`` ({rule: n}); each heartbeat carries the same for the objects this instance
processed since its previous heartbeat.
"""
from __future__ import annotations

import ipaddress
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Test = Callable[[Mapping[str, Any]], bool]
OPS = ("eq", "ne", "in", "notIn", "prefix", "regex", "cidr", "gt", "ge", "lt", "le", "exists")
MAX_DEPTH = 8       # nesting of all/any/not
MAX_VALUES = 10_000  # entries of one in/notIn/cidr list


@dataclass(frozen=True)
class Rule:
    name: str
    tables: frozenset[str]
    keep: bool  # True: filter what does NOT match
    test: Test

    def filters(self, table: str, row: Mapping[str, Any]) -> bool:
        return table in self.tables and self.test(row) != self.keep


@dataclass(frozen=True)
class Filters:
    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def for_table(self, table: str) -> Callable[[str | None, Mapping[str, Any]], str | None] | None:
        """``rule_for`` when a rule names ``table``, else None: looked up once per object,
        not per record."""
        return self.rule_for if any(table in r.tables for r in self.rules) else None

    def rule_for(self, table: str | None, row: Mapping[str, Any]) -> str | None:
        """The name of the first rule that filters ``row`` of ``table``, or None to send it."""
        if table is None:
            return None
        for rule in self.rules:
            if rule.filters(table, row):
                return rule.name
        return None


class _Problems:
    def __init__(self, where: str, errors: list[str]):
        self.where, self.errors = where, errors

    def add(self, rule: str, text: str) -> None:
        self.errors.append(f"{self.where}: filters[{rule}]: {text}")


def parse(raw: Any, where: str, errors: list[str]) -> Filters:
    """The ``filters`` of one source; problems are appended to ``errors`` (config.py)."""
    if raw is None:
        return Filters()
    problems = _Problems(where, errors)
    if not isinstance(raw, list):
        errors.append(f"{where}: filters must be a list of rules")
        return Filters()
    from .schemas import all_schemas

    schemas = {t: {c["name"] for c in doc["columns"]} for t, doc in all_schemas().items()}
    rules, names = [], set()
    for i, item in enumerate(raw):
        label = f"{i}"
        if not isinstance(item, dict):
            problems.add(label, "a rule must be an object {name, table, drop|keep}")
            continue
        name = item.get("name")
        label = f"{i} {name!r}" if name else label
        if not isinstance(name, str) or not name.strip():
            problems.add(label, "needs a name (counted under it)")
            name = f"#{i}"
        elif name in names:
            problems.add(label, "duplicate rule name")
        names.add(name)
        tables = item.get("table")
        tables = [tables] if isinstance(tables, str) else tables
        if not isinstance(tables, list) or not tables or not all(isinstance(t, str)
                                                                 for t in tables):
            problems.add(label, "table must be a table name or a list of them")
            tables = []
        for t in tables:
            if t not in schemas:
                problems.add(label, f"unknown table {t!r}")
        unknown = set(item) - {"name", "table", "drop", "keep", "description"}
        if unknown:
            problems.add(label, f"unknown key(s) {sorted(unknown)}")
        if ("drop" in item) == ("keep" in item):
            problems.add(label, "needs exactly one of drop or keep")
            continue
        keep = "keep" in item
        columns = set().union(*(schemas.get(t, set()) for t in tables)) if tables else set()
        test = _condition(item["keep" if keep else "drop"], columns, problems, label, 0)
        if test is not None:
            rules.append(Rule(name, frozenset(tables), keep, test))
    return Filters(tuple(rules))


def _condition(node: Any, columns: set[str], problems: _Problems, label: str,
               depth: int) -> Test | None:
    if depth > MAX_DEPTH:
        problems.add(label, f"conditions nested deeper than {MAX_DEPTH}")
        return None
    if not isinstance(node, dict) or not node:
        problems.add(label, f"a condition must be an object, not {node!r}")
        return None
    for combinator in ("all", "any"):
        if combinator in node:
            parts = node[combinator]
            if len(node) != 1 or not isinstance(parts, list) or not parts:
                problems.add(label, f"{combinator} must be the only key, with a non-empty list")
                return None
            tests = [_condition(p, columns, problems, label, depth + 1) for p in parts]
            if any(t is None for t in tests):
                return None
            return ((lambda row, ts=tests: all(t(row) for t in ts)) if combinator == "all"
                    else (lambda row, ts=tests: any(t(row) for t in ts)))
    if "not" in node:
        inner = _condition(node["not"], columns, problems, label, depth + 1) \
            if len(node) == 1 else None
        if len(node) != 1:
            problems.add(label, "not must be the only key")
        return None if inner is None else (lambda row, t=inner: not t(row))
    return _predicate(node, columns, problems, label)


def _predicate(node: dict[str, Any], columns: set[str], problems: _Problems,
               label: str) -> Test | None:
    column = node.get("column")
    ops = [k for k in node if k != "column"]
    if not isinstance(column, str):
        problems.add(label, f"a test needs a column: {node!r}")
        return None
    if columns and column not in columns:
        problems.add(label, f"unknown column {column!r} (not in the table's schema)")
        return None
    if len(ops) != 1 or ops[0] not in OPS:
        problems.add(label, f"a test on {column} needs exactly one op of {', '.join(OPS)}")
        return None
    op, value = ops[0], node[ops[0]]
    try:
        check = _op(op, value)
    except (TypeError, ValueError, re.error) as err:
        problems.add(label, f"{column} {op}: {err}")
        return None
    absent_is = op in ("ne", "notIn") or (op == "exists" and value is False)

    def test(row: Mapping[str, Any]) -> bool:
        if column not in row or row[column] is None:
            return absent_is
        return check(row[column])
    return test


def _op(op: str, value: Any) -> Callable[[Any], bool]:
    if op in ("eq", "ne"):
        if isinstance(value, (list, dict)):
            raise TypeError("expects one value (use in/notIn for a list)")
        return (lambda v: _same(v, value)) if op == "eq" else (lambda v: not _same(v, value))
    if op in ("in", "notIn"):
        if not isinstance(value, list) or len(value) > MAX_VALUES:
            raise TypeError(f"expects a list of at most {MAX_VALUES} values")
        wanted = {_key(x) for x in value}
        return (lambda v: _key(v) in wanted) if op == "in" else (lambda v: _key(v) not in wanted)
    if op == "prefix":
        prefixes = tuple([value] if isinstance(value, str) else value)
        if not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise TypeError("expects a text or a list of texts")
        return lambda v: isinstance(v, str) and v.startswith(prefixes)
    if op == "regex":
        if not isinstance(value, str):
            raise TypeError("expects a regular expression text")
        pattern = re.compile(value)
        return lambda v: isinstance(v, str) and pattern.search(v) is not None
    if op == "cidr":
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES:
            raise TypeError("expects a list of networks such as 10.0.0.0/8")
        networks = [ipaddress.ip_network(n, strict=False) for n in values]

        def in_networks(v: Any) -> bool:
            try:
                address = ipaddress.ip_address(str(v).strip())
            except ValueError:
                return False
            return any(address in n for n in networks if n.version == address.version)
        return in_networks
    if op in ("gt", "ge", "lt", "le"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("expects a number")
        compare = {"gt": lambda a: a > value, "ge": lambda a: a >= value,
                   "lt": lambda a: a < value, "le": lambda a: a <= value}[op]
        return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                          and compare(v))
    if not isinstance(value, bool):  # exists
        raise TypeError("expects true or false")
    return lambda v: value


def _key(v: Any) -> Any:
    return ("b", v) if isinstance(v, bool) else v


def _same(a: Any, b: Any) -> bool:
    return _key(a) == _key(b)


# ---- per-rule counts for the heartbeat ---------------------------------------------------------

_lock = threading.Lock()
_since_heartbeat: dict[str, Counter[str]] = {}


def count(source: str, by_rule: Mapping[str, int]) -> None:
    """Add an object's filtered records to what the next heartbeat of ``source`` reports."""
    if not by_rule:
        return
    with _lock:
        _since_heartbeat.setdefault(source, Counter()).update(by_rule)


def drain(source: str) -> dict[str, int]:
    """The per-rule counts since the previous heartbeat of ``source`` (then reset)."""
    with _lock:
        return dict(_since_heartbeat.pop(source, Counter()))
