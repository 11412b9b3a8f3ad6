# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs
# (a virtual environment at .venv, the Node dev tools from package-lock.json, checkov in its
# own virtual environment at .venv-tools) and skips the install when nothing changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov (the Bicep scanner of tests/infra/test_infra.py) pins dependencies that conflict with the
# app's Azure SDKs, so it lives in a virtual environment of its own.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
TOOLS_REQUIREMENTS := tests/infra/checks/requirements-checkov.txt

.PHONY: setup demo demo-clean test bench clean

setup: $(PY_STAMP) $(NODE_STAMP) $(TOOLS_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(TOOLS_STAMP): $(TOOLS_REQUIREMENTS)
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(TOOLS_REQUIREMENTS)
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The bundled scenarios through the whole app: the timeline on the terminal; in evidence/, the
# replay's output (each scenario's decisions, then its final state), one Markdown evidence report
# per scenario, one HTML report per incident, and the decision records read back from the demo
# ledger, which stays in .demo/ for `python -m containment export` and `incident-report`.
demo: setup demo-clean
	mkdir -p evidence
	$(PY) -m containment replay scenarios/*.json --report evidence --demo-ledger > evidence/replay.jsonl
	$(PY) -m containment export decisions > evidence/decisions.jsonl
	@echo "decision records: evidence/decisions.jsonl; evidence reports: evidence/*.md;" \
	      "incident reports: evidence/incidents/; the demo ledger: .demo/ (make demo-clean removes both)"

demo-clean:
	rm -rf .demo evidence

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/cold_start.py
	$(PY) bench/one_event.py
	$(PY) bench/egress_scan.py
	$(PY) bench/storm.py

clean: demo-clean
	rm -rf $(VENV) $(TOOLS_VENV) node_modules .pytest_cache
