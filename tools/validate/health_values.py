"""Health values: the literals the KQL queries compare the health table with, held to what the
code writes there.

The code's side is read from its source with ast (nothing is imported or run):
shared/health.py (the row dicts, PollStats' circuit state), shared/pipeline.py (the outcomes
passed to ``finish(...)``) and shared/ingestion.py (what ``CircuitBreaker.state`` returns). The
queries' side is every workbook and alert query tools/validate/kql.py finds in infra/ (the DCR
transforms never read the health table). A query's literals are found with regular
expressions; Kusto.Language's analysis of the same queries is the kql stage.

Stage (tools/validate_infra.py runs it):

* health-values  every Kind / Outcome / CircuitState literal that a workbook or alert query
                 compares with is one the code writes, per Kind; comparisons the check cannot
                 read (has, contains, ...) fail; the workbook names every object Outcome the
                 code writes
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from .common import ROOT, Stage, rel
from .kql import all_queries

HEALTH_TABLE = "AWSS3ConnectorHealth_CL"
HEALTH_PY = ROOT / "shared" / "health.py"
PIPELINE_PY = ROOT / "shared" / "pipeline.py"
INGESTION_PY = ROOT / "shared" / "ingestion.py"
HEALTH_COLUMNS = ("Kind", "Outcome", "CircuitState")


def _string_values(node: ast.AST, scope: ast.AST, where: str) -> set[str]:
    """The strings an expression can evaluate to: literals, `a if c else b`, `a or b`, and
    names assigned in ``scope`` (the enclosing function or module)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _string_values(node.body, scope, where) | _string_values(node.orelse, scope, where)
    if isinstance(node, ast.BoolOp):
        return set().union(*(_string_values(v, scope, where) for v in node.values))
    if isinstance(node, ast.Name):
        values = [a.value for a in ast.walk(scope)
                  if isinstance(a, ast.Assign | ast.AnnAssign) and a.value is not None
                  and any(isinstance(t, ast.Name) and t.id == node.id
                          for t in (a.targets if isinstance(a, ast.Assign) else [a.target]))]
        if values:
            return set().union(*(_string_values(v, scope, where) for v in values))
    raise ValueError(f"{where}: cannot tell which strings {ast.unparse(node)!r} can be "
                     "(update code_health_values in tools/validate/health_values.py)")


def _functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


def code_health_values(health: Path = HEALTH_PY, pipeline: Path = PIPELINE_PY,
                       ingestion: Path = INGESTION_PY) -> dict[str, set[str]]:
    """Values the code writes to the health table, read from its source with ast:

    * ``Kind``: the "Kind" literal of each row() dict in shared/health.py;
    * ``Outcome`` per Kind: the "Outcome" value of that dict when it is literal (heartbeat:
      ``"error" if ... else "ok"``), else the first argument of every ``<stats>.finish(...)``
      in shared/pipeline.py (object rows);
    * ``CircuitState``: PollStats' default plus what ``CircuitBreaker.state`` returns.
    """
    values: dict[str, set[str]] = {"Kind": set(), "CircuitState": set()}
    htree = ast.parse(health.read_text())
    ptree = ast.parse(pipeline.read_text())
    finish_outcomes: set[str] = set()
    for fn in _functions(ptree):
        for call in ast.walk(fn):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "finish" and call.args):
                finish_outcomes |= _string_values(call.args[0], fn,
                                                  f"{rel(pipeline)}:{call.lineno}")
    for fn in _functions(htree):
        for d in ast.walk(fn):
            if not isinstance(d, ast.Dict):
                continue
            row = {k.value: v for k, v in zip(d.keys, d.values, strict=True)
                   if isinstance(k, ast.Constant) and isinstance(k.value, str)}
            kind = row.get("Kind")
            if not (isinstance(kind, ast.Constant) and isinstance(kind.value, str)):
                continue
            values["Kind"].add(kind.value)
            outcome = row.get("Outcome")
            if isinstance(outcome, ast.Attribute):  # self.outcome: set by finish(...)
                values[kind.value] = set(finish_outcomes)
            elif outcome is not None:
                values[kind.value] = _string_values(outcome, fn, f"{rel(health)}:{d.lineno}")
    for cls in (n for n in ast.walk(htree) if isinstance(n, ast.ClassDef)):
        for st in cls.body:
            if (isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name)
                    and st.target.id == "circuit_state" and st.value is not None):
                values["CircuitState"] |= _string_values(st.value, cls, rel(health))
    itree = ast.parse(ingestion.read_text())
    for cls in (n for n in ast.walk(itree) if isinstance(n, ast.ClassDef)
                and n.name == "CircuitBreaker"):
        for fn in (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "state"):
            for ret in (r for r in ast.walk(fn) if isinstance(r, ast.Return) and r.value):
                values["CircuitState"] |= _string_values(ret.value, fn, rel(ingestion))
    for key in ("Kind", "CircuitState", *sorted(values["Kind"])):
        if not values.get(key):
            raise ValueError(f"found no {key} values in the code (update code_health_values "
                             "in tools/validate/health_values.py)")
    return values


