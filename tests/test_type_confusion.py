"""Hostile records whose fields have the wrong JSON type (a string where an object belongs, a list
where a number belongs, ...): each such record is mapped or rejected with a reason, alone; no
exception escapes a parser and the good records around it are kept.

Found by this test: a CloudTrail event whose ``userIdentity`` was a string raised AttributeError
out of the parser, which failed the whole object."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path
from typing import Any

import pytest

from shared import formats
from shared.reader import TextSource, decompress
from tests import sample_logs

GOLDEN = Path(__file__).parent / "golden" / "fixtures"
NFW_KEY = ("AWSLogs/123456789012/network-firewall/alert/us-east-1/fw/2024/07/02/18/"
           "123456789012_network-firewall_alert_us-east-1_fw_202407021800_a1b2c3d4.log.gz")


def network_firewall(n: int) -> tuple[str, bytes, int]:
    line = (GOLDEN / "network-firewall_alert.jsonl").read_text().splitlines()[0]
    return NFW_KEY, gzip.compress(((line + "\n") * n).encode()), n

KINDS = [None, True, 0, -1, 1.5, "x", "", [], [1, "a"], {}, {"a": {"b": []}}]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    return out


def _set(record: Any, path: tuple, value: Any) -> Any:
    record = json.loads(json.dumps(record))
    node = record
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return record


def _parse(key: str, body: bytes) -> list[Any]:
    text = TextSource(decompress(iter([body])), where=key)
    fmt = formats.detect(key, text.head)
    ctx = formats.ObjectContext(source="s", bucket="b", key=key)
    items = list(fmt.parse(text, ctx))
    text.finish()
    return items


def _mutants(record: dict[str, Any], rng: random.Random, limit: int) -> list[dict[str, Any]]:
    paths = _paths(record)
    rng.shuffle(paths)
    return [_set(record, path, rng.choice(KINDS)) for path in paths[:limit]]


def _records_of(key: str, body: bytes) -> tuple[str, list[dict[str, Any]]]:
    raw = gzip.decompress(body).decode()
    if raw.lstrip().startswith('{"Records"'):
        return "records", json.loads(raw)["Records"]
    return "lines", [json.loads(line) for line in raw.splitlines() if line.strip()]


def _body(shape: str, records: list[dict[str, Any]]) -> bytes:
    if shape == "records":
        return gzip.compress(json.dumps({"Records": records}).encode())
    return gzip.compress("\n".join(json.dumps(r) for r in records).encode() + b"\n")


@pytest.mark.parametrize("make", [sample_logs.cloudtrail, sample_logs.guardduty, sample_logs.waf,
                                  network_firewall],
                         ids=["cloudtrail", "guardduty", "waf", "network-firewall"])
def test_a_field_of_the_wrong_type_costs_that_record_at_most(make) -> None:
    rng = random.Random(11)
    key, body, _ = make(1)
    shape, (good,) = _records_of(key, body)
    mutants = _mutants(good, rng, limit=400)
    # each mutant between two good records: the good ones always come through
    records = []
    for m in mutants:
        records += [good, m]
    records.append(good)
    items = _parse(key, _body(shape, records))
    assert len(items) == len(records)  # one item per record: a row or a reason
    rows = [i[1] if isinstance(i, formats.Routed) else i for i in items
            if isinstance(i, (dict, formats.Routed))]
    rejected = [i for i in items if isinstance(i, formats.Rejected)]
    assert len(rows) + len(rejected) == len(records)
    assert len(rows) >= len(mutants) + 1  # every good record is a row
    assert all(r.reason for r in rejected)
    for row in rows:  # a row is something the service can take
        json.dumps(row, allow_nan=False)
