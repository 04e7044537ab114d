# The README's commands: `make demo` runs the facility, `make test` passes.
# Both set up everything they need on a fresh machine (root, Debian bookworm).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ARGS ?=
PYTEST_ARGS ?=
# Debian packages the tests start for real (later issues add slurm, postgresql, ...)
TEST_SYSTEM_PACKAGES := chromium slurm-wlm munge python3-venv postgresql openssh-client openssh-sftp-server openssh-server rsync sshpass sudo memcached openssl

.PHONY: demo test test-fast lint format bench install install-test node system-test clean help labextension-test

help:
	@echo "make demo       set up and run the whole facility on http://127.0.0.1:8000 (DEMO_ARGS='--port 8010')"
	@echo "make test       set up everything the tests need, lint, and run the whole suite"
	@echo "make test-fast  the quick unit tests only"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make bench      run benchmarks/ and write benchmarks/results/latest.{json,md}"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# the JupyterLab panel's sources: `pip install -e .` builds them (node and jlpm, through
# hatch-jupyter-builder), so a change to them redoes the install
LABEXT_SOURCES := labextension/package.json labextension/yarn.lock $(wildcard labextension/src/*.ts labextension/style/*)

# the stamps make re-runs instant and redo the install when its inputs change
$(VENV)/.installed: $(BIN)/python pyproject.toml $(LABEXT_SOURCES)
	@scripts/require-node
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# the Rucio server the Data tab's tests run: its own venv (server and clients both
# ship the `rucio` package); its own .gitignore keeps it out of git
RUCIO_VENV := .venv-rucio
RUCIO_VERSION := 41.5.1
$(RUCIO_VENV)/.installed:
	$(PYTHON) -m venv $(RUCIO_VENV)
	echo '*' > $(RUCIO_VENV)/.gitignore
	$(RUCIO_VENV)/bin/pip install -q --upgrade pip
	$(RUCIO_VENV)/bin/pip install -q 'rucio[postgresql]==$(RUCIO_VERSION)' gunicorn
	touch $@

node_modules/.installed: package.json package-lock.json
	@scripts/require-node
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed
install-test: $(VENV)/.installed-test node_modules/.installed
node: node_modules/.installed

system-test:
	@scripts/install-system-deps $(TEST_SYSTEM_PACKAGES)

demo: install
	$(BIN)/jhub-af demo $(DEMO_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the panel's TypeScript unit tests (node's own test runner; jlpm comes with jupyter-builder)
labextension/node_modules/.installed: $(VENV)/.installed labextension/package.json labextension/yarn.lock
	cd labextension && ../$(BIN)/jlpm install
	touch $@

labextension-test: labextension/node_modules/.installed
	cd labextension && ../$(BIN)/jlpm test

test: system-test install-test $(RUCIO_VENV)/.installed lint labextension-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

bench: install-test $(RUCIO_VENV)/.installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules .jhub-af-demo test-artifacts .pytest_cache .ruff_cache
	rm -rf labextension/node_modules labextension/lib labextension/test-build jhub_af/labextension
