"""``s3sentinel`` / ``python -m shared``: every command end to end against moto, Azurite and the
HTTPS emulators, in process (``main([...])``) and, for the terminal and settings paths, as a
subprocess like an operator runs it."""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sample_logs import cloudtrail, guardduty

from shared.cli import main, safe

ROOT = Path(__file__).resolve().parents[1]
CT = "Custom-AWSCloudTrail"
GD = "Custom-AWSGuardDuty"
ACCT = "123456789012"


def day(n: int) -> str:
    return f"{datetime.now(UTC) - timedelta(days=n):%Y/%m/%d}"


def ct_object(n_events: int = 2) -> bytes:
    return gzip.compress(gzip.decompress(cloudtrail(n_events)[1]))


def layouts() -> dict[str, int]:
    """One key per AWS layout and age (days ago) -> age."""
    keys = {}
    for age in (0, 1, 5, 40):
        d = day(age)
        y, m, dd = d.split("/")
        keys |= {
            f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{d}/{ACCT}_CloudTrail_us-east-1_{age}.json.gz":
                age,
            f"AWSLogs/o-abc123def4/{ACCT}/CloudTrail/eu-west-1/{d}/"
            f"{ACCT}_CloudTrail_eu-west-1_{age}.json.gz": age,
            f"o-abc123def4/AWSLogs/{ACCT}/CloudTrail/us-west-2/{d}/"  # Control Tower
            f"{ACCT}_CloudTrail_us-west-2_{age}.json.gz": age,
            f"AWSLogs/aws-account-id={ACCT}/aws-service=vpcflowlogs/aws-region=us-east-1/"
            f"year={y}/month={m}/day={dd}/hour=10/{ACCT}_vpcflowlogs_us-east-1_fl-1_"
            f"{y}{m}{dd}T1000Z_{age}.log.gz": age,
            f"AWSLogs/{ACCT}/elasticloadbalancing/us-east-1/{d}/{ACCT}_elasticloadbalancing_"
            f"us-east-1_app.my-lb.50dc6c495c0c9188_{y}{m}{dd}T1000Z_10.0.0.1_{age}.log.gz": age,
            f"firehose/waf/{d}/10/aws-waf-logs-{age}.gz": age,
        }
    return keys


def put_layouts(world, src) -> dict[str, int]:
    keys = layouts()
    for key in keys:
        world.put(src, key, ct_object() if "CloudTrail" in key else b"x", gz="CloudTrail"
                  not in key)
    return keys


def work_keys(world) -> list[str]:
    from shared import pipeline

    conn = pipeline.connector()
    conn.work.ensure()
    out = []
    while True:
        batch = list(conn.work.client.receive_messages(messages_per_page=32,
                                                       visibility_timeout=60, max_messages=32))
        if not batch:
            return sorted(out)
        for m in batch:
            text = m.content.decode() if isinstance(m.content, bytes) else m.content
            out.append(json.loads(text)["key"])
            conn.work.client.delete_message(m)


# ---- backfill -------------------------------------------------------------------------------

def test_backfill_lists_only_the_dated_folders_the_window_needs_across_every_layout(world,
                                                                                   capsys):
    src = world.add_source("layouts")
    keys = put_layouts(world, src)
    world.configure()
    # WHEN the last 3 days are backfilled
    assert main(["backfill", "--source", "layouts", "--since", "3d", "--json"]) == 0
    [summary] = json.loads(capsys.readouterr().out)["summaries"]
    # THEN exactly the objects of today and yesterday are enqueued, in every layout (standard,
    # organization trail, Control Tower, Hive, ALB, Firehose), and the older day folders were
    # pruned without being listed
    expected = sorted(k for k, age in keys.items() if age <= 1)
    assert work_keys(world) == expected
    assert summary["enqueued"] == len(expected) == 12
    assert summary["folders_pruned"] >= 6  # 5 and 40 days ago, in each of the six layouts
    assert summary["listed"] == len(expected)  # nothing older was even listed
    assert summary["by_format"]["cloudtrail"]["objects"] == 6
    assert summary["by_format"]["alb"]["objects"] == 2


