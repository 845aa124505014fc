"""The list of known formats, in detection order (most specific first).

``detect`` tries the formats whose ``key_pattern`` matches the S3 key, in this order, and
takes the first whose ``sniff`` accepts the content; with no key match it tries the
content-detectable formats in this order. Formats whose content markers could also appear in
another format's objects come after that format (Security Hub's ASFF findings before GuardDuty
findings, which ASFF can embed); ``RAW`` is the fallback and stays last.
"""
from __future__ import annotations

from .base import Format
from .cloudtrail import CLOUDTRAIL, CLOUDTRAIL_DIGEST
from .guardduty import GUARDDUTY
from .raw import RAW
from .vpcflow import VPCFLOW

FORMATS: tuple[Format, ...] = (
    CLOUDTRAIL_DIGEST,
    CLOUDTRAIL,
    VPCFLOW,
    GUARDDUTY,
    RAW,
)
