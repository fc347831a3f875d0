# Two commands for a fresh machine with Python 3.11+ and Node 20:  make run  and  make test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY_READY := $(VENV)/.installed
NODE_READY := node_modules/.installed

.PHONY: run serve test lint typecheck unit bench clean

run: $(PY_READY) $(NODE_READY)  ## start the local stack, play the bundled samples, keep serving
	$(BIN)/python -m local.stack run

serve: $(PY_READY) $(NODE_READY)  ## start the local stack in the foreground
	$(BIN)/python -m local.stack serve

test: $(PY_READY) $(NODE_READY) lint typecheck unit  ## ruff, mypy and the whole test suite

lint: $(PY_READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(PY_READY)
	$(BIN)/mypy

unit: $(PY_READY) $(NODE_READY)
	$(BIN)/pytest

bench: $(PY_READY) $(NODE_READY)
	$(BIN)/python bench/cloud.py

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
	rm -rf $(VENV) node_modules .riposte .mypy_cache .ruff_cache .pytest_cache
