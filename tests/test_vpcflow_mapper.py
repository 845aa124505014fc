"""The generated VPC Flow line mappers give the rows of the plain per-field mapping.

``vpcflow.line_mapper`` writes one function per header (no per-field lookups or calls) that
also sets ``TimeGenerated`` (start, else end). Held here to ``map_record`` over the fields as
a dict, plus the documented time rule (start, else end, else the file name's time), key
order included, on random headers (custom orders, repeated and unmapped fields) and values
('-', junk, numbers out of range).
"""
from __future__ import annotations

import random
from typing import Any

from shared.formats import base, vpcflow
from shared.formats.base import ObjectContext
from shared.reader import TextSource

KEY = ("AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/01/02/123456789012_vpcflowlogs_"
       "us-east-1_fl-0123456789abcdef0_20240102T0305Z_abcd1234.log")
FALLBACK = base.key_time(KEY)
VALUES = ["-", "0", "7", "-3", "2147483647", "2147483648", "99999999999999999999", "x",
          "1704164705", "1704164765", "1e3", "eni-1", "10.0.0.1", "ACCEPT", "OK", "+5", "5.0",
          "-0", "nan", "inf", "\u0663", "\uff15", "1_000", "0x1f", "9" * 5000, "1704164705.0"]


def _reference(names: list[str], parts: list[str]) -> dict[str, Any] | None:
    row = vpcflow.map_record(dict(zip(names, parts)))
    stamp = row.get("Start") or row.get("End") or FALLBACK
    return {"TimeGenerated": stamp, **row}


def test_generated_mappers_give_the_plain_mapping() -> None:
    rnd = random.Random(11)
    known = list(vpcflow.FIELDS) + sorted(vpcflow.UNMAPPED)
    checked = 0
    for _ in range(300):
        names = rnd.sample(known, rnd.randint(3, 12)) + ["srcaddr"]
        if rnd.random() < 0.3:
            names.append(rnd.choice(names))  # a field named twice
        if rnd.random() < 0.5:
            names += ["start", "end"][: rnd.randint(1, 2)]
        lines = [" ".join(names)]
        expected = []
        for _ in range(20):
            parts = [rnd.choice(VALUES) for _ in names]
            lines.append(" ".join(parts))
            expected.append(_reference(names, parts))
        text = TextSource(iter([("\n".join(lines) + "\n").encode()]))
        rows = list(vpcflow.parse(text, ObjectContext("s", "b", KEY)))
        assert [list(r.items()) for r in rows] == [list(r.items()) for r in expected], names
        checked += len(rows)
    assert checked == 6000
