# The README's two commands are `make demo` and `make test`; each sets itself up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements.lock requirements-torch-cpu.lock requirements-torch-cuda.lock
export UV_COMPILE_BYTECODE := 1
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export ML_ASSETS_HOME ?= $(CURDIR)/.ml_assets

.PHONY: setup browser postgres kube-binaries kube-up kube-down demo test test-fast lint dev bench \
	lock clean

# Re-installs only when a lock, the project metadata or a forced TORCH_BUILD change: a second run
# is instant. The stamp holds the torch build installed (scripts/torch_build.py chooses it).
ifneq ($(filter cpu cuda,$(TORCH_BUILD)),)
ifneq ($(TORCH_BUILD),$(shell cat $(VENV)/.installed 2>/dev/null))
.PHONY: $(VENV)/.installed
endif
endif
$(VENV)/.installed: $(LOCKS) pyproject.toml scripts/sync_venv.sh scripts/torch_build.py
	build=$$(PYTHON=$(PYTHON) scripts/sync_venv.sh $(VENV)) && \
	  $(BIN)/uv pip install --python $(BIN)/python --no-deps -e . && echo "$$build" > $@

setup: $(VENV)/.installed

# Materialize the whole pipeline on embedded defaults and print the champion.
demo: setup
	$(BIN)/ml-assets demo

# Debian's chromium for the browser tests (playwright drives it; it never downloads a browser).
browser:
	@scripts/apt_install.sh chromium

# PostgreSQL's server binaries: the tests start a server of their own from them (initdb in a
# temporary directory, a free port on 127.0.0.1) and stop it by PID.
postgres:
	@scripts/apt_install.sh postgresql

# The development cluster's binaries at devcluster/versions.env (and SeaweedFS, the tests' S3
# server), built once into a cache, and the Debian tools its node uses (ip for its network namespace, kube-proxy's iptables and
# conntrack, debootstrap for the Ray image's root file system).
kube-binaries:
	@scripts/apt_install.sh iproute2 iptables conntrack debootstrap
	devcluster/build_binaries.sh

# A one-node cluster with the KubeRay operator, in the foreground until Ctrl-C or `make kube-down`
# (as root: it creates a network namespace). It prints the KUBECONFIG to export.
kube-up: setup kube-binaries
	$(BIN)/python -m ml_assets_tests.kube.cluster up

kube-down: setup
	$(BIN)/python -m ml_assets_tests.kube.cluster down

# Lint, then every test tier (unit, Dagster, slow end-to-end with real Ray + MLflow server,
# kube on a real one-node cluster, browser with Debian's chromium).
test: setup browser postgres kube-binaries
	$(BIN)/ruff check ml_assets ml_assets_tests bench scripts
	$(BIN)/ruff format --check ml_assets ml_assets_tests bench scripts
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow and not kube"

lint: setup
	$(BIN)/ruff check ml_assets ml_assets_tests bench scripts
	$(BIN)/pyright

dev: setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1

bench: setup
	$(BIN)/python -m bench.run_all

# One resolution against PyPI, split into the stack and the two torch builds (scripts/split_lock.py);
# the current pins are the resolver's preferences, so only what pyproject.toml changed moves.
lock: setup
	cat requirements.lock requirements-torch-cuda.lock > $(VENV)/resolved.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" \
	  -o $(VENV)/resolved.lock
	$(BIN)/python scripts/split_lock.py $(VENV)/resolved.lock

clean:
	rm -rf $(VENV) .dagster_home .ml_assets
