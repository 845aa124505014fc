"""The list of known formats, in detection order (most specific first).

``detect`` tries the formats whose ``key_pattern`` matches the S3 key, in this order, and
takes the first whose ``sniff`` accepts the content; with no key match it tries the
content-detectable formats in this order. Formats whose content markers could also appear in
another format's objects come after that format (Security Hub's ASFF findings before GuardDuty
findings, which ASFF can embed); ``RAW`` is the fallback and stays last.
"""
from __future__ import annotations

from .base import Format
from .cloudfront import CLOUDFRONT
from .cloudtrail import CLOUDTRAIL, CLOUDTRAIL_DIGEST
from .cloudwatch import CLOUDWATCH
from .elb import ALB, ELB_CLASSIC, NLB
from .envelopes import CLOUDTRAIL_EVENTS, CLOUDWATCH_CLOUDTRAIL, CLOUDWATCH_VPCFLOW
from .guardduty import GUARDDUTY
from .netfirewall import NETFW_ALERT, NETFW_FLOW, NETFW_TLS
from .raw import RAW
from .route53 import ROUTE53
from .s3access import S3_ACCESS
from .securityhub import SECURITYHUB
from .securitylake import SECURITY_LAKE
from .vpcflow import VPCFLOW
from .waf import WAF

FORMATS: tuple[Format, ...] = (
    *SECURITY_LAKE,      # key only (aws/<SOURCE>/...); the catch-all OCSF format last
    CLOUDTRAIL_DIGEST,   # key only; before CLOUDTRAIL, whose folder pattern it shares
    CLOUDTRAIL,
    VPCFLOW,
    ALB,
    NLB,
    ELB_CLASSIC,
    CLOUDFRONT,
    S3_ACCESS,
    WAF,
    ROUTE53,
    NETFW_ALERT,
    NETFW_FLOW,
    NETFW_TLS,           # after alert/flow: its content test is "neither of those"
    CLOUDWATCH_CLOUDTRAIL,  # a payload whose first log event is a CloudTrail event
    CLOUDWATCH_VPCFLOW,  # ... a VPC flow record; both before CLOUDWATCH (the same envelope)
    CLOUDWATCH,          # content only (Firehose keys have no fixed layout)
    CLOUDTRAIL_EVENTS,   # before SECURITYHUB: an EventBridge CloudTrail event of a Security
                         # Hub API call has "source": "aws.securityhub"
    SECURITYHUB,         # content only; before GUARDDUTY (ASFF can carry GuardDuty findings)
    GUARDDUTY,
    RAW,                 # fallback, always last
)
