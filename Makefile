# dibot: everything runs from a local virtual environment (.venv), built on first use.
# Needs only Python 3.11+ (with its venv module) and network access to PyPI.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev lint typecheck lock bench clean translations frontend

## run: install, migrate the database (SQLite under ./var by default), serve on 127.0.0.1:8000
run: $(VENV)/.installed
	$(BIN)/dibot db upgrade
	$(BIN)/dibot serve

## test: install with the dev tools, then lint, format check, type check and the test suite
test: lint typecheck
	$(BIN)/pytest

## bench: the benchmark report (bench/results/REPORT.md and report.json): turns over HTTP
## against a bare Flask ceiling, the turn in process, scale, outbound, scale-out and SMS cost,
## on SQLite and on the PostgreSQL at BENCH_DATABASE_URL (scratch schemas only; the stages that
## need it say so when it cannot be reached). About 13 minutes on 2 cores; BENCH_FULL=1 runs the
## issue's full sizes (100,000 respondents, 10,000,000 answers, 100,000 queued texts).
BENCH_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench: $(VENV)/.installed-dev
	BENCH_DATABASE_URL='$(BENCH_DATABASE_URL)' $(BIN)/python -m bench.suite $(if $(BENCH_FULL),--full)

## install: the service (with PostgreSQL support) into .venv, exactly as requirements/run.txt locks it
install: $(VENV)/.installed

## install-dev: the service and the dev tools into .venv, exactly as requirements/dev.txt locks them
install-dev: $(VENV)/.installed-dev

## lint: ruff's checks and format check
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## typecheck: mypy, strict
typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every package comes from a lock file, each release checked against its hashes; then dibot
# itself without resolving its dependencies again, built by the locked setuptools (build
# isolation would fetch whichever setuptools is newest).
RUN_LOCK := requirements/run.txt
DEV_LOCK := requirements/dev.txt
PIP_INSTALL := $(BIN)/python -m pip install --quiet
$(VENV)/.installed: pyproject.toml $(RUN_LOCK) | $(BIN)/python
	$(PIP_INSTALL) --require-hashes -r $(RUN_LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(PIP_INSTALL) --require-hashes -r $(DEV_LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.installed

## lock: refresh the lock files from pyproject.toml (and requirements/tools.in, what this runs):
## requirements/run.txt (extras postgres), requirements/dev.txt (postgres,dev; the run lock's
## versions) and requirements/tools.txt, each release with the hashes of its files on PyPI.
## Pins that still fit are kept; `make lock LOCK_UPGRADE=--upgrade` moves every one to the
## newest release that fits. Needs Python 3.11 on Linux x86_64 (what dibot runs on) and PyPI.
LOCK_VENV := $(VENV)/lock-tools
LOCK_UPGRADE ?=
# The machine's pip configuration (extra indexes, local wheel folders) is left out, so the
# recorded hashes are PyPI's and the lock files install anywhere.
PIP_COMPILE := env -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_FIND_LINKS -u PIP_CONSTRAINT \
	PIP_CONFIG_FILE=/dev/null CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_VENV)/bin/pip-compile \
	--quiet --generate-hashes --allow-unsafe --strip-extras --no-build-isolation $(LOCK_UPGRADE)
LOCK_MADE_FOR := \# Locked for CPython 3.11 on Linux x86_64; installs check every file against these hashes.
lock: $(LOCK_VENV)/.installed
	$(PIP_COMPILE) --output-file requirements/tools.txt requirements/tools.in
	$(PIP_COMPILE) --all-build-deps --extra postgres --output-file $(RUN_LOCK) pyproject.toml
	$(PIP_COMPILE) --all-build-deps --extra postgres --extra dev --constraint $(RUN_LOCK) \
		--output-file $(DEV_LOCK) pyproject.toml
	sed -i '1i $(LOCK_MADE_FOR)' requirements/tools.txt $(RUN_LOCK) $(DEV_LOCK)

$(LOCK_VENV)/.installed: requirements/tools.txt
	@$(PYTHON) -c 'import platform, sys; sys.exit(None if sys.version_info[:2] == (3, 11) \
		and platform.system() == "Linux" and platform.machine() == "x86_64" \
		else "make lock: the lock files are made with Python 3.11 on Linux x86_64" \
		" (make lock PYTHON=python3.11)")'
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt
	touch $@

## clean: remove the virtual environment, caches and build output (not ./var, your data)
clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

## translations: refresh the template from the flow's English and merge it into every catalog
## (a changed English text comes back fuzzy: the loader refuses it until a translator checks it).
## On an untouched tree it changes no byte: the template has no header (so no date), and each
## catalog keeps its own POT-Creation-Date.
FLOW_DIR ?= flows/digital_inclusion
translations: $(VENV)/.installed-dev
	$(BIN)/pybabel extract -F babel.cfg --no-location --omit-header -o $(FLOW_DIR)/locale/messages.pot .
	$(BIN)/pybabel update -i $(FLOW_DIR)/locale/messages.pot -d $(FLOW_DIR)/locale --ignore-obsolete \
		--ignore-pot-creation-date

## frontend: rebuild the dashboard's vendored GOV.UK Frontend (dashboard/static/govuk) from the
## npm registry: the release pinned in dashboard/frontend/package.json, which must match the
## govuk-frontend-jinja pin in pyproject.toml (a test checks). Needs Node.js and npm; installing
## and running dibot does not.
FRONTEND := dashboard/frontend
GOVUK := $(FRONTEND)/node_modules/govuk-frontend
frontend:
	cd $(FRONTEND) && npm ci --silent
	cd $(FRONTEND) && npx sass --no-source-map --style=compressed --quiet-deps dibot.scss ../static/govuk/govuk-frontend.min.css
	cp $(GOVUK)/dist/govuk/govuk-frontend.min.js dashboard/static/govuk/
	node -p 'require("./$(GOVUK)/package.json").version' > dashboard/static/govuk/VERSION
