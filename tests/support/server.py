"""Run main.py under functions-framework's real HTTP server, as a child process, and read its audit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests

from tests.controlplane.harness import ControlPlane, free_port

REPO = Path(__file__).resolve().parents[2]
# Google APIs a function may call, pointed at a closed loopback port unless a test gives a fake:
# nothing the tests start reaches beyond loopback.
CLOSED_GOOGLE_APIS = {
    "DRAINER_COMPUTE_API_ENDPOINT": "http://127.0.0.1:9",
    "DRAINER_CONTAINER_API_ENDPOINT": "http://127.0.0.1:9",
}


def cluster_entry(
    plane: ControlPlane, *, name: str = "test", location: str = "europe-west4", **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "project": plane.project,
        "location": location,
        "endpoint": plane.url,
        "ca_file": str(plane.ca_file),
        **extra,
    }


def framework_command(target: str, signature: str, port: int) -> list[str]:
    """functions-framework serving ``target`` of main.py on a loopback port."""
    return [
        sys.executable,
        "-m",
        "functions_framework",
        f"--target={target}",
        f"--signature-type={signature}",
        "--source=main.py",
        "--host=127.0.0.1",
        f"--port={port}",
    ]


class FunctionServer:
    """functions-framework serving one target of main.py on a loopback port."""

    def __init__(self, *, target: str, signature: str, env: Mapping[str, str], log_path: Path) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_", "CLOUDSDK_"))}
        child_env.update({"PYTHONUNBUFFERED": "1", **CLOSED_GOOGLE_APIS, **env})
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            framework_command(target, signature, self.port),
            cwd=REPO,
            env=child_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"functions-framework exited: {self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise TimeoutError("functions-framework did not start listening")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    # ----------------------------------------------------------------- audit
    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def audit(self, predicate: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        records = []
        for line in self.lines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("audit") is True and (predicate is None or predicate(record)):
                records.append(record)
        return records

    def audit_for(self, *, action: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return self.audit(
            lambda r: (action is None or r.get("action") == action) and all(r.get(k) == v for k, v in match.items())
        )

    def wait_audit(self, *, action: str, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.audit_for(action=action, **match)
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no audit record {action} {match}; last lines:\n" + "\n".join(self.lines()[-30:]))

    # ------------------------------------------------------------- requests
    def post(self, body: bytes | str, headers: Mapping[str, str], timeout: float = 120.0) -> requests.Response:
        return requests.post(self.url + "/", data=body, headers=dict(headers), timeout=timeout)


def iter_audit(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("audit") is True:
                yield record
