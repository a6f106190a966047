# Quick start: `make demo` and `make test` set up everything they need from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-ok
export PYFW_REQUIRE_RS := 1

.PHONY: all venv build test test-fast cargo-test lint demo bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.5,<2.0" "pytest>=7"
	touch $(STAMP)

venv: $(STAMP)

# Builds the native module pyfw_rs into the virtual environment (release mode).
# maturin installs python/ (pyfw_rs) in editable mode and the console command
# $(VENV)/bin/pyfw; pyfw-checkout.pth adds the checkout's root, so that pyfw is
# importable from any folder too.
build: $(STAMP)
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/maturin develop --release --quiet
	$(PY) -c "import sys, sysconfig; open(sysconfig.get_path('purelib') + '/pyfw-checkout.pth', 'w').write(sys.argv[1] + '\n')" "$(CURDIR)"
	@test -x $(VENV)/bin/pyfw || { echo "make build: maturin did not install the pyfw command into $(VENV)/bin"; exit 1; }

test: build cargo-test
	$(PY) -m pytest -q -m "slow or not slow"

test-fast: build
	$(PY) -m pytest -q -m "not slow"

cargo-test:
	cargo test --quiet

lint:
	cargo fmt --check
	cargo clippy --quiet --all-targets -- -D warnings
	cargo clippy --quiet --all-targets --features python -- -D warnings

demo: build
	$(PY) -m pyfw demo

bench: build
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) target .pytest_cache python/pyfw_rs/_native*.so
