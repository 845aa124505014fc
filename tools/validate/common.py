"""What every part of tools/validate/ shares: where infra/ and the schemas are, the Stage a
check reports in, the summary printed at the end, and the readers more than one part needs
(pycep-parser's tree of a .bicep file, the stream schemas of shared/schemas/*.json, a tool in
the venv). It checks nothing itself.

A check module imports the paths it reads from here by name, so a test points one check at a
copy of infra/ with ``monkeypatch.setattr(<that module>, "BICEP_DIR", copy)``.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent  # tools/validate
ROOT = PACKAGE.parents[1]  # the repository
BICEP_DIR = ROOT / "infra" / "bicep"
AWS_DIR = ROOT / "infra" / "aws"
SCHEMA_DIR = ROOT / "shared" / "schemas"
MAIN_BICEP = BICEP_DIR / "main.bicep"
PARAMS_EXAMPLE = BICEP_DIR / "main.parameters.example.json"
WORKBOOK_DIR = BICEP_DIR / "workbooks"
VENV_BIN = Path(sys.executable).parent

# the checks import shared.config & co. (the code they hold infra/ to) and tools/gen_bicep_streams
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


@dataclass
class Stage:
    """One check's result: problems fail it, notes are printed only."""

    name: str
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str) -> None:
        self.problems.append(message)


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


_PARSED: dict[tuple[Path, float, int], dict[str, Any]] = {}


def parse_bicep(path: Path) -> dict[str, Any]:
    """pycep's JSON for one file (cached per path and modification; parsing is slow)."""
    from pycep import BicepParser

    st = path.stat()
    key = (path.resolve(), st.st_mtime, st.st_size)
    if key not in _PARSED:
        _PARSED[key] = BicepParser().parse(file_path=path)
    return _PARSED[key]


def function_call(node: Any) -> tuple[str, dict[str, Any]] | None:
    """(function name, parameters) when a pycep node is a call such as ``guid(...)``."""
    if isinstance(node, dict) and isinstance(node.get("function"), dict):
        fn = node["function"]
        return fn.get("type"), fn.get("parameters") or {}
    return None


def load_schemas() -> dict[str, dict[str, Any]]:
    """Table -> its shared/schemas/*.json document (with ``_file``: the file's name)."""
    out = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        doc["_file"] = path.name
        out[doc["table"]] = doc
    return out


def tool_command(executable: str, module: str) -> list[str]:
    """The venv's console script for a tool, or ``python -m <module>`` where there is none."""
    exe = VENV_BIN / executable
    return [str(exe)] if exe.exists() else [sys.executable, "-m", module]


def summary(stages: list[Stage]) -> str:
    lines = []
    for st in stages:
        counts = ", ".join(f"{k}={v}" for k, v in st.counts.items())
        status = "ok  " if st.ok else "FAIL"
        lines.append(f"{status} {st.name:<15} {st.seconds:5.1f}s  {counts}")
        for p in st.problems:
            lines.append(f"       - {p}")
        for n in st.notes:
            lines.append(f"       . {n}")
    failed = [s.name for s in stages if not s.ok]
    lines.append(f"{len(stages) - len(failed)}/{len(stages)} stages passed"
                 + (f"; failed: {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)
