# One place for every command of the kit. `make help` lists them.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROCESSES ?= 2
WORKERS ?= 2
NAME ?=
ROBOT_ARGS ?=
RESULTS ?= results

.DEFAULT_GOAL := help
.PHONY: help venv services run test suite stress faults bench report health env-up env-down \
        lint typecheck pytest acceptance libdoc clean conformance mutation distributed \
        model

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the kit, the server and the dev tools (pip install -e .[dev])

services: ## Make sure PostgreSQL and Redis answer (start or install them if needed)
	@bash scripts/ensure_services.sh

run: services venv ## Main job: start the reference server, run the functional suites, write results/
	$(BIN)/python scripts/run_suites.py $(ROBOT_ARGS)

test: services venv lint libdoc pytest acceptance ## The project's own tests: lint, keyword docs, pytest, every suite

suite: services venv ## Run one suite: make suite NAME=message_flow
	@test -n "$(NAME)" || { echo "usage: make suite NAME=<suite name, e.g. message_flow>"; exit 2; }
	$(BIN)/python scripts/run_suites.py --suite "$(NAME)" --include-all $(ROBOT_ARGS)

stress: services venv ## Phase 2 stress suites in parallel with pabot, one merged report
	$(BIN)/python scripts/run_suites.py --pabot $(PROCESSES) --only stress $(ROBOT_ARGS)

faults: services venv ## Every fault-injection suite (private PostgreSQL/Redis, killed nodes)
	$(BIN)/python scripts/run_suites.py --only fault $(ROBOT_ARGS)

bench: services venv ## Benchmark sweep and raw limits -> results/bench.json
	$(BIN)/python scripts/bench.py

distributed: services venv ## Locust master + WORKERS local workers vs a reference server, checker over all
	$(BIN)/python -m ccskit.distributed.launch --workers $(WORKERS); rc=$$?; \
	  $(BIN)/python scripts/report.py --quiet; exit $$rc

mutation: services venv ## Plant each catalogued server defect, run the suites: MUTANTS= SUITES= MODEL_ONLY=1
	MUTANTS="$(MUTANTS)" SUITES="$(SUITES)" MODEL_ONLY="$(MODEL_ONLY)" $(BIN)/python scripts/mutation.py $(MUTATION_ARGS)

model: services venv ## Model-based random walks: make model [SEED=123[.4]] [MODEL_BUDGET=10m]
	MODEL_SEED="$(SEED)" MODEL_BUDGET="$(or $(MODEL_BUDGET),10m)" $(BIN)/python scripts/run_suites.py \
	  --suite model --include-all $(ROBOT_ARGS)

report: venv ## One-page performance and reliability report -> results/performance-report.html (RESULTS=dir)
	$(BIN)/python scripts/report.py --results $(RESULTS)

conformance: venv ## Which protocol statements and promises the last run proved -> results/conformance.html
	$(BIN)/python scripts/conformance.py --results $(RESULTS)

health: venv ## Is PostgreSQL, Redis and the server reachable and healthy?
	$(BIN)/python scripts/health.py

env-up: ## Start PostgreSQL/Redis/server with docker compose where Docker exists, local services otherwise
	@if docker compose version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker compose -f docker-compose.test.yml up -d --wait; \
	else echo "no Docker engine here: using local services"; bash scripts/ensure_services.sh; fi

env-down: ## Stop what env-up started with docker compose (local shared services are left running)
	@if docker compose version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker compose -f docker-compose.test.yml down -v; \
	else echo "no Docker engine here: local services are shared and stay up"; fi

lint: venv ## ruff, robocop, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/robocop check suites resources
	$(BIN)/mypy ccs_server keywords scripts

pytest: services venv ## pytest tests of the server and the keyword libraries
	$(BIN)/pytest -q tests

acceptance: services venv ## Every suite: functional, stress, fault and hostile, then the report
	$(BIN)/python scripts/run_suites.py --include-all $(ROBOT_ARGS)

libdoc: venv ## Render keyword docs into docs/_build/keywords/ (git-ignored; index.html links all)
	$(BIN)/python scripts/libdoc.py

clean: ## Remove results and built keyword docs (keeps .venv and .ccs-env)
	find results -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
	rm -rf docs/_build
