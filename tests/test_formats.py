"""Every log fixture through detection and parsing: counts, schema fit, golden rows, gzip.

GIVEN each fixture with the S3 key AWS would give it (catalogue: tests/golden/support.py)
WHEN it is detected and parsed the way the pipeline does it
THEN it maps to the expected format and table, one item per event, every row fits the table's
stream schema, and one fixture per format gives exactly the reviewed golden rows.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from golden.support import CASES, FIXTURES, LOCAL, Case, declared_kind, golden_path, plain, run

from shared import formats
from shared.errors import FormatError, UndeclaredKindError
from shared.formats.provenance import kind_of
from shared.schemas import all_schemas, violations

BY_ID = {c.id: c for c in CASES}


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def test_catalogue_lists_every_fixture_file() -> None:
    # GIVEN the fixture folders  THEN every log file in them has an expectation (a new fixture
    # cannot be silently left out), .gz siblings being covered by their plain file
    listed = {c.file for c in CASES}
    on_disk = {p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix != ".md"}
    on_disk |= {p for p in LOCAL.glob("*") if p.is_file() and p.suffix != ".md"}
    missing = sorted(str(p) for p in on_disk
                     if p not in listed and not (p.suffix == ".gz" and p.with_suffix("") in listed)
                     and p.name != "firehose-to-s3-object__docDATA_MESSAGE.gz"
                     # the OCSF JSON examples the listed Security Lake Parquet objects hold
                     and not (p.parent.name == "security_lake" and p.suffix == ".json"))
    assert missing == []
    assert all(c.file.is_file() for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=_ids(list(CASES)))
def test_fixture_maps_every_event(case: Case) -> None:
    out = run(case.file.read_bytes(), case.key)
    assert out.fmt.name == case.fmt
    assert out.fmt.table == case.table
    if case.error:
        assert isinstance(out.error, FormatError) and out.error.message
        assert out.rows == []
        return
    assert out.error is None
    assert len(out.rows) == case.rows
    assert len(out.skipped) == case.skipped
    assert len(out.routed) == case.routed
    assert [r.reason for r in out.rejected] == []
    for row in out.rows:
        assert violations(case.table, row) == [], row
        assert all(v is not None for v in row.values())
    for routed in out.routed:  # a record of another table is that table's row
        assert routed.table in out.fmt.tables
        assert violations(routed.table, routed.row) == [], routed


@pytest.mark.parametrize("case", [c for c in CASES if c.golden],
                         ids=[c.golden for c in CASES if c.golden])
def test_golden_rows(case: Case) -> None:
    path = golden_path(case.golden)
    assert path.is_file(), f"{path.name} missing: python tests/golden/support.py --regen"
    golden = json.loads(path.read_text())
    out = run(case.file.read_bytes(), case.key)
    assert (out.fmt.name, out.fmt.table) == (golden["format"], golden["table"])
    assert out.rows == golden["rows"]


def test_one_golden_fixture_per_format() -> None:
    with_golden = {c.fmt for c in CASES if c.golden}
    expected = {f.name for f in formats.FORMATS} - {"raw", "cloudtrail-digest"}
    assert expected <= with_golden


GZ_PAIRS = [c for c in CASES if c.file.with_name(c.file.name + ".gz").is_file()]


@pytest.mark.parametrize("case", GZ_PAIRS, ids=_ids(GZ_PAIRS))
def test_gzip_and_plain_give_the_same_rows(case: Case) -> None:
    plain_out = run(case.file.read_bytes(), case.key)
    gz = case.file.with_name(case.file.name + ".gz")
    gz_out = run(gz.read_bytes(), case.key)  # same key: gzip is recognised by its magic bytes
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert gz_out.fmt.name == plain_out.fmt.name
    assert gz_out.rows == plain_out.rows and len(plain_out.rows) == case.rows


@pytest.mark.parametrize("case", [c for c in CASES if not c.error and c.rows],
                         ids=_ids([c for c in CASES if not c.error and c.rows]))
def test_streamed_in_small_chunks_gives_the_same_rows(case: Case) -> None:
    data = gzip.compress(plain(case.file))
    assert run(data, case.key, chunk=97).rows == run(case.file.read_bytes(), case.key).rows


# ---- detection --------------------------------------------------------------------------

DETECTABLE = [c for c in CASES if c.fmt not in ("raw",) and not c.error
              and c.file.suffix != ".parquet"]  # text checks; Parquet: test_security_lake


@pytest.mark.parametrize("case", DETECTABLE, ids=_ids(DETECTABLE))
def test_detected_from_key_and_confirmed_by_content(case: Case) -> None:
    fmt = formats.get(case.fmt)
    text_head = plain(case.file).decode()[:65536]
    if fmt.key_pattern is not None:
        assert fmt.key_pattern.search(case.key), case.key
    assert fmt.sniff(text_head)
    assert formats.detect(case.key, text_head, kind=declared_kind(case.key)).name == case.fmt


@pytest.mark.parametrize("case", DETECTABLE, ids=_ids(DETECTABLE))
def test_detected_from_content_alone(case: Case) -> None:
    head = plain(case.file).decode()[:65536]
    fmt = formats.get(case.fmt)
    key = "uploads/2024/01/02/object-without-a-known-layout"
    kind = kind_of(fmt)
    if kind is None or not fmt.content_detectable:
        expected = case.fmt if fmt.content_detectable else "raw"
        assert formats.detect(key, head).name == expected
        return
    if fmt.envelope == "cloudwatch-logs":
        # a CloudWatch Logs payload of a trail may share its object with other log groups:
        # the object is read as plain CloudWatch Logs data, its CloudTrail records routed to
        # AWSCloudTrail, where the pipeline refuses them one by one (provenance.allowed_kinds)
        out = run(plain(case.file), key)
        assert out.fmt.name == "cloudwatch" and out.rows == [] and out.error is None
        assert {r.table for r in out.routed} == {fmt.table} and len(out.routed) == case.rows
        assert formats.detect(key, head, kind=kind).name == case.fmt
        return
    # a security-sensitive kind: content alone is not enough (anyone able to write to the
    # bucket could forge it), the reason names the setting that declares the prefix ...
    with pytest.raises(UndeclaredKindError) as err:
        formats.detect(key, head)
    assert f'"kinds": {{"uploads/": "{kind}"}}' in err.value.message
    assert err.value.kind == "undeclared_kind"
    # ... and with that declaration the content decides the envelope
    assert formats.detect(key, head, kind=kind).name == case.fmt


# a key of one format with the content of another must fail loudly, never give empty columns
OTHER_KEYS = {
    "cloudtrail": BY_ID["vpcflow/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_"
                        "docv2default.log"].key,
    "vpcflow": BY_ID["cloudtrail/123456789012_CloudTrail_us-east-2_20140306T2122Z_"
                     "docExample02.json"].key,
}


@pytest.mark.parametrize("case", DETECTABLE, ids=_ids(DETECTABLE))
def test_key_of_another_format_with_this_content_is_a_format_error(case: Case) -> None:
    key = OTHER_KEYS.get(case.fmt, OTHER_KEYS["cloudtrail"])
    head = plain(case.file).decode()[:65536]
    with pytest.raises(FormatError, match="content does not match"):
        formats.detect(key, head)


@pytest.mark.parametrize("case", DETECTABLE, ids=_ids(DETECTABLE))
def test_forced_wrong_format_is_a_format_error_not_empty_rows(case: Case) -> None:
    wrong = "waf" if case.fmt != "waf" else "vpcflow"
    out = run(case.file.read_bytes(), case.key, override=wrong)
    assert out.fmt.name == wrong
    assert isinstance(out.error, FormatError)
    assert out.rows == []


def test_every_format_table_has_a_schema_file() -> None:
    schemas = all_schemas()
    for fmt in formats.FORMATS:
        if fmt.table is not None:
            assert fmt.table in schemas, fmt.name
            doc = schemas[fmt.table]
            assert doc["stream"].startswith("Custom-")
            if fmt.table.endswith("_CL"):
                assert doc["outputStream"] == f"Custom-{fmt.table}"
            else:
                assert doc["outputStream"] == f"Microsoft-{fmt.table}"


def test_custom_table_schemas_are_well_formed() -> None:
    for name in ("AWSCloudFront_AccessLog_CL", "AWSELBClassicAccessLogs_CL"):
        path = Path(__file__).resolve().parents[1] / "shared" / "schemas" / f"{name}.json"
        doc = json.loads(path.read_text())
        assert doc["table"] == name
        assert doc["stream"] == "Custom-" + name.removesuffix("_CL")
        names = [c["name"] for c in doc["columns"]]
        assert names[0] == "TimeGenerated" and len(set(n.lower() for n in names)) == len(names)
        assert all(len(n) <= 45 for n in names)
        assert {c["type"] for c in doc["columns"]} <= {"string", "int", "long", "real",
                                                      "boolean", "datetime", "dynamic"}
