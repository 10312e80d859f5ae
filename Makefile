# market-totals: every developer and CI command. Only python3 (3.11+) and PyPI are assumed.
# The function runs on python3.13 in Lambda, so a python3.13 is preferred where there is one
# (pyenv's, or on PATH); any python3 >= 3.11 works for running and testing.
SHELL := /bin/bash
PYTHON ?= $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3))),$(shell command -v python3.13 2>/dev/null),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run test lint typecheck unit clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(STAMP) ## create .venv with the runtime and dev dependencies

run: $(STAMP) ## embedded S3 (moto), sample object, invoke the handler, print the result (ARGS=... for flags)
	PYTHONPATH=src $(BIN)/python scripts/local_invoke.py $(ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src scripts tests
	$(BIN)/ruff format --check src scripts tests

typecheck: $(STAMP) ## mypy, strict
	$(BIN)/mypy src scripts

unit: $(STAMP) ## the pytest suite with the branch-coverage gate
	$(BIN)/pytest --cov --cov-fail-under=95 $(PYTEST_ARGS)

test: lint typecheck unit ## everything CI runs

clean: ## remove the virtualenvs and caches
	rm -rf $(VENV) .venv-* .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
