# iris-jupyterhub developer entry points.  `make demo` and `make test` work on a fresh
# machine with Python >= 3.10, node 20 and apt: each installs what it needs, idempotently.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
EXTRAS ?= test,docs,dev,kubernetes,demo


SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-stacks test-scale lint typecheck docs pytest bench bench-smoke bench-scale \
	install clean apt-deps

## PYTEST_WORKERS: pytest-xdist workers for `make pytest` (and so `make test`) and the stacks.
## The whole-stack tests mostly wait for real hubs, proxies, the IdP and pods, so 3 workers
## keep 2 cores busy; each test file runs whole on one worker, in file order (--dist loadfile),
## so a module's shared stack is built once. PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 3
XDIST := -n $(PYTEST_WORKERS) --dist loadfile

## demo: run the local demo hub at http://127.0.0.1:8000 (Ctrl-C stops everything)
demo: $(VENV)/.installed node_modules/.installed
	$(PY) -m devstack

## test: lint, types, docs (warnings are errors) and the whole test suite (not tests/scale)
test: install apt-deps lint typecheck docs pytest

install: $(VENV)/.installed node_modules/.installed .venv-rucio/.installed

## .venv-rucio: a real Rucio server (devstack/rucio.py) and the tests' notebook environment, apart
## from .venv (Rucio pins its own SQLAlchemy and Flask); pinned by requirements-rucio.txt
.venv-rucio/.installed: requirements-rucio.txt
	@[ -x .venv-rucio/bin/python ] || $(PYTHON) -m venv .venv-rucio
	.venv-rucio/bin/python -m pip install -q --upgrade pip
	.venv-rucio/bin/python -m pip install -q -r requirements-rucio.txt
	@touch $@

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

## pytest: the test suite, PYTEST_WORKERS at a time; the scale stage is left to test-scale
## (pyproject.toml: -m "not scale")
pytest: install
	$(VENV)/bin/python -m pytest $(XDIST) $(PYTEST_ARGS)

## test-scale: the scale, burst and fault stage (tests/scale, marker `scale`) at IRIS_SCALE
## size: `smoke` (default, what CI runs) or `full` (1,000 servers, 200 logins, 50 spawns).
## One process: the tests measure the hub under load, so nothing else of the suite runs beside
## them. No test collected is a failure (pytest's exit 5): the stage must not pass empty.
IRIS_SCALE ?= smoke
test-scale: install apt-deps
	IRIS_SCALE=$(IRIS_SCALE) $(VENV)/bin/python -m pytest -n 0 -p no:cacheprovider -m scale tests/scale $(PYTEST_ARGS)

## test-stacks: the whole-stack tests on the exact hub stacks of z2jh 4.2.0 and 4.4.0
## (each also alone: make test-stack-4.2.0). A stack is a Python 3.12 virtualenv holding the hub
## image's pinned requirements (requirements-z2jh-<chart version>.txt) and the library installed
## with them as constraints, as images/hub/Dockerfile does; the test tools are added without the
## ones the image pins (the pins win). `pip check` and an unchanged-pins check must pass first.
Z2JH_STACKS  := 4.2.0 4.4.0
PYENV_ROOT   ?= $(HOME)/.pyenv
PYTHON312    ?= $(or $(firstword $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python3.12)),$(shell command -v python3.12 2>/dev/null))
STACK_TESTS  ?= tests/e2e tests/spawner
STACK_TARGETS := $(Z2JH_STACKS:%=test-stack-%)
STACK_VENVS   := $(Z2JH_STACKS:%=.venv-z2jh-%)

.PHONY: $(STACK_TARGETS)
test-stacks: $(STACK_TARGETS)

$(STACK_TARGETS): test-stack-%: .venv-z2jh-%/.installed node_modules/.installed apt-deps
	.venv-z2jh-$*/bin/python -m pip check
	.venv-z2jh-$*/bin/python -m devstack.pins check requirements-z2jh-$*.txt
	PYTHONPATH=$(CURDIR) .venv-z2jh-$*/bin/python -m pytest -q -p no:cacheprovider $(XDIST) $(STACK_TESTS) $(PYTEST_ARGS)

$(STACK_VENVS:%=%/.installed): .venv-z2jh-%/.installed: requirements-z2jh-%.txt setup.cfg pyproject.toml
	@[ -n "$(PYTHON312)" ] && "$(PYTHON312)" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null || { \
	  echo "Python 3.12 (the hub images' Python) is needed for the z2jh stacks: none in"; \
	  echo "$(PYENV_ROOT)/versions/3.12*/bin or on PATH (PYTHON312='$(PYTHON312)')."; \
	  echo "Install it ('pyenv install 3.12') or run make PYTHON312=/path/to/python3.12"; \
	  exit 1; }
	@[ -x .venv-z2jh-$*/bin/python ] || "$(PYTHON312)" -m venv .venv-z2jh-$*
	.venv-z2jh-$*/bin/python -m pip install -q --upgrade pip
	.venv-z2jh-$*/bin/python -m pip install -q -r requirements-z2jh-$*.txt
	.venv-z2jh-$*/bin/python -m pip install -q -c requirements-z2jh-$*.txt -e .
	.venv-z2jh-$*/bin/python -m devstack.pins tools requirements-z2jh-$*.txt > .venv-z2jh-$*/stack-tools.txt
	.venv-z2jh-$*/bin/python -m pip install -q -c requirements-z2jh-$*.txt -r .venv-z2jh-$*/stack-tools.txt
	@touch $@

## bench: run the benchmarks at full size, about 13 minutes (printed, not asserted)
bench: install
	$(PY) -m benchmarks

## bench-smoke: every benchmark at a small size, a few minutes (CI: a benchmark that no longer runs fails)
bench-smoke: install
	$(PY) -m benchmarks --smoke

## bench-scale: the 1,000-server run (benchmarks/scale.py) at full size; long, printed, not asserted
bench-scale: install apt-deps
	IRIS_SCALE=full $(PY) -m benchmarks.scale

clean:
	rm -rf $(VENV) $(STACK_VENVS) .venv-rucio node_modules docs/_build .pytest_cache .mypy_cache .ruff_cache .demo
