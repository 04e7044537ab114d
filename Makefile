# The README's commands: `make demo` runs the facility, `make test` passes.
# Both set up everything they need on a fresh machine (root, Debian bookworm).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ARGS ?=
PYTEST_ARGS ?=
# Debian packages the tests start for real (later issues add slurm, postgresql, ...)
TEST_SYSTEM_PACKAGES := chromium slurm-wlm munge python3-venv postgresql openssh-client openssh-sftp-server openssh-server rsync sshpass sudo memcached openssl

.PHONY: demo test test-fast lint format bench install install-test node system-test clean help labextension-test test-jh5 docs dist

help:
	@echo "make demo       set up and run the whole facility on http://127.0.0.1:8000 (DEMO_ARGS='--port 8010')"
	@echo "make test       set up everything the tests need, lint, and run the whole suite"
	@echo "make test-fast  the quick unit tests only"
	@echo "make lint       ruff check + ruff format --check"
	@echo "make bench      run benchmarks/ and write benchmarks/results/latest.{json,md}"
	@echo "make docs       build the docs site into docs/_build/html (offline, warnings fail)"
	@echo "make test-jh5   the hub-facing tests on JupyterHub 5 (part of make test)"
	@echo "make dist       jhub_af's wheel in dist/, for docker/*/Dockerfile"

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

test: system-test install-test $(RUCIO_VENV)/.installed lint labextension-test docs test-jh5
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install-test
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

bench: install-test $(RUCIO_VENV)/.installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules .jhub-af-demo test-artifacts .pytest_cache .ruff_cache
	rm -rf labextension/node_modules labextension/lib labextension/test-build jhub_af/labextension

# JupyterHub 5 (the z2jh chart's hub image ships 5.x): a second venv with the newest 5.x,
# and the hub-facing tests in it (login/IAM, spawner, accounting and gateway behind the
# hub, ssh, the Helm values' hub config). The panel is already built by .venv's install.
VENV_JH5 := .venv-jh5
JH5_SPEC ?= jupyterhub>=5.3,<6
JH5_TESTS ?= tests/test_deploy_hub.py tests/test_auth_iam_login.py tests/test_auth_iam_outages.py \
	tests/test_spawner_hub.py tests/test_accounting_client.py tests/test_gateway_quota.py \
	tests/test_ssh_protection.py
$(VENV_JH5)/.installed: $(VENV)/.installed pyproject.toml
	$(PYTHON) -m venv $(VENV_JH5)
	echo '*' > $(VENV_JH5)/.gitignore
	$(VENV_JH5)/bin/pip install -q --upgrade pip
	SKIP_JUPYTER_BUILDER=1 $(VENV_JH5)/bin/pip install -q -e '.[test]' '$(JH5_SPEC)'
	touch $@

test-jh5: system-test install-test $(VENV_JH5)/.installed
	$(VENV_JH5)/bin/python -m pytest $(JH5_TESTS)

# the docs site (Sphinx + MyST), offline, every warning an error; the configuration
# reference is generated from the traitlets help at each build
docs: install-test
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	echo '*' > docs/_build/.gitignore
	@echo "docs in docs/_build/html/index.html"

# jhub_af's wheel, the JupyterLab panel built into it: what docker/*/Dockerfile install
dist: install
	rm -rf dist
	$(BIN)/pip wheel -q --no-deps -w dist .
