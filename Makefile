# iris-jupyterhub developer entry points.  `make demo` and `make test` work on a fresh
# machine with Python >= 3.10, node 20 and apt: each installs what it needs, idempotently.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS ?= test,docs,dev,kubernetes,demo


SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-compat lint typecheck docs pytest bench bench-smoke install clean apt-deps

## demo: run the local demo hub at http://127.0.0.1:8000 (Ctrl-C stops everything)
demo: $(VENV)/.installed node_modules/.installed
	$(PY) -m devstack

## test: lint, types, docs (warnings are errors) and the whole test suite
test: install apt-deps lint typecheck docs pytest

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: setup.cfg pyproject.toml requirements-test.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is needed"'
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV) || { \
	  echo "python venv is missing: installing python3-venv"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements-test.txt -e ".[$(EXTRAS)]"
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (node 20) is required"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

apt-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

pytest: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## test-compat: the whole-stack tests again on JupyterHub 6.1 + KubeSpawner 7.1
COMPAT_VENV ?= .venv-jh61
test-compat: node_modules/.installed apt-deps
	@[ -x $(COMPAT_VENV)/bin/python ] || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install -q -c requirements-compat.txt -e ".[test,kubernetes]"
	$(COMPAT_VENV)/bin/python -m pytest -q tests/e2e tests/spawner $(PYTEST_ARGS)

## bench: run the benchmarks at full size, about 13 minutes (printed, not asserted)
bench: install
	$(PY) -m benchmarks

## bench-smoke: every benchmark at a small size, a few minutes (CI: a benchmark that no longer runs fails)
bench-smoke: install
	$(PY) -m benchmarks --smoke

clean:
	rm -rf $(VENV) $(COMPAT_VENV) node_modules docs/_build .pytest_cache .mypy_cache .ruff_cache .demo