_KQL_STRING = r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"


def _unquote(literal: str) -> str:
    return literal[1:-1]


def kql_literals(query: str, column: str) -> tuple[set[str], list[str]]:
    """Strings ``column`` is compared with (==, !=, =~, !~, in, !in, in~, !in~) in ``query``,
    and the comparisons that cannot be checked that way (has, contains, startswith, ...)."""
    col = rf"(?<![\w.]){re.escape(column)}(?![\w])"
    found: set[str] = set()
    for m in re.finditer(rf"{col}\s*(?:==|!=|=~|!~)\s*({_KQL_STRING})", query):
        found.add(_unquote(m.group(1)))
    for m in re.finditer(rf"({_KQL_STRING})\s*(?:==|!=|=~|!~)\s*{col}", query):
        found.add(_unquote(m.group(1)))
    for m in re.finditer(rf"{col}\s+!?in~?\s*\(([^)]*)\)", query):
        found |= {_unquote(s) for s in re.findall(_KQL_STRING, m.group(1))}
    unchecked = [m.group(0) for m in re.finditer(
        rf"{col}\s+!?(?:has\w*|contains\w*|startswith\w*|endswith\w*|matches\s+regex)\b",
        query)]
    return found, unchecked


def check_health_values(queries: list[dict[str, Any]] | None = None,
                        values: dict[str, set[str]] | None = None) -> Stage:
    """Workbook and alert queries compare Kind / Outcome / CircuitState only with values the
    code writes (Outcome per the Kind the query selects), and the workbook names every object
    Outcome the code writes."""
    stage = Stage("health-values")
    try:
        values = values if values is not None else code_health_values()
    except (OSError, SyntaxError, ValueError) as err:
        stage.fail(str(err))
        return stage
    if queries is None:
        queries = [q for q in all_queries()[0] if "transformKql" not in q["name"]]
    kinds = values["Kind"]
    every_outcome = set().union(*(values[k] for k in kinds))
    checked = literals = 0
    workbook_outcomes: set[str] = set()
    for q in queries:
        if HEALTH_TABLE not in q["query"]:
            continue
        checked += 1
        name = q["name"]
        found = {c: kql_literals(q["query"], c) for c in HEALTH_COLUMNS}
        for column, (_, unchecked) in found.items():
            for text in unchecked:
                stage.fail(f"{name}: `{text}`: compare {column} with ==, != or in (...) so the "
                           "value can be checked against the code")
        q_kinds, _ = found["Kind"]
        for kind in sorted(q_kinds - kinds):
            stage.fail(f"{name}: Kind {kind!r} is never written (code: {sorted(kinds)})")
        selected = q_kinds & kinds
        allowed = set().union(*(values[k] for k in selected)) if selected else every_outcome
        outcomes, _ = found["Outcome"]
        for outcome in sorted(outcomes - allowed):
            which = " or ".join(sorted(selected)) if selected else "any Kind"
            stage.fail(f"{name}: Outcome {outcome!r} is never written for {which} rows "
                       f"(code: {sorted(allowed)})")
        states, _ = found["CircuitState"]
        for state in sorted(states - values["CircuitState"]):
            stage.fail(f"{name}: CircuitState {state!r} is never written "
                       f"(code: {sorted(values['CircuitState'])})")
        literals += sum(len(v) for v, _ in found.values())
        if "workbook" in name:
            workbook_outcomes |= outcomes
    if any("workbook" in q["name"] for q in queries):
        for outcome in sorted(values.get("object", set()) - workbook_outcomes):
            stage.fail(f"workbook: no query names the object Outcome {outcome!r} the code writes "
                       "(add it to the outcome-totals tile)")
    stage.counts["queries"] = checked
    stage.counts["literals"] = literals
    for key in ("Kind", "CircuitState", *sorted(kinds)):
        stage.counts[f"code_{key.lower()}"] = len(values[key])
    return stage
