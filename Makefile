# Set-up and everyday commands. `make run` and `make test` are the two a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Nothing run from here may reach the real metadata address: google-auth gets a closed loopback
# port unless a command points it at the local fake metadata server.
export GCE_METADATA_HOST ?= 127.0.0.1:9
export GCE_METADATA_IP ?= 127.0.0.1:9

.PHONY: run test unit lint lock controlplane checkov bench demo-event clean

# Installs come only from the compiled lock files (requirements*.txt: every package, transitive ones
# included, pinned with hashes); the human-edited inputs are requirements*.in (see `make lock`).
PIP_VERSION := 26.3
PIP_INSTALL  = -m pip install --quiet --require-hashes

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) $(PIP_INSTALL) -r requirements-dev.txt
	touch $(STAMP)

# The project itself, editable, with nothing resolved (its dependencies come from the locks above):
# puts `gke-node-drainer` on the venv's PATH.
PROJECT := $(VENV)/.project
$(PROJECT): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $(PROJECT)

# checkov lives in its own environment (its hcl2 fork would replace the python-hcl2 the tests use).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet pip==$(PIP_VERSION)
	$(CHECKOV_VENV)/bin/python $(PIP_INSTALL) -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)

# Recompile the lock files from the inputs, for Python 3.11 on linux x86_64 (the functions' runtime).
# Versions already locked are kept unless an input asks otherwise; `make lock LOCK_FLAGS=--upgrade`
# moves every package to its newest allowed version. The dev lock is constrained by the runtime lock.
LOCK_FLAGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command 'make lock' $(LOCK_FLAGS)

lock: $(STAMP)
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.txt
	$(UV_COMPILE) requirements-checkov.in -o requirements-checkov.txt

# Build (or reuse) the control-plane binaries; prints the cold build time when it builds.
controlplane: $(PROJECT)
	$(PY) -m tests.controlplane.assets ensure

# Run the project locally against a local control plane (Ctrl-C stops everything).
run: controlplane
	$(PY) -m tests.controlplane

# Post the shared sample preemption event (Eventarc binary CloudEvent), stamped now, to the local function.
demo-event: $(PROJECT)
	$(PY) -m tests.support.demo_event

# The whole test suite: lint, types, then every test against the real control plane.
test: controlplane checkov lint
	$(PY) -m pytest

# The tests that need no control plane (no Go build, no control-plane start): seconds once installed.
# tests/unit also runs checkov on terraform/, so it needs the checkov environment.
unit: $(PROJECT) checkov
	$(PY) -m pytest tests/unit

lint: $(PROJECT)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmarks: print our figures beside the reference tool's, measured in the same run.
bench: controlplane
	$(PY) -m bench.drain_bench
	$(PY) -m bench.cleanup_bench
	$(PY) -m bench.failover_bench
