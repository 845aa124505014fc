# Two commands do everything on a fresh machine with Python 3.11 and Node 20:
#   make demo   run the connector end to end against local stand-ins of AWS and Azure
#   make test   install everything, start the local services, run the whole suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: all install test demo validate lint bench bench-quick stack clean

all: test

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

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

lint: install
	$(VENV)/bin/ruff check .

# Measurements side by side in one run -> benchmarks/results.json (full: < 25 min; quick: smaller
# objects, < 3 min). A smoke version runs inside make test (tests/test_bench_smoke.py).
bench: install
	$(PY) -m benchmarks.run

bench-quick: install
	$(PY) -m benchmarks.run --quick

# The local stack in the foreground, for `func start` against it (see README).
stack: install
	$(PY) -m devtools.stack

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
