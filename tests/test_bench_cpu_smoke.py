"""benchmarks/cpu.py runs its three paths (ours, the floor, the SDK's list upload over a
discarding transport) on a small object of every format and they agree on the records.
Not a timing test: speed is measured by `python -m benchmarks.cpu`."""
import pytest

from benchmarks import cpu


@pytest.mark.parametrize("name", list(cpu.FORMATS))
def test_the_three_paths_see_the_same_records(name):
    key, data, n = cpu.build(name, 0.02)
    framing = cpu.FORMATS[name][2]
    ours = cpu.ours(key, data)
    assert ours > 0
    assert ours == cpu.floor(key, data, framing) == cpu.sdk(key, data)
    if name in ("cloudtrail", "vpcflow", "guardduty", "alb", "waf", "s3access", "cloudwatch"):
        assert ours == n  # the generators' records all map


def test_the_sdk_path_really_sends_requests_through_the_transport():
    key, data, _ = cpu.build("vpcflow", 0.3)
    before = cpu.sdk_requests()
    cpu.sdk(key, data)
    assert cpu.sdk_requests() > before


def test_measure_reports_every_key_results_json_needs():
    r = cpu.measure("guardduty", 0.02, 1)
    assert {"mb_s", "records_s", "floor_mb_s", "sdk_mb_s", "ratio_vs_floor", "ratio_vs_sdk",
            "input_mb"} <= set(r)


@pytest.mark.parametrize("name", sorted(cpu.LINE_FIXTURES))
def test_the_floor_splits_lines_into_our_fields(name):
    # the floor's 'loads' of a line format is a correct split (quoted fields whole), checked
    # on the object's and the fixture's lines; the old str.split(" ") floor is wrong there
    # except for NLB, whose quotes hold no spaces
    key, data, _ = cpu.build(name, 0.02)
    split, table = cpu.choose_splitter(name, data, repeat=1)
    assert table[split] != "wrong"
    lines = cpu._record_lines(data) + cpu._fixture_lines(name)
    assert list(cpu.SPLITTERS[split](lines)) == [cpu.our_fields(name, ln) for ln in lines]
    assert (table[cpu.OLD_SPLIT] == "wrong") == (name != "nlb")
    assert cpu.floor(key, data, "lines", split) == cpu.floor(key, data, "lines") \
        == cpu.ours(key, data)


def test_measure_reports_both_floors_of_a_line_format():
    r = cpu.measure("alb", 0.02, 1)
    assert r["floor_split"] != cpu.OLD_SPLIT
    assert {"floor_split_mb_s", "ratio_vs_split_floor", "floor_split_us_per_line"} <= set(r)


def test_memory_per_format_streams_each_object_from_a_file_in_a_fresh_interpreter():
    # structure only (make bench measures): every key results.json's formats_memory needs,
    # and the child really read both objects through (10x the records for 10x the input)
    out = cpu.memory(0.05, 0.5, ["vpcflow", "guardduty"])
    for row in out.values():
        assert {"rss_mb_small", "rss_mb_large", "raw_mb_small", "raw_mb_large", "ratio",
                "rss_mb_baseline"} <= set(row)
        assert row["rss_mb_large"] >= row["rss_mb_baseline"] > 0
        assert 8 * row["records_small"] <= row["records_large"] <= 12 * row["records_small"]
