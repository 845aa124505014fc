"""`make demo` is the README's first command: it must keep working (it checks its own
per-table counts and poison items and exits non-zero when they are off)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_make_demo_runs_end_to_end_and_says_ok():
    out = subprocess.run([sys.executable, "-m", "devtools.demo"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "demo OK" in out.stdout
    for table in ("AWSCloudTrail", "AWSVPCFlow", "AWSGuardDuty"):
        assert table in out.stdout
    assert "poison queue s3-objects-poison: 2 item(s)" in out.stdout
