"""Offline checks of infra/: Bicep, CloudFormation, KQL and app settings.

Run from the repository root with the project venv (``make validate``):

    .venv/bin/python tools/validate_infra.py [--skip-checkov] [--json]

Each check is one "stage"; the summary prints counts per stage. The stages live in
tools/validate/, one module per thing checked, each module's docstring says what it checks
and with which tool:

* bicep-parse, streams, rbac, azure-hardening   validate/bicep.py (pycep-parser)
* app-settings, parameters                      validate/settings.py (main.bicep vs. shared.config)
* kql                                           validate/kql.py (Kusto.Language, tools/kql_check.js)
* health-values                                 validate/health_values.py (the queries vs. the code)
* cfn-lint, aws-policy, aws-hardening           validate/cloudformation.py (cfn-lint)
* checkov                                       validate/checkov.py (checkov, both frameworks)

Exit status 0 when every stage passes, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

from validate import bicep, checkov, cloudformation, health_values, kql, settings
from validate.common import Stage, summary

CHECKS: list[tuple[str, Callable[[], Stage]]] = [
    ("bicep-parse", bicep.check_bicep_parse),
    ("streams", bicep.check_streams),
    ("app-settings", settings.check_app_settings),
    ("rbac", bicep.check_rbac),
    ("parameters", settings.check_parameters),
    ("kql", kql.check_kql),
    ("health-values", health_values.check_health_values),
    ("cfn-lint", cloudformation.check_cfn_lint),
    ("aws-policy", cloudformation.check_aws_policy),
    ("aws-hardening", cloudformation.check_aws_hardening),
    ("azure-hardening", bicep.check_azure_hardening),
    ("checkov", checkov.check_checkov),
]
# stages that read a .bicep file: not run when one does not parse
NEEDS_BICEP = {"streams", "app-settings", "rbac", "parameters", "kql", "health-values", "checkov",
               "azure-hardening"}


def run(skip: set[str] | None = None) -> list[Stage]:
    stages = []
    parsed_ok = True
    for name, fn in CHECKS:
        if skip and name in skip:
            continue
        if name != "bicep-parse" and not parsed_ok and name in NEEDS_BICEP:
            stages.append(Stage(name, problems=["not run: a .bicep file does not parse"]))
            continue
        start = time.monotonic()
        try:
            stage = fn()
        except Exception as err:  # a crash is a failure of that stage, not of the run
            stage = Stage(name, problems=[f"crashed: {type(err).__name__}: {err}"])
        stage.seconds = time.monotonic() - start
        stages.append(stage)
        if name == "bicep-parse":
            parsed_ok = stage.ok
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Offline checks of infra/ (see module doc).")
    parser.add_argument("--skip-checkov", action="store_true", help="skip the checkov stage")
    parser.add_argument("--json", action="store_true", help="print the stages as JSON")
    args = parser.parse_args(argv)
    skip = {"checkov"} if args.skip_checkov else set()
    stages = run(skip)
    if args.json:
        print(json.dumps([st.__dict__ for st in stages], indent=1))
    else:
        print(summary(stages))
    return 0 if all(s.ok for s in stages) else 1


if __name__ == "__main__":
    sys.exit(main())
