# Storefront — the two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export FLASK_APP := wsgi

.PHONY: run test test-fast install bench translations screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

## make run: install, migrate, load the demo into an empty database, serve on HOST:PORT.
run: $(VENV)/.installed
	$(BIN)/flask db upgrade
	$(BIN)/flask demo load
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## make test: unit, SQLite, PostgreSQL and browser tests (Chromium and PostgreSQL
## are installed or started when missing).
test: $(VENV)/.installed-test
	bash tests/tools/ensure-chromium.sh
	bash tests/tools/with-postgres.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: everything but the browser tests.
test-fast: $(VENV)/.installed-test
	bash tests/tools/with-postgres.sh $(BIN)/python -m pytest -m "not browser" $(PYTEST_ARGS)

## make bench: the benchmark scripts; they print figures (they assert nothing).
bench: $(VENV)/.installed-test
	bash tests/tools/with-postgres.sh bash -c 'for b in tests/bench/bench_*.py; do $(BIN)/python $$b || exit 1; done'

## make translations: extract every UI string into test-output/messages.pot, to compare
## with the French catalogues (tests/test_translations.py checks that none is missing).
translations: $(VENV)/.installed
	mkdir -p test-output
	$(BIN)/pybabel -q extract -F storefront/translations/babel.cfg -k _l -k lazy_gettext \
		-k lazy_ngettext:1,2 --no-location --sort-output -o test-output/messages.pot .
	@echo "Wrote test-output/messages.pot"

## make screenshots: refresh the README images in static/screenshots/ (browser test).
screenshots: $(VENV)/.installed-test
	bash tests/tools/ensure-chromium.sh
	STOREFRONT_SCREENSHOTS=1 $(BIN)/python -m pytest -q -m browser tests/browser/test_foundation_browser.py \
		tests/admin/test_browser.py tests/courses/test_browser.py tests/payments/test_browser_stripe.py

clean:
	rm -rf $(VENV) .pytest_cache test-output
