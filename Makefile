# Two commands on a fresh machine: `make demo` and `make test` (both install first when needed).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
ENV_FILE ?= .env

.PHONY: help install lock demo test bench walkthrough lint format up down secrets clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with the pinned dependency set (requirements.lock) and the mlops package

$(STAMP): requirements.lock pyproject.toml
	@echo "==> installing pinned dependencies into $(VENV) (first time: a few minutes)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

lock: ## re-resolve requirements.txt into requirements.lock
	$(BIN)/uv pip compile requirements.txt --python-version 3.11 --no-header --annotation-style line -o requirements.lock

demo: install ## two models through the real DAGs on embedded defaults, then four simulated weeks (step counter)
	$(BIN)/python -m mlops.demo

test: install ## run the test suite (unit, DAG integrity, `airflow dags test` runs, S3 via moto)
	@$(BIN)/python -m pytest -m "not bench and not reliability and not topology and not browser and not install and not services and not onboarding" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: install ## benchmarks: our steps against the raw libraries, same data, same run; var/bench/results.json + the table in docs/testing.md
	@out=$${MLOPS_BENCH_OUT:-var/bench}; MLOPS_BENCH_OUT=$$out $(BIN)/python -m pytest tests/bench -m bench -s -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no benchmarks"; exit 0; fi; \
	if [ -f $$out/results.json ]; then $(BIN)/python tests/bench/bench_results.py $$out/results.json --readme docs/testing.md > /dev/null; \
	  echo "docs/testing.md: benchmark table regenerated from $$out/results.json"; fi; exit $$rc

up: install ## local stack without Docker, in the background: Airflow UI :8080 (+ MLOps page), MLflow UI :5000
	$(BIN)/python -m mlops.stack up

down: ## stop exactly the processes `make up` started (PID files in $MLOPS_HOME/run)
	@test -x $(BIN)/python || { echo "no .venv: nothing was started"; exit 0; }; $(BIN)/python -m mlops.stack down

walkthrough: install ## run the README's bring-your-own-data commands for real; write their output into README.md and docs/walkthrough.md
	$(BIN)/python -m tests.walkthrough README.md

lint: install ## ruff checks and formatting
	$(BIN)/ruff check dags plugins include tests
	$(BIN)/ruff format --check dags plugins include tests

format: install
	$(BIN)/ruff format dags plugins include tests
	$(BIN)/ruff check --fix dags plugins include tests

secrets: ## write .env for docker compose: random credentials, mode 600, never overwrites an existing one
	@$(PYTHON) include/docker/generate_env.py $(ENV_FILE)

clean: ## remove local state (var/: lake, DVC remote, Airflow and MLflow databases)
	rm -rf var
