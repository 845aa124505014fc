"""checkov: its built-in rules on both sides, the bicep framework on infra/bicep and the
cloudformation framework on infra/aws (checkov in the venv, offline: --skip-download, no
mapping download). The project's own rules are tools/validate/bicep.py and cloudformation.py.

Stage (tools/validate_infra.py runs it; --skip-checkov leaves it out, it is the slowest):

* checkov  per framework: zero failed checks, no parsing errors, some resources scanned, and
           every inline skip carries a reason
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .common import AWS_DIR, BICEP_DIR, ROOT, Stage, rel, tool_command


def run_checkov(directory: Path, framework: str) -> dict[str, Any]:
    cmd = tool_command("checkov", "checkov.main")
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
               PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd + ["-d", str(directory), "--framework", framework, "-o", "json",
                                 "--skip-download", "--compact"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    out = proc.stdout.strip()
    if not out:
        raise RuntimeError(f"checkov {framework} printed nothing (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-400:]}")
    data = json.loads(out)
    if isinstance(data, list):  # one report per framework
        data = next((d for d in data if d.get("check_type") == framework), data[0])
    if "results" not in data:  # nothing scanned: {"passed": 0, "failed": 0, ...}
        data = {"summary": data, "results": {}}
    return data


def check_checkov(frameworks: Iterable[tuple[str, Path]] | None = None,
                  reports: dict[str, dict[str, Any]] | None = None) -> Stage:
    stage = Stage("checkov")
    frameworks = list(frameworks or [("bicep", BICEP_DIR), ("cloudformation", AWS_DIR)])
    totals = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0}
    for framework, directory in frameworks:
        try:
            data = reports[framework] if reports and framework in reports \
                else run_checkov(directory, framework)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as err:
            stage.fail(str(err))
            continue
        summary = data.get("summary", {})
        results = data.get("results", {})
        for key in totals:
            stage.counts[f"{framework}_{key}"] = int(summary.get(key, 0))
            totals[key] += int(summary.get(key, 0))
        if summary.get("resource_count", 0) == 0:
            stage.fail(f"checkov {framework}: no resources scanned under {rel(directory)}")
        for c in results.get("failed_checks", []):
            stage.fail(f"checkov {framework}: {c['check_id']} {c.get('check_name', '')} "
                       f"FAILED for {c.get('resource')} ({c.get('file_path')}:"
                       f"{(c.get('file_line_range') or ['?'])[0]})")
        for path in results.get("parsing_errors", []) or []:
            stage.fail(f"checkov {framework}: cannot parse {path}")
        for c in results.get("skipped_checks", []):
            reason = (c.get("check_result") or {}).get("suppress_comment") or ""
            if not reason.strip() or reason.strip() == "No comment provided":
                stage.fail(f"checkov {framework}: {c['check_id']} skipped without a reason "
                           f"({c.get('resource')})")
    for key, value in totals.items():
        stage.counts[key] = value
    return stage
