"""Fixture catalogue and helpers for the format tests; also regenerates the golden rows.

Every log fixture (the AWS samples under ``tests/fixtures`` and the ones built here under
``fixtures/``) is listed once with the S3 key AWS would give it and what parsing it must give.
``python tests/golden/support.py --regen`` rewrites ``tests/golden/*.rows.json`` from the
current mappers: review the diff by hand before committing it; the tests compare against it.
"""
from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURES = ROOT / "tests" / "fixtures"  # AWS samples copied into the repo (SOURCES.md there)
LOCAL = HERE / "fixtures"
EVENT_TIME = "2024-01-01T00:00:00Z"  # S3 event time handed to parsers in tests

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared import formats  # noqa: E402
from shared.errors import FormatError  # noqa: E402
from shared.reader import TextSource, decompress  # noqa: E402


@dataclass(frozen=True)
class Case:
    path: str                 # "shared:<rel>" (shared fixtures) or "local:<rel>" (fixtures/)
    prefix: str               # S3 folder AWS writes it under ("" = file name is the key)
    fmt: str
    table: str | None
    rows: int
    skipped: int = 0
    rejected: int = 0
    routed: int = 0           # records of other tables in the object (formats.Routed)
    error: bool = False       # the object as a whole must fail with FormatError
    golden: str | None = None  # name of the golden rows file, for one fixture per format
    name: str | None = None   # S3 object name when it differs from the file name

    @property
    def file(self) -> Path:
        where, rel = self.path.split(":", 1)
        return (FIXTURES if where == "shared" else LOCAL) / rel

    @property
    def key(self) -> str:
        return self.prefix + (self.name or self.file.name)

    @property
    def id(self) -> str:
        return self.path.split(":", 1)[1]


CT = "AWSLogs/123456789012/CloudTrail/us-east-2/2014/03/06/"
CT1 = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/14/"
DIGEST = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/20/"
VPC = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2018/06/20/"
VPC_HIVE = ("AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/"
            "aws-region=ap-southeast-2/year=2021/month=03/day=26/hour=03/")
ELB2 = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/"
ELBW = "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2015/05/13/"
WAF = "AWSLogs/111122223333/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/"
R53 = "AWSLogs/111122223333/vpcdnsquerylogs/vpc-7example/2021/02/04/"
FIREHOSE = "firehose/2025/07/28/02/sentinel-stream-1-2025-07-28-02-12-33-"
# Security Lake: aws/<SOURCE>/<version>/region=/accountId=/eventDay=/ (make_security_lake_...)
SL = "aws/{src}/2.0/region=us-east-1/accountId={acct}/eventDay={day}/{f}.gz.parquet"
CTF = "firehose/cloudtrail/2025/07/28/02/ct-stream-1-2025-07-28-02-12-33-"
CWF = "firehose/flows/2025/07/28/02/flow-stream-1-2025-07-28-02-12-33-"
SH = "firehose/securityhub/2025/07/28/02/sentinel-stream-1-2025-07-28-02-12-33-"
# what a source's "kinds" setting declares in these tests (shared/formats/provenance.py): the
# security-sensitive envelopes without an AWS key layout are read under these prefixes only
KINDS = (("firehose/securityhub/", "securityhub"), ("firehose/guardduty/", "guardduty"),
         ("firehose/cloudtrail/", "cloudtrail"))


def declared_kind(key: str) -> str | None:
    return next((kind for prefix, kind in KINDS if key.startswith(prefix)), None)
GD = "exports/AWSLogs/111122223333/GuardDuty/us-east-1/2026/08/25/"
NFW = "AWSLogs/123456789012/network-firewall/{t}/us-east-1/test-firewall/2020/10/13/22/"
NFW_NAME = "123456789012_network-firewall_{t}_us-east-1_test-firewall_202010132210_a1b2c3d4.log.gz"

