# Set-up and everyday commands. `make run` and `make test` are the two a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Nothing run from here may reach the real metadata address: google-auth gets a closed loopback
# port unless a command points it at the local fake metadata server.
export GCE_METADATA_HOST ?= 127.0.0.1:9
export GCE_METADATA_IP ?= 127.0.0.1:9

.PHONY: run test lint controlplane checkov bench demo-event clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# checkov lives in its own environment (its hcl2 fork would replace the python-hcl2 the tests use).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

checkov: $(CHECKOV_STAMP)

# Build (or reuse) the control-plane binaries; prints the cold build time when it builds.
controlplane: $(STAMP)
	$(PY) -m tests.controlplane.assets ensure

# Run the project locally against a local control plane (Ctrl-C stops everything).
run: controlplane
	$(PY) -m tests.controlplane

# Post the shared sample preemption event (Eventarc binary CloudEvent) to the local function.
demo-event:
	curl -sS -o /dev/null -w 'HTTP %{http_code}\n' http://127.0.0.1:8080/ \
	  -H 'Content-Type: application/json' -H 'ce-id: 16042958821190034' -H 'ce-specversion: 1.0' \
	  -H 'ce-type: google.cloud.pubsub.topic.v1.messagePublished' \
	  -H 'ce-source: //pubsub.googleapis.com/projects/acme-prod/topics/gke-node-events' \
	  -H 'ce-time: 2026-10-02T08:14:08.731Z' --data-binary @tests/fixtures/cloudevent-pubsub-binary.json

# The whole test suite: lint, types, then every test against the real control plane.
test: controlplane checkov lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache

# Benchmarks: print our figures beside the reference tool's, measured in the same run.
bench: controlplane
	$(PY) -m bench.drain_bench
	$(PY) -m bench.cleanup_bench
