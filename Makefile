# SysOps Agent — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/sysops-agent.toml
PY39   ?= $(shell ls -d $$HOME/.pyenv/versions/3.9*/bin/python3 2>/dev/null | tail -n 1)

.PHONY: run test lint typecheck pytest test-py39 clean

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
test: lint typecheck pytest test-py39

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q

## test-py39: the suite on Python 3.9 (RHEL 9's Python), in .venv39
test-py39:
	@if [ -z "$(PY39)" ]; then echo "test-py39: no Python 3.9 found (pyenv install 3.9); skipped"; else \
	  [ -x .venv39/bin/python ] || $(PY39) -m venv .venv39; \
	  .venv39/bin/python -m pip install --quiet --upgrade pip; \
	  .venv39/bin/python -m pip install --quiet -e '.[dev]' && .venv39/bin/pytest -q -p no:cacheprovider; fi

clean:
	rm -rf $(VENV) .venv39 build dist *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
