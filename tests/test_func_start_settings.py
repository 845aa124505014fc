"""The `func start` path of the README: `python -m devtools.stack --json` in another process
prints a local.settings.json whose Values alone let the app run (the host passes Values to
the worker as environment variables)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stack_cli_settings_are_enough_to_run_the_app(monkeypatch):
    proc = subprocess.Popen([sys.executable, "-m", "devtools.stack", "--json", "--samples"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("}"):
                break
        values = json.loads("".join(lines))["Values"]
        # every setting the example file names is there (local defaults fill the rest)
        example = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
        missing = {"AWS_SOURCES", "LOGS_INGESTION_ENDPOINT", "DCR_IMMUTABLE_ID",
                   "AzureWebJobsStorage", "WORK_QUEUE", "POISON_QUEUE"} - set(values)
        assert not missing and set(example) >= {"AWS_SOURCES", "KEY_VAULT_URL"}
        for key in list(os.environ):
            if key.startswith(("AWS_", "AZURE_", "IDENTITY_")):
                monkeypatch.delenv(key)
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        from devtools.hostsim import HostSim
        from shared import pipeline

        pipeline.reset_connector()
        status, body = pipeline.check_health()
        assert status == 200, body
        host = HostSim(values["AzureWebJobsStorage"], values["WORK_QUEUE"],
                       values["POISON_QUEUE"])
        host.run_timer()
        run = host.drain()
        assert run.succeeded == 4 and run.failed == 0 and host.poison_items() == []
    finally:
        pipeline.reset_connector()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
