"""Audit records also go to a dedicated log through the Logging API when a log name is configured."""

from __future__ import annotations

from collections.abc import Callable

from tests.controlplane.cluster import TestCluster, wait_until
from tests.support.deliveries import delivery, log_entry
from tests.support.fakes import FakeLoggingApi
from tests.support.server import FunctionServer


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
