# dibot: everything runs from a local virtual environment (.venv), built on first use.
# Needs only Python 3.11+ (with its venv module) and network access to PyPI.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install install-dev lint typecheck clean translations frontend

## run: install, migrate the database (SQLite under ./var by default), serve on 127.0.0.1:8000
run: $(VENV)/.installed
	$(BIN)/dibot db upgrade
	$(BIN)/dibot serve

## test: install with the dev tools, then lint, format check, type check and the test suite
test: lint typecheck
	$(BIN)/pytest

## install: the service (with PostgreSQL support) into .venv
install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,dev]'
	touch $@ $(VENV)/.installed

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
