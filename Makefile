# Two commands do everything on a fresh machine with Python 3.11 and Node 20:
#   make demo   run the connector end to end against local stand-ins of AWS and Azure
#   make test   install everything, start the local services, run the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: all install test demo validate lint bench bench-quick soak stack clean lock audit

all: test

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# npm ci: exactly the versions (and integrity hashes) of package-lock.json, never a new resolve
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The project itself, editable: the `s3sentinel` console script (same CLI as `python -m shared`).
$(VENV)/.cli-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(VENV)/.installed $(VENV)/.cli-installed node_modules/.installed

# Lint, then the whole suite; it starts and stops its own services (moto, Azurite, the HTTPS
# emulators) and runs the offline infrastructure checks (tests/test_infra.py).
test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

demo: install
	$(PY) -m devtools.demo

# Offline infrastructure checks (also part of `make test` through tests/test_infra*.py).
validate: install
	$(PY) tools/validate_infra.py

# The deployed app's dependency set pinned with hashes, from requirements.txt (run it after
# changing requirements.txt; PIP_COMPILE_ARGS=--upgrade moves every pin to the newest release).
lock: install
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(PIP_COMPILE_ARGS) \
	  --output-file=requirements.lock requirements.txt

# pip-audit on requirements.lock: a known vulnerability fails; no advisory database reachable
# is a warning (also run by make test: tests/test_supply_chain.py).
audit: install
	$(PY) tools/audit_lock.py

lint: install
	$(VENV)/bin/ruff check .

# Measurements side by side in one run -> benchmarks/results.json (full: < 25 min; quick: smaller
# objects, < 3 min). A smoke version runs inside make test (tests/test_bench_smoke.py).
bench: install
	$(PY) -m benchmarks.run

# The full soak: >= 2,000 objects / 500,000 records through the real path (moto, the timer
# and queue workers as OS processes, Azurite, the faulting Logs Ingestion emulator), workers
# SIGKILLed mid-object; writes soak-results.json and fails when a figure does not hold.
# A short version runs inside make test (tests/test_soak.py).
soak: install
	$(PY) -m devtools.soak --out soak-results.json

bench-quick: install
	$(PY) -m benchmarks.run --quick

# The local stack in the foreground, for `func start` against it (see README).
stack: install
	$(PY) -m devtools.stack

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
