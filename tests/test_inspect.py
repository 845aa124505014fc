"""``python -m shared inspect``: inspect_file() and main() on real fixtures and broken files."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from golden.support import CASES, declared_kind

from shared.cli_inspect import inspect_file, main

VPC = next(c for c in CASES if c.id.endswith("docv2default.log"))
ALB = next(c for c in CASES if c.fmt == "alb")
DIGEST = next(c for c in CASES if c.fmt == "cloudtrail-digest")
INVALID = next(c for c in CASES if c.id.startswith("cloudtrail/INVALID"))


@pytest.mark.parametrize("case", [c for c in CASES if not c.error],
                         ids=[c.id for c in CASES if not c.error])
def test_inspect_file_reports_every_fixture(case) -> None:
    result = inspect_file(str(case.file), key=case.key, rows=2, kind=declared_kind(case.key))
    assert (result["format"], result["table"]) == (case.fmt, case.table)
    assert result["records"] == case.rows + case.routed and result["skipped"] == case.skipped
    assert sum(result["routed"].values()) == case.routed and result["undeclared"] == {}
    assert result["rejected"] == [] and result["schema_errors"] == []
    assert result["error"] is None
    assert len(result["rows"]) == min(2, case.rows)


def test_detects_from_the_file_name_when_no_key_is_given(tmp_path: Path) -> None:
    gz = VPC.file.with_name(VPC.file.name + ".gz")
    result = inspect_file(str(gz))
    assert result["key"] == gz.name and result["format"] == "vpcflow"
    assert result["stream"] == "Custom-AWSVPCFlow" and result["records"] == 7
    # a neutral name: content decides
    copy = tmp_path / "object"
    copy.write_bytes(gz.read_bytes())
    assert inspect_file(str(copy))["format"] == "vpcflow"


def test_rejections_schema_check_and_forced_format(tmp_path: Path) -> None:
    path = tmp_path / "flows.log.gz"
    lines = VPC.file.read_text().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[:3] + ["2 too few fields"]) + "\n")
                                   .encode()))
    result = inspect_file(str(path), "vpcflow", rows=0)
    assert result["records"] == 2 and result["rows"] == []
    assert result["rejected"] == [{"position": 4,
                                   "reason": "VPC flow record has 4 fields, the header names 14"}]
    forced = inspect_file(str(VPC.file), "waf")
    assert forced["format"] == "waf" and forced["records"] == 0 and forced["error"]


def test_digest_and_invalid_files_are_reported_not_crashed() -> None:
    digest = inspect_file(str(DIGEST.file))
    assert digest["table"] is None and digest["skipped"] == 1 and digest["error"] is None
    invalid = inspect_file(str(INVALID.file), key=INVALID.key)
    assert invalid["format"] == "cloudtrail" and "not valid JSON" in invalid["error"]
    missing = inspect_file("/no/such/file.log")
    assert missing["format"] is None and missing["error"]


def test_main_human_output_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(ALB.file), "--rows", "1"]) == 0
    out = capsys.readouterr().out
    assert "format:   alb" in out and "table:    AWSALBAccessLogs" in out
    assert "7 mapped, 0 rejected, 0 skipped, 0 with schema errors" in out
    assert out.count('{"TimeGenerated"') == 1
    assert main([str(INVALID.file), "--key", INVALID.key]) == 2
    assert "error:" in capsys.readouterr().out


def test_main_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([str(VPC.file), "--json", "--rows", "2", "--key", VPC.key]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["format"] == "vpcflow" and result["key"] == VPC.key
    assert len(result["rows"]) == 2 and result["rows"][0]["TimeGenerated"].endswith("Z")
    bad = tmp_path / "x.log"
    bad.write_text(VPC.file.read_text() + "2 short\n")
    assert main([str(bad), "--json", "--format", "vpcflow"]) == 1
    assert json.loads(capsys.readouterr().out)["rejected"][0]["position"] == 9


def test_main_rejects_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(VPC.file), "--format", "nope"]) == 2
    assert "unknown format 'nope'" in capsys.readouterr().out


def test_sensitive_content_without_a_declared_prefix_says_how_to_declare_it() -> None:
    # GIVEN CloudTrail events as JSON lines under a key AWS never writes CloudTrail to
    case = next(c for c in CASES if c.fmt == "cloudtrail-events")
    # WHEN inspected without --kind, THEN it is refused with the setting to add; with it, read
    result = inspect_file(str(case.file), key="exports/2024/01/02/ct.jsonl")
    assert result["format"] is None and '"kinds": {"exports/": "cloudtrail"}' in result["error"]
    assert main([str(case.file), "--key", "exports/2024/01/02/ct.jsonl"]) == 2
    assert main([str(case.file), "--key", "exports/2024/01/02/ct.jsonl", "--kind",
                 "cloudtrail"]) == 0
