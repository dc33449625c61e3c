# The README's two commands are `make demo` and `make test`; each sets itself up first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# torch 2.13.0 CPU: a wheel directory when the machine has one, else PyTorch's CPU index.
TORCH_WHEELS ?= /opt/wheels
TORCH_SOURCE := $(if $(wildcard $(TORCH_WHEELS)/torch-*.whl),--find-links $(TORCH_WHEELS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
export UV_COMPILE_BYTECODE := 1
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export ML_ASSETS_HOME ?= $(CURDIR)/.ml_assets

.PHONY: setup browser demo test test-fast lint dev bench lock clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.9

# Re-installs only when the lock or the project metadata change: a second run is instant.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --python $(BIN)/python $(TORCH_SOURCE) requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Materialize the whole pipeline on embedded defaults and print the champion.
demo: setup
	$(BIN)/ml-assets demo

# Debian's chromium for the browser tests (playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for browser tests"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	  || { $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -q && \
	       $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }; }

# Lint, then every test tier (unit, Dagster, slow end-to-end with real Ray + MLflow server,
# kube with a real API server, browser with Debian's chromium).
test: setup browser
	$(BIN)/ruff check ml_assets ml_assets_tests bench
	$(BIN)/ruff format --check ml_assets ml_assets_tests bench
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow and not kube"

lint: setup
	$(BIN)/ruff check ml_assets ml_assets_tests bench
	$(BIN)/pyright

dev: setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1

bench: setup
	$(BIN)/python -m bench.run_all

lock: | $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu $(TORCH_SOURCE) -o requirements.lock

clean:
	rm -rf $(VENV) .dagster_home .ml_assets