CASES: tuple[Case, ...] = (
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-2_20140306T2122Z_docExample02.json",
         CT, "cloudtrail", "AWSCloudTrail", 1, golden="cloudtrail_docExample02"),
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-2_20140306T2101Z_docExample03.json",
         CT, "cloudtrail", "AWSCloudTrail", 1),
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-2_20140306T1710Z_docExample04.json",
         CT, "cloudtrail", "AWSCloudTrail", 1),
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-2_20140324T2111Z_docExample05.json",
         CT, "cloudtrail", "AWSCloudTrail", 1),
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-2_20140325T2108Z_docExample06.json",
         CT, "cloudtrail", "AWSCloudTrail", 1),
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-2_20160714T1915Z_docExample08.json",
         CT, "cloudtrail", "AWSCloudTrail", 1),
    Case("shared:cloudtrail/123456789012_CloudTrail_us-east-1_20191114T0051Z_docExample09.json",
         CT1, "cloudtrail", "AWSCloudTrail", 2, golden="cloudtrail_insights_docExample09"),
    Case("shared:cloudtrail/INVALID_docExample07_literal_newline_in_string.json.txt",
         CT, "cloudtrail", "AWSCloudTrail", 0, error=True,
         name="123456789012_CloudTrail_us-east-2_20140325T2017Z_docExample07.json"),
    Case("shared:cloudtrail_digest/111122223333_CloudTrail-Digest_us-east-2_your-trail-name_"
         "us-east-2_20150817T150131Z.json", DIGEST, "cloudtrail-digest", None, 0, skipped=1),
    Case("shared:cloudtrail_digest/111122223333_CloudTrail-Digest_us-east-2_example-trail-name_"
         "us-east-2_20150820T180131Z.json", DIGEST, "cloudtrail-digest", None, 0, skipped=1),
    Case("shared:vpcflow/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_"
         "docv2default.log", VPC, "vpcflow", "AWSVPCFlow", 7, golden="vpcflow_v2default"),
    Case("shared:vpcflow/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20190826T1950Z_"
         "docv3tcpflags.log", VPC, "vpcflow", "AWSVPCFlow", 8),
    Case("shared:vpcflow/123456789010_vpcflowlogs_us-east-1_fl-1234abcd_20210101T0000Z_"
         "docv3transitgw.log", VPC, "vpcflow", "AWSVPCFlow", 4, golden="vpcflow_v3transitgw"),
    Case("shared:vpcflow/123456789012_vpcflowlogs_ap-southeast-2_fl-1234abcd_20210326T0330Z_"
         "docv5trafficpath.log", VPC_HIVE, "vpcflow", "AWSVPCFlow", 2,
         golden="vpcflow_v5trafficpath"),
    Case("shared:alb_access/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer."
         "1234567890abcdef_20180702T2225Z_172.160.001.192_20sg8hgm.log", ELB2, "alb",
         "AWSALBAccessLogs", 7, golden="alb_access"),
    Case("shared:nlb_access/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer."
         "1234567890abcdef_20200501T0000Z_20sg8hgm.log", ELB2, "nlb", "AWSNLBAccessLogs", 2,
         golden="nlb_access"),
    Case("shared:elb_classic_access/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_"
         "20150513T2340Z_172.160.001.192_20sg8hgm.log", ELBW, "elb-classic",
         "AWSELBClassicAccessLogs_CL", 4, golden="elb_classic_access"),
    Case("shared:cloudfront/E2EXAMPLE123.2019-12-04-21.docexample", "cloudfront-logs/",
         "cloudfront", "AWSCloudFront_AccessLog_CL", 6, golden="cloudfront"),
    Case("shared:s3_server_access/2019-02-06-00-00-38-DOCEXAMPLE000001", "s3-access-logs/",
         "s3-access", "AWSS3ServerAccess", 5, golden="s3_server_access"),
    Case("shared:waf/111122223333_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_docex.log", WAF,
         "waf", "AWSWAF", 6, golden="waf"),
    Case("shared:route53_resolver/111122223333_vpcdnsquerylogs_vpc-7example_20210204T1750Z_"
         "docex.log", R53, "route53-resolver", "AWSRoute53Resolver", 1, golden="route53_resolver"),
    Case("shared:cloudwatch_subscription/firehose-to-s3-object__docDATA_MESSAGE.gz", FIREHOSE,
         "cloudwatch", "AWSCloudWatch", 3, golden="cloudwatch_firehose",
         name="6f1c9a3e-0d2b-4c1e-9f7a-2b3c4d5e6f70.gz"),
    Case("shared:cloudwatch_subscription/decoded_DATA_MESSAGE__awsdocs.json", FIREHOSE,
         "cloudwatch", "AWSCloudWatch", 3, name="0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
    Case("shared:securityhub/ASSEMBLED_eventbridge_SecurityHubFindingsImported__IAM.4.json",
         SH, "securityhub", "AWSSecurityHubFindings", 1, golden="securityhub_eventbridge",
         name="1d2e3f40-5162-7384-95a6-b7c8d9e0f1a2"),
    Case("shared:securityhub/IAM_root_user_access_key_should_not_exist__AzureSentinel_"
         "SampleLogs.json", SH, "securityhub", "AWSSecurityHubFindings", 1),
    Case("shared:securityhub/asff_sample_control_finding_00__awsdocs.json", SH, "securityhub",
         "AWSSecurityHubFindings", 1, golden="securityhub_asff_00"),
    Case("shared:securityhub/asff_sample_control_finding_01__awsdocs.json", SH, "securityhub",
         "AWSSecurityHubFindings", 1),
    Case("shared:securityhub/asff_sample_control_finding_02__awsdocs.json", SH, "securityhub",
         "AWSSecurityHubFindings", 1),
    Case("shared:securityhub/asff_sample_control_finding_04__awsdocs.json", SH, "securityhub",
         "AWSSecurityHubFindings", 1),
    Case("shared:securityhub/asff_sample_control_finding_05__awsdocs.json", SH, "securityhub",
         "AWSSecurityHubFindings", 1),
    Case("shared:securityhub/eventbridge_envelope_template__awsdocs.txt", SH, "securityhub",
         "AWSSecurityHubFindings", 0, error=True),
    # SQS message bodies, not log objects: as S3 objects they are "anything else" (raw), one
    # row per JSON document
    *(Case(f"shared:s3_notifications/{name}", "misc/", "raw", "AWSS3Raw_CL", 1)
      for name in ("ASSEMBLED_sqs_body__sns_wrapped_s3_notification.json",
                   "eventbridge_ObjectCreated__awsdocs.json",
                   "eventbridge_ObjectDeleted_DeleteMarker__awsdocs.json",
                   "eventbridge_ObjectDeleted_LifecycleExpiration__awsdocs.json",
                   "eventbridge_ObjectRestoreCompleted__awsdocs.json",
                   "s3_event_message_structure_template__awsdocs.json.txt",
                   "sqs_body__direct_s3_notification_ObjectCreatedPut__awsdocs.json",
                   "sqs_body__s3_TestEvent__awsdocs.json",
                   "sqs_body__sns_envelope_HelloWorld__awsdocs.json")),
    *(Case(f"shared:security_lake/parquet/{name}", key.rsplit("/", 1)[0] + "/", fmt, table,
           rows, golden=f"security_lake_{name.split('.')[0].lower()}",
           name=key.rsplit("/", 1)[1])
      for name, key, fmt, table, rows in (
          ("CLOUD_TRAIL_MGMT.parquet", SL.format(src="CLOUD_TRAIL_MGMT", acct="811596193553",
                                                 day="20200921", f="5c3b9a0e-ct-mgmt"),
           "ocsf-api", "AWSCloudTrail", 3),
          ("VPC_FLOW.parquet", SL.format(src="VPC_FLOW", acct="123456789012", day="20220412",
                                         f="7d1e2f30-vpc"), "ocsf-network", "AWSVPCFlow", 1),
          ("ROUTE53.parquet", SL.format(src="ROUTE53", acct="123456789012", day="20221013",
                                        f="8e2f3a41-r53"), "ocsf-dns", "AWSRoute53Resolver", 1),
          ("SH_FINDINGS.parquet", SL.replace("us-east-1", "us-east-2").format(
              src="SH_FINDINGS", acct="111111111111", day="20230919", f="9f3a4b52-sh"),
           "ocsf-finding", "AWSSecurityHubFindings", 1),
          ("WAF.parquet", SL.format(src="WAF", acct="123456789012", day="20210923",
                                    f="a04b5c63-waf"), "ocsf", "AWSSecurityLakeOCSF_CL", 1))),
    Case("local:cloudtrail_events.jsonl", CTF, "cloudtrail-events", "AWSCloudTrail", 8,
         golden="cloudtrail_events", name="6f1c9a3e-1111-4c1e-9f7a-2b3c4d5e6f70"),
    Case("local:cloudtrail_eventbridge.json", CTF, "cloudtrail-events", "AWSCloudTrail", 8,
         name="6f1c9a3e-2222-4c1e-9f7a-2b3c4d5e6f70"),
    Case("local:cloudwatch_cloudtrail.json", CTF, "cloudwatch-cloudtrail", "AWSCloudTrail", 8,
         golden="cloudwatch_cloudtrail", name="6f1c9a3e-3333-4c1e-9f7a-2b3c4d5e6f70"),
    Case("local:cloudwatch_vpcflow.json", CWF, "cloudwatch-vpcflow", "AWSVPCFlow", 7,
         golden="cloudwatch_vpcflow", name="6f1c9a3e-4444-4c1e-9f7a-2b3c4d5e6f70"),
    Case("local:guardduty_findings_from_expected.jsonl", GD, "guardduty", "AWSGuardDuty", 10,
         golden="guardduty", name="5cb2a5a8-5a0e-4f4f-9a83-2f5c9f2e0d11.jsonl.gz"),
    Case("local:network-firewall_alert.jsonl", NFW.format(t="alert"), "network-firewall-alert",
         "AWSNetworkFirewallAlert", 2, routed=1, golden="network_firewall_alert",
         name=NFW_NAME.format(t="alert")),
    Case("local:network-firewall_flow.jsonl", NFW.format(t="flow"), "network-firewall-flow",
         "AWSNetworkFirewallFlow", 2, golden="network_firewall_flow",
         name=NFW_NAME.format(t="flow")),
    Case("local:network-firewall_tls.jsonl", NFW.format(t="tls"), "network-firewall-tls",
         "AWSNetworkFirewallTls", 2, golden="network_firewall_tls",
         name=NFW_NAME.format(t="tls")),
)


