# pactbond: every target sets up what it needs (venv, Python packages, anvil from npm).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
PYTEST := $(BIN)/pytest
XDIST ?= -n 2

.PHONY: setup build build-check lint test test-fast fuzz-long faults-long coverage mutants bench bench-gas demo deploy clean

setup: $(VENV)/.synced node_modules/.installed

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: .tools/bin/uv pyproject.toml uv.lock
	.tools/bin/uv sync --locked --quiet
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

build: setup  ## compile the contracts and refresh the shipped artifacts
	$(BIN)/python scripts/build_artifacts.py

build-check: setup  ## compile and fail if the committed artifacts are stale
	$(BIN)/python scripts/build_artifacts.py --check

lint: setup
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/mypy

test: setup lint build-check  ## the whole suite
	$(PYTEST) $(XDIST) tests

test-fast: setup
	$(PYTEST) $(XDIST) tests -m "not slow"

fuzz-long: setup  ## RELIABILITY C3 long run: >= 5,000 sequences x 100 steps
	rm -f .pactbond/fuzz-report.txt && mkdir -p .pactbond
	PACTBOND_FUZZ_EXAMPLES=5000 PACTBOND_FUZZ_STEPS=100 PACTBOND_FUZZ_REPORT=$(CURDIR)/.pactbond/fuzz-report.txt \
		$(PYTEST) $(XDIST) tests/contracts/stateful -p no:cacheprovider --hypothesis-show-statistics \
		2>&1 | grep -v "Retried draw from"; test $${PIPESTATUS[0]} -eq 0  # hypothesis's own filter noise
	$(BIN)/python scripts/fuzz_report.py .pactbond/fuzz-report.txt

coverage: setup  ## RELIABILITY C2: .vy line coverage of tests/contracts; ends "vy line coverage: NN.N%"
	$(BIN)/python scripts/coverage.py $(XDIST)

mutants: setup  ## RELIABILITY C4: each known bug planted on a scratch copy; ends "mutants caught: C/P"
	$(BIN)/python scripts/mutants.py

demo: setup  ## the main job: a full rollout on a local chain, then the report
	$(BIN)/pactbond demo

faults-long: setup  ## RELIABILITY's oracle faults at full size: 6 kill points x 20, a 5-min outage, 1,000 jobs
	PACTBOND_FAULT_KILL_RUNS=20 PACTBOND_FAULT_OUTAGE=300 PACTBOND_FAULT_BURST=1000 \
		$(PYTEST) tests/oracle/test_faults_process.py tests/oracle/test_faults_node.py -s -p no:cacheprovider

bench: setup  ## off-chain benchmarks: vote signing, a 1,000-job burst (benchmarks/results/*.json)
	$(BIN)/python benchmarks/sign.py
	$(BIN)/python benchmarks/burst.py --jobs 1000 --runs 3

bench-gas: setup build-check
	$(BIN)/python benchmarks/gas.py
	$(BIN)/python benchmarks/batch_bound.py

deploy: setup  ## deploy to the local network (or NETWORK=ethereum:sepolia:node ...)
	$(BIN)/ape run deploy $(if $(NETWORK),--network $(NETWORK),)

clean:
	rm -rf .build .pytest_cache .hypothesis .mypy_cache .ruff_cache
