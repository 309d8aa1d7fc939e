# Two commands on a fresh machine: `make demo` and `make test` (both install first when needed).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help install lock demo test bench lint format up clean

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

demo: install ## run the whole chain end to end on embedded defaults (SQLite, local lake, local DVC remote)
	$(BIN)/python -m mlops.demo

test: install ## run the test suite (unit, DAG integrity, `airflow dags test` runs, S3 via moto)
	@$(BIN)/python -m pytest -m "not bench" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: install ## benchmarks: our steps as ratios against the raw libraries, same data, same run
	@MLOPS_BENCH_OUT=$${MLOPS_BENCH_OUT:-var/bench} $(BIN)/python -m pytest tests/bench -m bench -s -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no benchmarks"; exit 0; fi; exit $$rc

up: install ## local stack without Docker: Airflow standalone (UI :8080) + MLflow UI (:5000); Ctrl-C stops both
	@eval "$$($(BIN)/mlops env)" && export PATH="$(CURDIR)/$(BIN):$$PATH" && \
	  mkdir -p "$$MLOPS_HOME/mlflow" && \
	  mlflow server --backend-store-uri "$$MLFLOW_TRACKING_URI" --port 5000 \
	      --default-artifact-root "$$MLOPS_HOME/mlflow/artifacts" & mlflow_pid=$$!; \
	  trap 'kill $$mlflow_pid' EXIT; airflow standalone

lint: install ## ruff checks and formatting
	$(BIN)/ruff check dags plugins include tests
	$(BIN)/ruff format --check dags plugins include tests

format: install
	$(BIN)/ruff format dags plugins include tests
	$(BIN)/ruff check --fix dags plugins include tests

clean: ## remove local state (var/: lake, DVC remote, Airflow and MLflow databases)
	rm -rf var