def test_backfill_until_prunes_later_folders_and_warns_about_old_time_generated(world, capsys):
    from shared import backfill, pipeline

    src = world.add_source("until")
    keys = put_layouts(world, src)
    world.configure()
    conn = pipeline.connector()
    source = conn.settings.source("until")
    until = datetime.now(UTC) - timedelta(days=3)
    [plan] = backfill.plans(source, bucket=None, prefix=None, since=None, until=until)
    summary = backfill.Summary("until", src["_bucket"], "")
    listed = [i.obj["Key"] for i in backfill.Lister(
        lambda fn: conn.aws.call(source, "s3", fn), plan, summary)]
    # the folders after --until are never listed: only the 5- and 40-day-old objects are
    assert sorted(listed) == sorted(k for k, age in keys.items() if age >= 5)
    # WHEN a dry run covers the old folders (objects written now: LastModified inside)
    assert main(["backfill", "--source", "until", "--since", "50d", "--dry-run"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the note is wrapped
    assert "dry run, nothing enqueued" in out and "would enqueue 24 object(s)" in out
    # THEN it says how many are older than 2 days and what Azure Monitor does with them
    assert "12 object(s) are older than 2 days" in out
    assert "more than 2 days old" in out and "TimeGenerated" in out
    assert work_keys(world) == []


def test_backfill_skips_delivered_objects_and_resumes_after_an_interruption(world, capsys):
    from shared import backfill, pipeline

    src = world.add_source("resume", prefixes=["AWSLogs/"])
    keys = [f"AWSLogs/{ACCT}/GuardDuty/us-east-1/{day(0)}/finding-{i:02d}.jsonl.gz"
            for i in range(12)]
    for key in keys:
        world.put(src, key, gzip.decompress(guardduty(2)[1]), gz=True)
    world.configure()
    conn = pipeline.connector()
    # one object is already delivered (its checkpoint says so)
    assert main(["backfill", "--source", "resume", "--prefix", keys[0]]) == 0
    world.host().drain()
    assert len(world.accepted(GD)) == 2
    capsys.readouterr()

    class Interrupt:
        """An operator pressing Ctrl-C after 5 objects."""
        def __init__(self):
            self.n = 0

        def start(self, total, total_bytes):
            assert total == 12

        def advance(self, count, nbytes):
            self.n += count
            if self.n == 5:
                raise KeyboardInterrupt

    source = conn.settings.source("resume")
    [plan] = backfill.plans(source, bucket=None, prefix=None, rate=1000.0)
    monkey_every = backfill.CURSOR_EVERY
    with pytest.raises(KeyboardInterrupt):
        backfill.run(conn, plan, progress=Interrupt())
    assert monkey_every == backfill.CURSOR_EVERY
    first = work_keys(world)
    assert first == keys[1:5]  # the delivered one skipped, then four enqueued
    # WHEN the same command runs again, it continues after the cursor
    assert main(["backfill", "--source", "resume", "--rate", "1000/s", "--json"]) == 0
    [summary] = json.loads(capsys.readouterr().out)["summaries"]
    assert summary["resumed_after"] == keys[4]
    assert work_keys(world) == keys[5:]
    assert summary["complete"] and summary["enqueued"] == 7
    # and a third run knows it is done; --restart lists again and skips what was delivered
    assert main(["backfill", "--source", "resume"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert main(["backfill", "--source", "resume", "--restart", "--dry-run", "--json"]) == 0
    [again] = json.loads(capsys.readouterr().out)["summaries"]
    assert again["skipped_delivered"] == 1 and again["enqueued"] == 11


def test_backfill_pace_is_bounded_by_rate(world, capsys):
    src = world.add_source("rate")
    for i in range(6):
        world.put(src, f"AWSLogs/{ACCT}/GuardDuty/us-east-1/{day(0)}/f{i}.jsonl.gz",
                  b"{}", gz=True)
    world.configure()
    t0 = time.monotonic()
    assert main(["backfill", "--source", "rate", "--rate", "5/s"]) == 0
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.0  # 6 items at 5/s: at least 5 intervals of 0.2 s
    assert "enqueued 6 object(s)" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--source", "nope"], "no such source"),
    (["--source", "bad", "--bucket", "other-bucket"], "not in source bad's allow-list"),
    (["--source", "bad", "--prefix", "elsewhere/"], "outside source bad's allow-list"),
    (["--source", "bad", "--since", "yesterday"], "is not a date"),
    (["--source", "bad", "--since", "1d", "--until", "3d"], "--since must be before"),
    (["--source", "bad", "--format", "nope"], "unknown format"),
    (["--source", "bad", "--rate", "0"], "is not a rate"),
])
def test_backfill_bad_arguments_exit_2_with_a_clear_error(world, capsys, args, message):
    world.add_source("bad", prefixes=["AWSLogs/"])
    world.configure()
    assert main(["backfill", *args]) == 2
    assert message in capsys.readouterr().err
    assert work_keys(world) == []


# ---- poison ---------------------------------------------------------------------------------

def poisoned_world(world, name="pz"):
    """Two poison items: an object refused with 403 and an unreadable SQS body."""
    src = world.add_source(name)
    key, data, n = guardduty(3)
    world.put(src, key, data)
    world.send_raw(src, "{not json")
    world.configure()
    world.stack.ingestion.allowed_principals = {"someone-else"}
    host = world.host()
    host.run_timer()
    host.drain()
    assert len(host.poison_items()) == 2
    return src, key, n, host


def test_poison_list_groups_by_kind_with_the_action_and_hides_nothing(world, capsys):
    from shared import pipeline

    _, key, _, host = poisoned_world(world)
    assert main(["poison", "list"]) == 0
    out = capsys.readouterr().out
    assert "2 item(s) shown" in out and "nothing was received, hidden or removed" in out
    assert "deliver/delivery_rejected (HTTP 403)" in out
    assert "grant Monitoring Metrics Publisher on the DCR" in out
    assert "notification/bad_notification" in out and key in out
    # THEN listing removed and hid nothing: both are still receivable at once
    conn = pipeline.connector()
    got = list(conn.poison.client.receive_messages(visibility_timeout=1, max_messages=32))
    assert len(got) == 2
    for m in got:
        conn.poison.client.update_message(m.id, pop_receipt=m.pop_receipt,
                                          visibility_timeout=0)
    assert main(["poison", "list", "--kind", "bad_notification", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [g["kind"] for g in data["groups"]] == ["bad_notification"]
    assert data["groups"][0]["count"] == 1


def test_poison_show_prints_one_item_and_exit_1_when_absent(world, capsys):
    poisoned_world(world, "show")
    assert main(["poison", "list", "--stage", "deliver", "--json"]) == 0
    [group] = json.loads(capsys.readouterr().out)["groups"]
    assert main(["poison", "show", group["sample_id"][:8]]) == 0
    out = capsys.readouterr().out
    assert "deliver/delivery_rejected (HTTP 403" in out and "records:   3" in out
    assert main(["poison", "show", group["sample_id"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["envelope"]["status"] == 403
    assert main(["poison", "show", "does-not-exist"]) == 1


def test_poison_replay_and_its_alias_with_filters(world, capsys):
    src, _, n, host = poisoned_world(world, "rep")
    world.stack.ingestion.allowed_principals = None  # the role is granted now
    # --kind selects: the bad body stays
    assert main(["poison", "replay", "--kind", "delivery_rejected", "--dry-run"]) == 0
    assert "would replay" in capsys.readouterr().err  # item lines go with the progress
    assert len(host.poison_items()) == 2  # the dry run deleted nothing and hid nothing
    assert main(["replay", "--kind", "delivery_rejected"]) == 0
    out = capsys.readouterr().out
    assert "1 poison item(s) replayed (1 object(s)" in out
    host.drain()
    assert len(world.accepted(GD)) == n
    assert [i["kind"] for i in host.poison_items()] == ["bad_notification"]


def test_replay_keeps_items_outside_the_allow_list_or_of_unknown_sources(world, capsys):
    from shared import pipeline, poison
    from shared.errors import FatalError
    from shared.notifications import ObjectRef

    src = world.add_source("allow", prefixes=["AWSLogs/"])
    world.configure()
    conn = pipeline.connector()
    outside = ObjectRef(source="allow", bucket=src["_bucket"], key="private/secrets.json")
    unknown = ObjectRef(source="gone", bucket=src["_bucket"], key="AWSLogs/x.json")
    for ref in (outside, unknown):
        conn.poison.send(poison.for_object(ref, FatalError("x"), stage="read",
                                           attempts=1).to_json())
    assert main(["poison", "replay", "--visibility", "1"]) == 1  # kept items: exit 1
    out = "".join(capsys.readouterr())
    assert "outside source allow's bucket/prefix allow-list" in out
    assert "source 'gone' is not in AWS_SOURCES" in out
    assert "0 poison item(s) replayed" in out
    assert work_keys(world) == []


def test_poison_purge_asks_or_needs_yes_and_deletes_only_old_items(world, capsys,
                                                                   monkeypatch):
    _, _, _, host = poisoned_world(world, "purge")
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    assert main(["poison", "purge", "--older-than", "1s"]) == 2
    assert "--yes" in capsys.readouterr().err
    assert main(["poison", "purge", "--older-than", "7d", "--yes"]) == 0
    assert "0 item(s) deleted, 2 kept" in capsys.readouterr().out
    time.sleep(1.1)  # both are visible again at once: the run released what it kept
    assert main(["poison", "purge", "--older-than", "1s", "--kind", "bad_notification",
                 "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"] == 1


# ---- check and status -----------------------------------------------------------------------

def test_check_passes_every_component_and_names_the_fix_for_a_403_and_a_missing_dcr(world,
                                                                                    capsys):
    world.add_source("chk")
    world.configure()
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for name in ("settings", "azure_token", "aws:chk", "sqs:chk", "key_vault", "work_queue",
                 "poison_queue", "dcr:AWSCloudTrail", "dcr:AWSS3ConnectorHealth_CL"):
        assert f"pass  {name}" in out
    # WHEN the identity has no role on the DCR, and one table routes to a DCR that is not there
    world.stack.ingestion.allowed_principals = {"someone-else"}
    routes = {"AWSGuardDuty": {"endpoint": world.stack.env["LOGS_INGESTION_ENDPOINT"],
                               "dcrImmutableId": "dcr-missing"}}
    world.configure(DCR_ROUTES=json.dumps(routes))
    assert main(["check", "--json"]) == 1
    rows = {c["name"]: c for c in json.loads(capsys.readouterr().out)["components"]}
    assert not rows["dcr:AWSCloudTrail"]["ok"]
    assert "Monitoring Metrics Publisher" in rows["dcr:AWSCloudTrail"]["hint"]
    assert "DCR_IMMUTABLE_ID" in rows["dcr:AWSGuardDuty"]["hint"]
    assert rows["aws:chk"]["ok"] and rows["sqs:chk"]["ok"]


def test_check_hints_for_sts_sqs_and_key_vault_failures(world, capsys):
    from shared.cli_check import hint

    src = world.add_source("hints")
    world.configure()
    world.stack.keyvault.reset()  # the access key secrets are gone
    src_bad = dict(src)
    world.sqs.delete_queue(QueueUrl=src["queueUrl"])
    assert main(["check", "--no-streams"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  key_vault" in out
    assert "create the secrets" in out or "Key Vault" in out
    assert src_bad
    # the STS refusal credentials.py raises, as the check shows it
    text = ("AwsCredentialError: source p: STS refused AssumeRoleWithWebIdentity for arn (...); "
            "check the role's trust policy")
    assert "trust policy must allow sts:AssumeRoleWithWebIdentity" in hint("aws:p", text)
    assert "queue policy" in hint("sqs:p", "ClientError: AccessDenied")
    assert "Key Vault Secrets User" in hint("key_vault", "HttpResponseError: (Forbidden)")
    assert "no stream Custom-AWSWAF" in hint("dcr:AWSWAF", "400 InvalidStream: ...")


def test_check_with_bad_settings_fails_the_settings_line(world, capsys, monkeypatch):
    monkeypatch.delenv("AWS_SOURCES", raising=False)
    from shared import pipeline

    pipeline.reset_connector()
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  settings" in out and "AWS_SOURCES: missing" in out


def test_status_shows_backlog_queues_circuit_recent_objects_and_heartbeat(world, capsys):
    src = world.add_source("stat")
    for _ in range(2):
        key, data, _ = guardduty(2)
        world.put(src, key, data)
    world.configure()
    host = world.host()
    host.run_timer()
    host.drain()
    world.put(src, f"AWSLogs/{ACCT}/GuardDuty/us-east-1/{day(0)}/late.jsonl.gz", b"{}",
              gz=True)  # one notification waiting in SQS
    queue_name = src["queueUrl"].rsplit("/", 1)[-1]
    boto = __import__("boto3").client("cloudwatch", region_name="us-east-1")
    boto.put_metric_data(Namespace="AWS/SQS", MetricData=[{
        "MetricName": "ApproximateAgeOfOldestMessage", "Value": 42.0, "Unit": "Seconds",
        "Dimensions": [{"Name": "QueueName", "Value": queue_name}]}])
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "source stat: backlog 1, in flight 0, oldest message 42s" in out
    assert "last heartbeat 20" in out and "ok, 2 message(s), 2 enqueued" in out
    assert f"work queue {world.work_queue}: 0 message(s)" in out
    assert "circuit: closed in this process, closed at the last poller run" in out
    assert "2 delivered, 0 partial, 0 running, 0 retrying, 0 dead-lettered" in out
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["objects"]["delivered"] == 2 and data["queues"]["poison"]["depth"] == 0


def test_status_counts_dead_lettered_objects(world, capsys):
    src = world.add_source("statdead")
    world.put(src, f"AWSLogs/{ACCT}/CloudTrail/us-east-1/{day(0)}/{ACCT}_CloudTrail_x.json.gz",
              b'{"Records": [ {"eventTime": ', gz=True)
    world.configure()
    host = world.host()
    host.run_timer()
    host.drain()
    assert main(["status", "--json"]) == 0
    objects = json.loads(capsys.readouterr().out)["objects"]
    assert objects["dead_lettered"] == 1 and objects["delivered"] == 0


# ---- output: escapes, terminal, plain, settings ----------------------------------------------

def test_control_characters_in_keys_and_reasons_are_escaped(world, capsys):
    from shared import pipeline, poison
    from shared.errors import ObjectReadError
    from shared.notifications import ObjectRef

    src = world.add_source("esc")
    world.configure()
    conn = pipeline.connector()
    ref = ObjectRef(source="esc", bucket=src["_bucket"], key="AWSLogs/\x1b[2J\x1b]0;pwned\x07.gz")
    conn.poison.send(poison.for_object(ref, ObjectReadError("gone \u202eevil\r\n"),
                                       stage="read", attempts=1).to_json())
    for args in (["poison", "list"], ["poison", "list", "--json"]):
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert main(["poison", "list"]) == 0
    out = capsys.readouterr().out
    assert "AWSLogs/\\x1b[2J\\x1b]0;pwned\\x07.gz" in out and "\\u202eevil\\x0d\\x0a" in out
    assert safe("a\tb\x9bc") == "a\\x09b\\x9bc"


def _subprocess_env(world) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _backfill_objects(world, name: str, n: int = 30):
    src = world.add_source(name)
    for i in range(n):
        world.put(src, f"AWSLogs/{ACCT}/GuardDuty/us-east-1/{day(0)}/f{i:03d}.jsonl.gz",
                  b"{}" * 50, gz=True)
    world.configure()
    return src


def test_backfill_on_a_terminal_draws_a_progress_bar(world, tmp_path):
    _backfill_objects(world, "tty")
    env = _subprocess_env(world) | {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1",
                                    "COLUMNS": "160"}
    run = subprocess.run([sys.executable, "-m", "shared", "backfill", "--source", "tty",
                          "--rate", "20/s"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stderr
    assert "enqueued 30 object(s)" in run.stdout
    # rich drew the bar (cursor control and the bar glyph), with count, bytes, rate, ETA
    assert "\x1b[" in out and "━" in out
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert re.search(r"backfill ━{20} 30/30 750 B [\d.]+ objects/s ETA 0:00:00", frames)


def test_backfill_when_not_a_terminal_prints_plain_lines(world, tmp_path):
    _backfill_objects(world, "plain", n=5)
    env = _subprocess_env(world) | {"CI": "true"}
    run = subprocess.run([sys.executable, "-m", "shared", "backfill", "--source", "plain"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout + run.stderr and "━" not in run.stderr
    progress = run.stderr.splitlines()
    assert re.fullmatch(r"backfill s3://logs-plain-\w+/: 5 objects \(125 B\) to go",
                        progress[0])
    assert re.fullmatch(r"backfill .*: 5/5 objects \(100%\), 125 B, [\d.]+ objects/s",
                        progress[-1])
    assert "  enqueued 5 object(s), 125 B" in run.stdout.splitlines()


def test_settings_come_from_local_settings_json_under_the_environment(world, tmp_path):
    src = world.add_source("file")
    world.configure()
    keys = ["AWS_SOURCES", "WORK_QUEUE", "POISON_QUEUE", "CHECKPOINT_TABLE",
            "LOGS_INGESTION_ENDPOINT", "DCR_IMMUTABLE_ID", "AzureWebJobsStorage"]
    values = {k: os.environ[k] for k in keys}
    env = {k: v for k, v in _subprocess_env(world).items() if k not in keys}
    (tmp_path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False,
                                                              "Values": values}))
    cmd = [sys.executable, "-m", "shared", "status", "--json"]
    # ./local.settings.json, as `func start` reads it
    run = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["queues"]["work"]["name"] == world.work_queue
    # the environment first
    run = subprocess.run(cmd, env=env | {"WORK_QUEUE": "from-env",
                                         "POISON_QUEUE": "from-env-poison"}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["queues"]["work"]["name"] == "from-env"
    # --settings FILE from anywhere
    other = tmp_path / "sub"
    other.mkdir()
    (tmp_path / "local.settings.json").rename(tmp_path / "prod.settings.json")
    run = subprocess.run([*cmd, "--settings", str(tmp_path / "prod.settings.json")], env=env,
                         cwd=other, capture_output=True, text=True, timeout=120)
    assert json.loads(run.stdout)["sources"][0]["name"] == "file"
    run = subprocess.run([*cmd, "--settings", "missing.json"], env=env, cwd=other,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "no such file" in run.stderr
    assert src


def test_every_command_has_help_with_examples_and_bad_arguments_exit_2(capsys):
    for cmd in (["backfill"], ["poison", "list"], ["poison", "show"], ["poison", "replay"],
                ["poison", "purge"], ["replay"], ["check"], ["status"]):
        assert main([*cmd, "--help"]) == 0
        assert "examples:" in capsys.readouterr().out, cmd
    assert main(["inspect", "--help"]) == 0
    assert main(["nope"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["poison", "purge"]) == 2  # --older-than is required
    assert "--older-than" in capsys.readouterr().err
    assert main(["poison", "replay", "--limit", "-1"]) == 2


def test_the_console_script_is_the_same_cli():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["s3sentinel"] == "shared.cli:entry"
    from shared import __main__, cli

    assert __main__.main is cli.main


def test_in_process_the_file_values_are_removed_again_after_the_command(world, tmp_path,
                                                                         monkeypatch, capsys):
    world.add_source("inproc")
    world.configure()
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {
        "ZZ_FROM_FILE": "1", "WORK_QUEUE": "ignored-env-wins"}}))
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["queues"]["work"]["name"] == world.work_queue
    assert "ZZ_FROM_FILE" not in os.environ