@dataclass
class Outcome:
    fmt: formats.Format
    rows: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[formats.Rejected] = field(default_factory=list)
    skipped: list[formats.Skipped] = field(default_factory=list)
    routed: list[formats.Routed] = field(default_factory=list)  # rows of other tables
    error: FormatError | None = None


def plain(path: Path) -> bytes:
    """The fixture's uncompressed bytes (``.gz`` fixtures are inflated)."""
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def run(data: bytes, key: str, *, override: str | None = None,
        event_time: str | None = EVENT_TIME, chunk: int = 0, kind: str | None = None) -> Outcome:
    """Detect and parse ``data`` (gzip or plain) as the object ``key``, like the pipeline does.

    Detection errors propagate; a ``FormatError`` while parsing is kept in ``error``.
    ``chunk`` > 0 feeds the bytes in pieces of that size (as a streamed S3 body arrives).
    """
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    text = TextSource(decompress(pieces))
    fmt = formats.detect(key, text.head, override=override, kind=kind or declared_kind(key))
    out = Outcome(fmt)
    ctx = formats.ObjectContext(source="test", bucket="log-bucket", key=key,
                                event_time=event_time)
    try:
        # binary (Parquet) objects as the pipeline does (its bytes, from their start)
        items = (fmt.parse_bytes(b"".join(text.raw_chunks()), ctx)
                 if formats.wants_bytes(fmt, text.head) else fmt.parse(text, ctx))
        for item in items:
            if isinstance(item, formats.Rejected):
                out.rejected.append(item)
            elif isinstance(item, formats.Skipped):
                out.skipped.append(item)
            elif isinstance(item, formats.Routed):
                out.routed.append(item)
            else:
                out.rows.append(item)
    except FormatError as err:
        out.error = err
    return out


def golden_path(name: str) -> Path:
    return HERE / f"{name}.rows.json"


def regen() -> None:
    for case in CASES:
        if case.golden is None:
            continue
        out = run(case.file.read_bytes(), case.key)
        doc = {"fixture": case.path, "key": case.key, "format": out.fmt.name,
               "table": out.fmt.table, "rows": out.rows}
        golden_path(case.golden).write_text(json.dumps(doc, indent=1, ensure_ascii=False)
                                            + "\n")
        print(f"{case.golden}: {len(out.rows)} rows")


if __name__ == "__main__":
    if sys.argv[1:] == ["--regen"]:
        regen()
    else:
        print(__doc__)
