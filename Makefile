# The two commands a new machine needs: `make demo` (the platform on local services) and
# `make test` (the whole suite). Everything else is a step of those.
SHELL := /bin/bash
.DEFAULT_GOAL := help
LMS := .venv/bin/lms
PYTEST := .venv/bin/pytest
BENCH ?=

.PHONY: help setup lock services-up services-down demo demo-down test test-unit test-integration lint lint-sql bench clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup:  ## Create/refresh .venv and streaming/.venv from the lock files (idempotent)
	@bash scripts/setup.sh

lock:  ## Re-resolve requirements/*.in into the lock files
	.venv/bin/uv pip compile -q requirements/platform.in --python-version 3.11 -o requirements/platform.lock
	.venv/bin/uv pip compile -q requirements/streaming.in --python-version 3.11 -o requirements/streaming.lock

services-up: setup  ## Install what is missing and start the local services
	$(LMS) services up

services-down:  ## Stop the local services this project started
	@if [ -x $(LMS) ]; then $(LMS) services down; fi

demo: setup  ## The whole platform on a simulated school (services → models → API), then a summary
	$(LMS) demo

demo-down:  ## Stop everything the demo started (prediction service, collector, Prefect server, streaming jobs, services)
	@if [ -x $(LMS) ]; then $(LMS) demo-down; fi

test: setup lint  ## The whole suite: unit tests, then integration tests on the real services
	$(PYTEST) tests/unit
	$(PYTEST) tests/integration

test-unit: setup  ## Unit tests only (no services)
	$(PYTEST) tests/unit

test-integration: setup  ## Integration tests (starts the services it needs, stops what it started)
	$(PYTEST) tests/integration

lint: setup  ## ruff lint and format check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

lint-sql: setup  ## sqlfluff (dbt templater) over the dbt models; needs the local PostgreSQL
	.venv/bin/sqlfluff lint dbt_project/models --processes 2

bench: setup  ## Every benchmark (or BENCH=<name>), figures into bench/results/latest.json
	.venv/bin/python -m bench.run $(BENCH)

clean:  ## Remove caches (not the services' data: see `lms services down --purge`)
	rm -rf .pytest_cache .ruff_cache .mypy_cache
