# Two commands for a fresh machine with Python 3.11+ and Node 20:  make run  and  make test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_READY := $(VENV)/.installed
NODE_READY := node_modules/.installed

.PHONY: run serve test lint typecheck layers unit bench clean infra-scan permissions

run: $(PY_READY) $(NODE_READY)  ## start the local stack, play the bundled samples, keep serving
	$(BIN)/python -m local.stack run

serve: $(PY_READY) $(NODE_READY)  ## start the local stack in the foreground
	$(BIN)/python -m local.stack serve

test: $(PY_READY) $(NODE_READY) lint typecheck layers unit infra-scan  ## ruff, mypy, layers, the whole test suite, checkov

lint: $(PY_READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_READY)
	$(BIN)/mypy

# The import-linter contracts in pyproject.toml: shared's layers, no import cycle, local.cloud and shared independent,
# nothing deployed importing the CLI. --no-cache: the graph is small, and a stale cache would hide a new import.
layers: $(PY_READY)
	$(BIN)/lint-imports --no-cache

unit: $(PY_READY) $(NODE_READY)
	$(BIN)/pytest

# Every bench on the local stack (minutes; not part of make test): JSON and a markdown table under .riposte/bench/.
bench: $(PY_READY) $(NODE_READY)
	$(BIN)/python bench/scale.py --workers 1,2,4 --all

# checkov scans the Bicep in infra/; modules/graph.bicep is skipped because checkov's Bicep parser does not know the
# `extension` keyword it needs, and checkov has no policies for Microsoft.Graph resources. tools/checkov_gate.py
# fails the scan on a failed check, a parse error, a skip without a reason, or too few resources read.
CHECKOV_VENV := .venv-checkov
CHECKOV_READY := $(CHECKOV_VENV)/.installed

infra-scan: $(PY_READY) $(CHECKOV_READY)  ## checkov on infra/ (Bicep)
	@mkdir -p .riposte
	$(CHECKOV_VENV)/bin/checkov -d infra --framework bicep --skip-download --soft-fail --quiet --compact \
		--skip-path infra/modules/graph.bicep -o json > .riposte/checkov.json
	$(BIN)/python -m tools.checkov_gate .riposte/checkov.json

permissions: $(PY_READY)  ## regenerate docs/permissions.md and infra/graph-permissions.json from the registry
	$(BIN)/python -m tools.gen_permissions

$(CHECKOV_READY): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

$(PY_READY): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(NODE_READY): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .riposte .mypy_cache .ruff_cache .pytest_cache
