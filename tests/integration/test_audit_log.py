"""Audit records also go to a dedicated log through the Logging API when a log name is configured."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.controlplane.cluster import TestCluster, wait_until
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer


class FakeLoggingApi:
    """entries:write of the Cloud Logging v2 REST API, on loopback."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.auth: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.split("?", 1)[0].endswith("/entries:write"):
                    owner.auth.append(self.headers.get("Authorization", ""))
                    for entry in body.get("entries", []):
                        owner.entries.append({**entry, "logName": entry.get("logName") or body.get("logName")})
                data = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def logging_api() -> Iterator[FakeLoggingApi]:
    fake = FakeLoggingApi()
    yield fake
    fake.stop()


def test_audit_records_reach_the_dedicated_log(
    server_factory: Callable[..., FunctionServer], cluster: TestCluster, logging_api: FakeLoggingApi
) -> None:
    server = server_factory(
        DRAINER_AUDIT_LOG_NAME="gke-node-drainer-audit",
        DRAINER_LOGGING_API_ENDPOINT=logging_api.url,
        GOOGLE_CLOUD_DISABLE_GRPC="true",
    )
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="p")
    cluster.wait_running(1, node=node.name)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    body, headers = delivery("binary", entry)
    assert server.post(body, headers).status_code == 200

    def actions() -> list[str]:
        return [
            e["jsonPayload"].get("action")
            for e in logging_api.entries
            if e.get("jsonPayload", {}).get("event_id") == entry["operation"]["id"]
        ]

    assert wait_until(lambda: "drain.completed" in actions(), timeout=15), logging_api.entries[-3:]
    assert actions() == ["event.received", "drain.started", "node.cordoned", "pod.evicted", "drain.completed"]
    written = [e for e in logging_api.entries if e.get("jsonPayload", {}).get("action") == "pod.evicted"][-1]
    assert written["logName"].endswith("/logs/gke-node-drainer-audit")
    assert written["jsonPayload"]["pod"] == f"{cluster.namespace}/p"
    assert all(a.startswith("Bearer ya29.test-") for a in logging_api.auth)
    # stdout keeps the same records
    assert server.wait_audit(action="drain.completed", event_id=entry["operation"]["id"])
