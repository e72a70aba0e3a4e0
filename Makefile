# PosHub: `make demo` and `make test` do all the set-up on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: demo test test-slow test-fast lint types bench bench-gateway bench-risk messages lock clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(DEV_STAMP): requirements-dev.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(RUNTIME_STAMP) $@

demo: $(RUNTIME_STAMP)
	$(BIN)/poshub demo

# lint-imports checks the layering contracts in pyproject.toml ([tool.importlinter]).
lint: $(DEV_STAMP)
	$(BIN)/ruff check poshub tests bench
	$(BIN)/ruff format --check poshub tests bench
	$(BIN)/lint-imports

types: $(DEV_STAMP)
	$(BIN)/mypy poshub tests bench

# The whole suite except tests marked slow; runs against SQLite always and against
# PostgreSQL too when POSHUB_TEST_POSTGRES_URL is set. Two xdist workers, one per core of
# the CI machine: every worker has its own SQLite files and PostgreSQL schema, and live
# servers take a free port.
test: lint types
	$(BIN)/python -m pytest -p xdist -n 2 -m "not slow"

test-slow: $(DEV_STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(DEV_STAMP)
	$(BIN)/python -m bench.applications
	$(BIN)/python -m bench.gateway

# Echo limit, naive host and PosHub end to end at 64 terminals (docs/performance.md).
bench-gateway: $(DEV_STAMP)
	$(BIN)/python -m bench.gateway --terminals 64 --duration 10

# Rule evaluation p99 and gateway throughput with risk on vs off, in one run (docs/performance.md).
bench-risk: $(DEV_STAMP)
	$(BIN)/python -m bench.risk --terminals 64 --duration 10 --rounds 2 --authorizations 20000

# Extract every marked string (N_, _ and t in Python; _ in templates, see babel.cfg) into
# the template, then merge it into poshub/locale/zh_CN/LC_MESSAGES/messages.po. New msgids
# arrive untranslated; tests/core/test_i18n.py fails until each one has a translation.
messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k _ -k t --add-location=file \
		--project=PosHub --version=$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("poshub"))') \
		--copyright-holder="PosHub contributors" -o poshub/locale/messages.pot .
	$(BIN)/pybabel update -i poshub/locale/messages.pot -d poshub/locale -D messages \
		--no-fuzzy-matching --ignore-obsolete

# Regenerate the pinned lock files after changing pyproject.toml.
lock: $(DEV_STAMP)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --strip-extras -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --strip-extras --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
