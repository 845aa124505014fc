"""What the Functions host would index from function_app.py (binding types, %SETTING% names,
queue and connection names), checked against host.json and the settings."""
import json
from pathlib import Path

import function_app
from shared.config import SETTINGS_DOC

ROOT = Path(__file__).resolve().parents[1]


# get_functions() indexes once per app (a second call raises on "duplicate" names), as the host
_INDEXED = {f.get_function_name(): json.loads(f.get_function_json())["bindings"]
            for f in function_app.app.get_functions()}


def bindings():
    return _INDEXED


def test_three_functions_with_the_expected_triggers():
    b = bindings()
    assert set(b) == {"poll_notifications", "process_object", "health"}
    [timer] = b["poll_notifications"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%POLL_SCHEDULE%"
    assert timer["runOnStartup"] is False and timer["useMonitor"] is True
    [queue] = b["process_object"]
    assert queue["type"] == "queueTrigger" and queue["queueName"] == "%WORK_QUEUE%"
    assert queue["connection"] == "AzureWebJobsStorage"
    http = b["health"][0]
    assert http["type"] == "httpTrigger" and http["route"] == "health"
    assert http["methods"] == ["GET"] and http["authLevel"] == "FUNCTION"


def test_every_percent_setting_is_a_documented_setting():
    names = {d.name for d in SETTINGS_DOC}
    text = json.dumps(bindings())
    import re
    for ref in re.findall(r"%([A-Za-z0-9_]+)%", text):
        assert ref in names, ref


def test_host_json_poison_semantics_match_the_code():
    host = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    assert host["messageEncoding"] == "base64"  # shared/queues.py writes base64
    from shared.config import _host_max_dequeue_count
    assert _host_max_dequeue_count() == host["maxDequeueCount"] == 5
    # the host's poison queue is <queue>-poison: our default POISON_QUEUE must match it
    poison = [d for d in SETTINGS_DOC if d.name == "POISON_QUEUE"][0]
    work = [d for d in SETTINGS_DOC if d.name == "WORK_QUEUE"][0]
    assert poison.default == work.default + "-poison"


def test_function_app_is_wiring_only():
    src = (ROOT / "function_app.py").read_text()
    for forbidden in ("boto3", "import json\nimport boto", "LogsIngestionClient", "QueueClient"):
        assert forbidden not in src
