# Two commands do all set-up on a fresh machine with Python 3.11: `make run`, `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed-stamp

.PHONY: run scaled test test-fast lint format bench venv clean

$(STAMP): requirements.txt requirements-dev.txt clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Run the whole product in embedded mode (SQLite, in-memory layer, simulator).
## manage.py runs the development settings (DEBUG on); static files come from
## WhiteNoise in the middleware chain (fmpsite's runserver leaves Django's out).
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_demo_user
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

## The production shape on this machine: nginx on PORT in front of two daphne web
## processes (SCALED_WEB_PROCS=4 make scaled: four) and two feed workers, under
## supervisor, on Redis and PostgreSQL (deploy/scaled.py; Ctrl-C stops everything).
scaled: $(STAMP)
	HOST=$(HOST) PORT=$(PORT) $(PY) -m deploy.scaled

## Run the whole test suite (starts its own simulator, servers and workers).
test: $(STAMP)
	$(PY) -m pytest

## The in-process tier only (no server subprocess, browser, Redis or PostgreSQL;
## markers in pyproject.toml, set by tests/conftest.py): under a minute.
FAST := not live and not browser and not redis and not postgres
test-fast: $(STAMP)
	$(PY) -m pytest -m "$(FAST)"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## Benchmarks: `make bench` (full) or `make bench QUICK=1` (under a minute).
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
