"""The repository stands alone: no test, tool or benchmark reads the folder beside it, and every
copied fixture folder names its sources."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Ways a path to a folder beside the repository has been written here before.
OUTSIDE = re.compile(r'parents\[2\]|ROOT\.parent\b|HERE\.parents\[2\]'
                     r'|\.\./shared/(fixtures|reference)|/work/shared')


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return [ROOT / p for p in out]


def test_no_code_reads_outside_the_repository() -> None:
    files = tracked("*.py", "Makefile", ".ci/run", "*.sh")
    assert len(files) > 50
    hits = [f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
            for f in files if f.name != "test_standalone.py"
            for n, line in enumerate(f.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert hits == []


def test_every_copied_data_folder_has_its_sources() -> None:
    for folder in ("tests/fixtures", "tests/reference"):
        sources = ROOT / folder / "SOURCES.md"
        assert sources.is_file(), folder
        text = sources.read_text()
        assert "Licen" in text or "licen" in text


def test_ci_runs_the_readme_test_command_from_a_lone_clone() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "git clone" in run and "make test" in run
    assert "make test" in (ROOT / "README.md").read_text()


def test_every_test_data_file_is_committed() -> None:
    """A fixture that .gitignore hides (a ``*.log`` sample) passes here, fails in a clone."""
    ignored = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard",
                              "tests/fixtures", "tests/reference", "tests/golden", "tests/events"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert [p for p in ignored if "__pycache__" not in p] == []
