# SysOps Agent — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/sysops-agent.toml
PY39   ?= $(shell ls -d $$HOME/.pyenv/versions/3.9*/bin/python3 2>/dev/null | tail -n 1)

MATRIX_PYTHONS ?= $(shell for v in 3.9 3.10 3.11 3.12 3.13; do ls -d $$HOME/.pyenv/versions/$$v.*/bin/python3 2>/dev/null | sort -V | tail -n 1; done)

.PHONY: run test system-deps lint typecheck pytest test-py39 test-matrix dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

## run: create .venv, install, start the agent in the foreground on this host
run: $(VENV)/.installed
	$(BIN)/sysops-agent run --config $(CONFIG)

## test: lint, type-check and run the whole suite (also on Python 3.9 when available)
test: system-deps lint typecheck pytest test-py39

## test-fast: the edit-run loop (< 30 s): unit tests without the slow ones; no lint, no integration
.PHONY: test-fast
test-fast: $(VENV)/.dev-installed
	$(BIN)/pytest -q -m "not slow and not integration"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q

## system-deps: the real Prometheus and Alertmanager for the integration tests (Debian packages)
SYSTEM_DEPS_BINS := prometheus prometheus-alertmanager
system-deps:
	@missing=""; for b in $(SYSTEM_DEPS_BINS); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "system-deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager; } \
	    || echo "system-deps: apt-get failed: the Prometheus/Alertmanager integration tests will be skipped"; \
	else \
	  echo "system-deps: missing$$missing and cannot install (needs root and apt-get):" \
	       "the Prometheus/Alertmanager integration tests will be skipped"; \
	fi

## test-py39: the suite on Python 3.9 (RHEL 9's Python), in .venv39
test-py39:
	@if [ -z "$(PY39)" ]; then echo "test-py39: no Python 3.9 found (pyenv install 3.9); skipped"; else \
	  [ -x .venv39/bin/python ] || $(PY39) -m venv .venv39; \
	  .venv39/bin/python -m pip install --quiet --upgrade pip; \
	  .venv39/bin/python -m pip install --quiet -e '.[dev]' && .venv39/bin/pytest -q -p no:cacheprovider; fi

## dist: the wheel and the single-file dist/sysops-agent.pyz (runs on any Python >= 3.9)
dist: | $(BIN)/python
	$(BIN)/python deploy/build_pyz.py --dist dist

## test-matrix: the suite on every pyenv Python from 3.9 to 3.13, each in its own .venv-3.X
test-matrix:
	@failed=""; for py in $(MATRIX_PYTHONS); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  echo "== Python $$v ($$py)"; \
	  { [ -x .venv-$$v/bin/python ] || $$py -m venv .venv-$$v; } && \
	  .venv-$$v/bin/python -m pip install --quiet --upgrade pip && \
	  .venv-$$v/bin/python -m pip install --quiet -e '.[dev]' && \
	  .venv-$$v/bin/pytest -q -p no:cacheprovider || failed="$$failed $$v"; \
	done; \
	if [ -z "$(MATRIX_PYTHONS)" ]; then echo "test-matrix: no pyenv Python 3.9-3.13 found"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "test-matrix: FAILED on$$failed"; exit 1; fi; \
	echo "test-matrix: passed on every Python"

clean:
	rm -rf $(VENV) .venv39 .venv-3.* build dist *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
