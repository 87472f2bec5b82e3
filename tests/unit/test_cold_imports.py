"""A cold start imports only what the first event needs: the heavy clients that are used only in
some configurations, and the modules of other entry points, are imported where they are used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# imported only where used: the Logging client for a dedicated audit log, the Pub/Sub client for an
# outcome topic (and by the pull worker), google-auth's ID-token verification for an HTTP audience,
# the HTTP API for the HTTP entry points, the CLI and explain never by main; test-only libraries never.
# (The kubernetes package's own __init__ still imports all its parts: the gateway does not bypass it.)
LAZY = (
    "google.cloud.logging",
    "google.cloud.logging_v2",
    "google.cloud.pubsub_v1",
    "google.api_core.operations_v1",
    "grpc",
    "google.oauth2.id_token",
    "functions.entry.http_api",
    "functions.usecases.operations",
    "functions.engines.cleanup",
    "functions.entry.cli",
    "functions.entry.cli_commands",
    "functions.entry.cli_output",
    "functions.entry.explain",
    "functions.entry.worker",
    "hypothesis",
    "pytest",
)
CLUSTERS = json.dumps(
    [
        {
            "name": "a",
            "project": "p",
            "location": "europe-west4",
            "endpoint": "https://127.0.0.1:1",
            "ca_file": "/dev/null",
        }
    ]
)
STEPS = {
    "import main": "import main",
    # what the first event does before it calls the cluster: settings, audit writer, outcome publisher
    "import main, first audit record": "import main\nmain.node_events()\nmain.runtime().finish()\n",
}


def _loaded(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n' + ' '.join(sorted(sys.modules)))\n"
    env = {"PATH": "/usr/bin", "DRAINER_CLUSTERS": CLUSTERS}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "service.started" in result.stdout or "main.node_events" not in code
    return set(result.stdout.strip().splitlines()[-1].split())


@pytest.mark.parametrize("step", STEPS, ids=str)
def test_cold_start_leaves_heavy_modules_unimported(step: str) -> None:
    loaded = _loaded(STEPS[step])
    assert "main" in loaded
    assert "functions.usecases.node_events" in loaded
    found = sorted(m for m in loaded if m in LAZY or m.startswith(tuple(f"{name}." for name in LAZY)))
    assert not found, f"{step} imported {found}"


def test_the_probe_sees_a_lazy_module_once_it_is_used() -> None:
    # the HTTP entry points import the HTTP API at their first call: the probe must see it then
    loaded = _loaded("import main\nimport functions.entry.http_api\n")
    assert "functions.entry.http_api" in loaded
    assert "google.cloud.logging_v2" not in loaded
