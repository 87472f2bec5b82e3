"""The log-based metrics Terraform creates, evaluated against real audit records.

The functions run through functions-framework against the real API server and write their audit records to
the dedicated log through a loopback Logging API; each metric's filter (rendered from monitoring.tf) must
select exactly the records it is meant to count, never a dry run, and every label it extracts must exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.deliveries import delivery, log_entry
from tests.support.fakes import FakeLoggingApi
from tests.support.logfilter import compile_filter
from tests.support.server import FunctionServer
from tests.support.terraform import MODULE, Module, load_module, render

AUDIT_LOG = "gke-node-drainer-audit"

# What each metric is meant to count: audit actions, dry runs excluded.
COUNTED = {
    "drains": {"drain.completed", "drain.incomplete"},  # drain.failed needs a broken API server: see test_drain_events
    "failed_drains": {"drain.incomplete"},
    "evictions": {"pod.evicted"},
    "blocked_pods": {"pod.blocked"},
    "force_cleanups": {"pod.force_deleted"},
    "cleaned_jobs": {"job.deleted"},
}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module(MODULE)


def _extracted_fields(extractor: str) -> list[str]:
    return re.findall(r"EXTRACT\(jsonPayload\.(\w+)", extractor)


def _send(server: FunctionServer, entry: dict[str, Any]) -> None:
    body, headers = delivery("binary", entry)
    assert server.post(body, headers).status_code == 200


def _records(
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    logging_api: FakeLoggingApi,
) -> list[dict[str, Any]]:
    """Drive a completed drain, a PDB-blocked drain, a fenced force cleanup, a dry run and a Job cleanup."""
    audit_env = {
        "DRAINER_AUDIT_LOG_NAME": AUDIT_LOG,
        "DRAINER_LOGGING_API_ENDPOINT": logging_api.url,
        "GOOGLE_CLOUD_DISABLE_GRPC": "true",
        "DRAINER_CLEANUP_NAMESPACES": cluster.namespace,
    }
    events = server_factory(DRAINER_DEADLINE_DELETE="2", **audit_env)
    dry = server_factory(DRAINER_DRY_RUN="true", **audit_env)
    schedule = server_factory("on_schedule", "http", **audit_env)

    drained = cluster.add_node()
    cluster.bare_pod(drained.name, name="web")
    blocked = cluster.add_node()
    rs = cluster.replicaset(blocked.name, 1, name="db")
    lost = cluster.add_node()
    cluster.bare_pod(lost.name, name="cache")
    rehearsed = cluster.add_node()
    cluster.bare_pod(rehearsed.name, name="batch")
    cluster.wait_running(4)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=1, name="db-pdb")
    cluster.finished_job(name="done", finished_at=datetime.now(UTC) - timedelta(hours=2))  # past the 1 h TTL

    _send(events, log_entry("preempted", instance=drained.name, instance_id=drained.instance_id))
    _send(events, log_entry("delete", instance=blocked.name, instance_id=blocked.instance_id))
    kubelet.kill(lost.name)
    when = cluster.after_last_heartbeat(lost.name)  # the event is logged after the last heartbeat
    _send(events, log_entry("preempted", instance=lost.name, instance_id=lost.instance_id, when=when))
    _send(dry, log_entry("preempted", instance=rehearsed.name, instance_id=rehearsed.instance_id))
    response = requests.post(schedule.url + "/", json={"action": "cleanup"}, timeout=120)
    assert response.status_code == 200, response.text

    wanted = {"drain.completed", "drain.incomplete", "pod.force_deleted", "drain.dry_run", "job.deleted"}

    def mine() -> list[dict[str, Any]]:
        return [
            e
            for e in logging_api.entries
            if e.get("jsonPayload", {}).get("node") in {drained.name, blocked.name, lost.name, rehearsed.name}
            or e.get("jsonPayload", {}).get("action") == "job.deleted"
        ]

    assert wait_until(lambda: wanted <= {e["jsonPayload"].get("action") for e in mine()}, timeout=30), [
        e["jsonPayload"].get("action") for e in mine()
    ]
    return mine()


def test_metric_filters_count_exactly_their_audit_records(
    module: Module,
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    logging_api: FakeLoggingApi,
    control_plane: ControlPlane,
) -> None:
    records = _records(server_factory, cluster, kubelet, logging_api)
    assert {r["logName"] for r in records} == {f"projects/{control_plane.project}/logs/{AUDIT_LOG}"}
    dry_runs = [r for r in records if r["jsonPayload"].get("dry_run") is True]
    assert {r["jsonPayload"]["action"] for r in dry_runs} >= {"pod.evicted", "drain.dry_run"}

    variables = {"project_id": control_plane.project}
    metrics = module.resources_of("google_logging_metric")
    counters = module.locals["counter_metrics"]
    assert set(counters) == set(COUNTED)
    for key, metric in counters.items():
        text = render(
            metrics["counters"]["filter"],
            module,
            variables=variables,
            bindings={"each.value.filter": metric["filter"]},
        )
        counter = compile_filter(text)
        selected = [r for r in records if counter.matches(r)]
        expected = [
            r
            for r in records
            if r["jsonPayload"]["action"] in COUNTED[key] and r["jsonPayload"].get("dry_run") is not True
        ]
        assert selected == expected, f"{key}: {text}"
        assert selected, f"{key} selected nothing in this run"
        fields = ["cluster", *(f for extractor in metric["labels"].values() for f in _extracted_fields(extractor))]
        for record in selected:
            for field in fields:
                assert record["jsonPayload"].get(field), (
                    f"{key}: label field {field} missing in {record['jsonPayload']}"
                )
        for name, extractor in metric["labels"].items():
            if extractor.startswith("REGEXP_EXTRACT"):
                literal = re.search(r'"(.+)"\)$', extractor)[1]  # type: ignore[index]
                pattern = re.sub(r"\\(.)", r"\1", literal)  # the Logging string literal's escapes
                values = {re.search(pattern, r["jsonPayload"]["action"])[1] for r in selected}  # type: ignore[index]
                assert values <= {"completed", "incomplete", "failed"}, f"{key}.{name}: {values}"

    latency = metrics["drain_latency"]
    text = render(latency["filter"], module, variables=variables, bindings={})
    distribution = compile_filter(text)
    selected = [r for r in records if distribution.matches(r)]
    assert sorted(r["jsonPayload"]["action"] for r in selected) == [
        "drain.completed",
        "drain.completed",
        "drain.incomplete",
    ]
    assert latency["value_extractor"] == "EXTRACT(jsonPayload.duration_seconds)"
    assert all(isinstance(r["jsonPayload"]["duration_seconds"], int | float) for r in selected)
