"""Supply chain: requirements.lock pins exactly what requirements.txt asks for, with hashes;
the floors past known advisories stay; pip-audit runs on the lock (a known vulnerability fails,
an unreachable advisory database warns); npm installs from its lock file."""
from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import audit_lock  # noqa: E402

# first releases without the advisories the comments in requirements.txt name
SECURITY_FLOORS = {"pyarrow": "14.0.1", "azure-identity": "1.16.1", "urllib3": "2.5.0",
                   "requests": "2.32.4", "cryptography": "44.0.1", "certifi": "2024.7.4",
                   "idna": "3.7"}


def requirements() -> dict[str, Requirement]:
    out = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            out[canonicalize_name(req.name)] = req
    return out


def lock() -> dict[str, tuple[Version, list[str]]]:
    """name -> (pinned version, hashes) from requirements.lock."""
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)\s*(.*)$", line)
        if m:
            out[canonicalize_name(m.group(1))] = (Version(m.group(2)),
                                                  re.findall(r"--hash=sha256:([0-9a-f]{64})",
                                                             m.group(3)))
    return out


def test_every_requirement_is_pinned_in_the_lock_within_its_range_with_hashes():
    pins = lock()
    assert len(pins) >= len(requirements())
    for name, req in requirements().items():
        assert name in pins, f"{name} is in requirements.txt but not in requirements.lock: " \
                             "run `make lock`"
        version, _ = pins[name]
        assert req.specifier.contains(version, prereleases=True), \
            f"{name}=={version} in the lock does not satisfy {req}: run `make lock`"
    for name, (version, hashes) in pins.items():
        assert hashes, f"{name}=={version} has no --hash in requirements.lock"


def test_floors_past_known_advisories_are_kept_in_requirements_and_lock():
    reqs, pins = requirements(), lock()
    for name, floor in SECURITY_FLOORS.items():
        assert name in reqs, f"{name}: the security floor {floor} was removed"
        assert not reqs[name].specifier.contains(Version("0.1"), prereleases=True)
        lowest_allowed = min((Version(s.version) for s in reqs[name].specifier
                              if s.operator in (">=", "==", "~=")), default=Version("0"))
        assert lowest_allowed >= Version(floor), f"{name}: {reqs[name]} admits versions " \
                                                 f"below {floor}"
        assert pins[name][0] >= Version(floor)


def test_pyarrow_14_0_0_is_not_admitted():
    # CVE-2023-47248: 14.0.0 deserialises arbitrary objects from Parquet (we read S3 Parquet)
    assert not requirements()["pyarrow"].specifier.contains(Version("14.0.0"))


def test_a_known_vulnerability_fails_and_an_unreachable_database_warns():
    vulnerable = {"dependencies": [
        {"name": "pyarrow", "version": "14.0.0", "vulns": [
            {"id": "PYSEC-2023-238", "fix_versions": ["14.0.1"], "aliases": ["CVE-2023-47248"]}]},
        {"name": "boto3", "version": "1.35.0", "vulns": []}]}
    audit = audit_lock.classify(vulnerable)
    assert audit.failures == ["pyarrow==14.0.0: PYSEC-2023-238 (CVE-2023-47248); fixed in "
                              "14.0.1"]
    assert audit.warnings == [] and audit.audited == 2
    offline = {"dependencies": [{"name": "boto3", "skip_reason": "Dependency not found"}]}
    audit = audit_lock.classify(offline)
    assert audit.failures == [] and audit.audited == 0
    assert "1 of 1 locked packages were not audited" in audit.warnings[0]
    audit = audit_lock.classify(None, "ConnectionError: no route")
    assert audit.failures == [] and "ConnectionError" in audit.warnings[0]


def test_pip_audit_finds_no_known_vulnerability_in_the_lock():
    audit = audit_lock.classify(*audit_lock.run_pip_audit(ROOT / "requirements.lock"))
    for message in audit.warnings:
        warnings.warn(f"pip-audit: {message}", UserWarning, stacklevel=1)
    assert audit.failures == [], "\n".join(audit.failures)


@pytest.mark.parametrize("needle", [
    "npm ci --no-audit", "node_modules/.installed: package.json package-lock.json",
    "pip-compile --quiet --generate-hashes", "--output-file=requirements.lock requirements.txt",
    "tools/audit_lock.py"])
def test_makefile_installs_from_lock_files_and_can_regenerate_the_lock(needle):
    assert needle in (ROOT / "Makefile").read_text()


def test_dev_requirements_bring_the_lock_and_audit_tools():
    text = (ROOT / "requirements-dev.txt").read_text()
    assert "pip-tools" in text and "pip-audit" in text
