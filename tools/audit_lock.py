"""pip-audit on requirements.lock (the deployed app's pinned, hashed dependency set).

A known vulnerability in a pinned version is a failure. An advisory database that cannot be
reached (no network, or the index answers but has no advisory API) is a warning naming what
was not audited: the check never passes silently and never blocks an offline run.

    python tools/audit_lock.py [--lock requirements.lock]   # exit 1 on a known vulnerability
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"


def run_pip_audit(lock: Path, *, timeout: float = 240) -> tuple[dict[str, Any] | None, str]:
    """(pip-audit's JSON report or None, its stderr)."""
    cmd = [sys.executable, "-m", "pip_audit", "-r", str(lock), "--require-hashes",
           "--disable-pip", "--progress-spinner", "off", "-f", "json", "--timeout", "15"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return None, f"pip-audit did not finish within {timeout:.0f}s"
    except OSError as err:
        return None, f"pip-audit cannot run: {err}"
    try:
        return json.loads(proc.stdout), proc.stderr
    except ValueError:
        return None, (proc.stderr or proc.stdout).strip()[-800:]


@dataclass
class Audit:
    failures: list[str] = field(default_factory=list)   # known vulnerabilities: fail
    warnings: list[str] = field(default_factory=list)   # not audited: warn
    audited: int = 0                                     # packages checked against advisories


def classify(report: dict[str, Any] | None, stderr: str = "") -> Audit:
    """What one pip-audit JSON report means for the build."""
    out = Audit()
    if report is None:
        out.warnings.append("pip-audit gave no report (advisory database unreachable?): "
                            f"{stderr}")
        return out
    deps = report.get("dependencies", [])
    skipped = []
    for dep in deps:
        if dep.get("skip_reason"):
            skipped.append(dep["name"])
            continue
        out.audited += 1
        for vuln in dep.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            aliases = ", ".join(vuln.get("aliases") or [])
            out.failures.append(f"{dep['name']}=={dep.get('version')}: {vuln.get('id')}"
                                f"{f' ({aliases})' if aliases else ''}; fixed in {fixed}")
    if skipped:
        out.warnings.append(f"{len(skipped)} of {len(deps)} locked packages were not audited "
                            "(advisory database not reachable): " + ", ".join(skipped[:12])
                            + (" ..." if len(skipped) > 12 else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lock", type=Path, default=LOCK)
    args = parser.parse_args(argv)
    audit = classify(*run_pip_audit(args.lock))
    for w in audit.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for f in audit.failures:
        print(f"VULNERABLE {f}")
    if audit.failures:
        print(f"{len(audit.failures)} known vulnerabilit"
              f"{'y' if len(audit.failures) == 1 else 'ies'} in {args.lock.name}: raise the "
              "floor in requirements.txt, then `make lock`")
        return 1
    if not audit.audited:
        print(f"pip-audit: {args.lock.name} NOT audited (no advisory database reachable)")
    else:
        print(f"pip-audit: no known vulnerability in the {audit.audited} audited packages of "
              f"{args.lock.name}" + (" (some unaudited, see warning)" if audit.warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
