"""The log-based metrics Terraform creates, evaluated against real audit records.

The functions run through functions-framework against the real API server and write their audit records to
the dedicated log through a loopback Logging API; each metric's filter (rendered from monitoring.tf) must
select exactly the records it is meant to count, never a dry run, every label it extracts must exist, and a
distribution's value field must be a number in every record it selects.

What needs a person is produced for real too: ValidatingAdmissionPolicies on the API server refuse (403) a
cordon (drain.failed), an out-of-service taint (node.taint_failed), the force-deletion of a pod on a node
verified down (drain.incomplete with verified_down) and the uncordon of a node that came back
(node.recovery_failed); a VM that the fake Compute Engine reports TERMINATED gives a failover verified by
the `compute` signal, a dead kubelet whose VM Compute Engine cannot answer for (503) one verified by the
`node` signal, and a second such node beyond the storm cap a drain kept graceful (fence.storm_held); nodes
still held by us are reported by recovery with their age (node.held); an event delivered hours late after
failed deliveries is lost (event.expired), the same event replayed is only stale (event.stale).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.fakes import FakeLoggingApi
from tests.support.logfilter import compile_filter
from tests.support.server import FunctionServer
from tests.support.terraform import MODULE, Module, load_module, render

AUDIT_LOG = "gke-node-drainer-audit"
OOS_KEY = "node.kubernetes.io/out-of-service"

Record = dict[str, Any]
ERROR = {"ERROR", 500}  # a LogEntry's severity, by name or by number as the REST API carries it


def _action(*actions: str) -> Callable[[Record], bool]:
    return lambda payload: payload["action"] in actions


# What each metric is meant to count (dry runs excluded), as a test of the record's jsonPayload.
COUNTED: dict[str, Callable[[Record], bool]] = {
    "drains": _action("drain.completed", "drain.incomplete", "drain.failed"),
    "failed_drains": _action("drain.failed"),
    "failed_force_cleanups": lambda p: (
        p["action"] == "node.taint_failed" or (p["action"] == "drain.incomplete" and p.get("verified_down") is True)
    ),
    "recovery_failures": _action("node.recovery_failed"),
    "evictions": _action("pod.evicted"),
    "blocked_pods": _action("pod.blocked"),
    "force_cleanups": _action("pod.force_deleted"),
    "cleaned_jobs": _action("job.deleted"),
    "expired_events": _action("event.expired"),
    "storm_held": _action("fence.storm_held"),
}

# What each distribution is meant to measure: the records, and the field its value comes from.
MEASURED: dict[str, tuple[Callable[[Record], bool], str]] = {
    "event_age": (_action("event.received"), "event_age_seconds"),
    "failover_time": (
        lambda p: p["action"] == "drain.completed" and p.get("failover_seconds") is not None,
        "failover_seconds",
    ),
    "drain_duration": (_action("drain.completed", "drain.incomplete"), "duration_seconds"),
    "held_time": (lambda p: p["action"] == "node.held" and p.get("held_seconds") is not None, "held_seconds"),
}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module(MODULE)


def _extracted_fields(extractor: str) -> list[str]:
    return re.findall(r"EXTRACT\(jsonPayload\.(\w+)", extractor)


def _send(
    server: FunctionServer, entry: dict[str, Any], *, status: int = 200, delivery_attempt: int | None = None
) -> None:
    body, headers = delivery("binary", entry)
    if delivery_attempt is not None:  # Pub/Sub counts deliveries once a dead-letter policy is set
        envelope = json.loads(body)
        envelope["deliveryAttempt"] = delivery_attempt
        body = json.dumps(envelope).encode()
    response = server.post(body, headers)
    assert response.status_code == status, response.text


def _is_forbidden(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as exc:
        return bool(exc.status == 403)
    return False


@contextmanager
def _refusals(admin_api: client.ApiClient, prefix: str, rules: list[dict[str, Any]]) -> Iterator[None]:
    """ValidatingAdmissionPolicies (and bindings) that refuse what ``rules`` describe with 403 Forbidden;
    each rule's ``probe`` (a dry-run request) tells when the API server enforces it. Removed on exit."""
    admission = client.AdmissionregistrationV1Api(admin_api)
    names = []
    try:
        for index, rule in enumerate(rules):
            name = f"{prefix}-{index}"
            admission.create_validating_admission_policy(
                {
                    "metadata": {"name": name},
                    "spec": {
                        "failurePolicy": "Fail",
                        "matchConstraints": {
                            "resourceRules": [
                                {
                                    "apiGroups": [""],
                                    "apiVersions": ["v1"],
                                    "operations": [rule["operation"]],
                                    "resources": [rule["resource"]],
                                }
                            ]
                        },
                        "matchConditions": [{"name": "target", "expression": rule["match"]}],
                        "validations": [{"expression": rule["allow"], "reason": "Forbidden", "message": rule["why"]}],
                    },
                }
            )
            names.append(name)
            admission.create_validating_admission_policy_binding(
                {"metadata": {"name": name}, "spec": {"policyName": name, "validationActions": ["Deny"]}}
            )
        for rule in rules:
            probe: Callable[[], Any] = rule["probe"]
            assert wait_until(partial(_is_forbidden, probe), timeout=30), rule["why"]
        yield
    finally:
        for name in names:
            admission.delete_validating_admission_policy_binding(name)
            admission.delete_validating_admission_policy(name)


def _records(
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    logging_api: FakeLoggingApi,
    compute_api: FakeComputeApi,
    admin_api: client.ApiClient,
) -> list[Record]:
    """Drive a completed drain, a PDB-blocked graceful delete, failovers verified by each signal, a dry run,
    a Job cleanup, the four failures that need a person, a drain held graceful by the storm cap, a lost
    event and a replayed one."""
    audit_env = {
        "DRAINER_AUDIT_LOG_NAME": AUDIT_LOG,
        "DRAINER_LOGGING_API_ENDPOINT": logging_api.url,
        "GOOGLE_CLOUD_DISABLE_GRPC": "true",
        "DRAINER_CLEANUP_NAMESPACES": cluster.namespace,
    }
    # no storm cap here (other tests' fences in the window do not count against these nodes); the storm
    # server's cap is one node, which `lost` takes
    events = server_factory(DRAINER_DEADLINE_DELETE="2", DRAINER_FENCE_STORM_SHARE="1", **audit_env)
    storm = server_factory(DRAINER_FENCE_STORM_SHARE="0", **audit_env)
    dry = server_factory(DRAINER_DRY_RUN="true", **audit_env)
    schedule = server_factory("on_schedule", "http", DRAINER_RECOVERY_DEADLINE_SECONDS="10", **audit_env)

    drained = cluster.add_node()  # drained, then back: its uncordon is refused
    cluster.bare_pod(drained.name, name="web")
    blocked = cluster.add_node()  # a graceful delete held by a PodDisruptionBudget: no alert
    rs = cluster.replicaset(blocked.name, 1, name="db")
    lost = cluster.add_node()  # the kubelet died, Compute Engine cannot answer: verified down by the Node rule
    cluster.bare_pod(lost.name, name="cache")
    partitioned = cluster.add_node()  # the same, beyond the storm cap: its drain stays graceful
    cluster.bare_pod(partitioned.name, name="replica")
    fenced = cluster.add_node()  # the VM is TERMINATED: verified down by Compute Engine
    cluster.bare_pod(fenced.name, name="queue")
    doomed = cluster.add_node()  # verified down, but its taint and the force-deletion are refused
    cluster.bare_pod(doomed.name, name="stuck")
    refused = cluster.add_node()  # the cordon is refused: the drain cannot run
    rehearsed = cluster.add_node()
    cluster.bare_pod(rehearsed.name, name="batch")
    cluster.wait_running(6)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=1, name="db-pdb")
    cluster.finished_job(name="done", finished_at=datetime.now(UTC) - timedelta(hours=2))  # past the 1 h TTL

    core = client.CoreV1Api(admin_api)
    namespace = cluster.namespace

    def node_patch(name: str, body: dict[str, Any]) -> Callable[[], Any]:
        return lambda: core.patch_node(name, body, dry_run="All")

    taint = {"spec": {"taints": [{"key": OOS_KEY, "value": "nodeshutdown", "effect": "NoExecute"}]}}
    rules = [
        {
            "resource": "nodes",
            "operation": "UPDATE",
            "match": f"object.metadata.name == '{refused.name}'",
            "allow": "!has(object.spec.unschedulable) || !object.spec.unschedulable",
            "why": "no cordon of this node",
            "probe": node_patch(refused.name, {"spec": {"unschedulable": True}}),
        },
        {
            "resource": "nodes",
            "operation": "UPDATE",
            "match": f"object.metadata.name == '{doomed.name}'",
            "allow": f"!has(object.spec.taints) || !object.spec.taints.exists(t, t.key == '{OOS_KEY}')",
            "why": "no out-of-service taint on this node",
            "probe": node_patch(doomed.name, taint),
        },
        {
            "resource": "pods",
            "operation": "DELETE",
            "match": f"oldObject.metadata.namespace == '{namespace}' && oldObject.metadata.name == 'stuck'",
            "allow": "false",
            "why": "this pod is not deleted",
            "probe": lambda: core.delete_namespaced_pod("stuck", namespace, dry_run="All"),
        },
        {
            "resource": "nodes",
            "operation": "UPDATE",
            "match": f"object.metadata.name == '{drained.name}'",
            "allow": "has(object.spec.unschedulable) && object.spec.unschedulable",
            "why": "this node stays cordoned",
            "probe": node_patch(drained.name, {"spec": {"unschedulable": False}}),
        },
    ]
    with _refusals(admin_api, f"metrics-{namespace}", rules):
        _send(events, log_entry("preempted", instance=drained.name, instance_id=drained.instance_id))
        _send(events, log_entry("delete", instance=blocked.name, instance_id=blocked.instance_id))
        kubelet.kill(lost.name)
        compute_api.fail(lost.name, 503)  # Compute Engine cannot answer: the Node rule decides
        when = cluster.after_last_heartbeat(lost.name)  # the event is logged after the last heartbeat
        _send(events, log_entry("preempted", instance=lost.name, instance_id=lost.instance_id, when=when))
        kubelet.kill(fenced.name, mark_unknown=False)
        compute_api.set_status(fenced.name, "TERMINATED")
        _send(events, log_entry("preempted", instance=fenced.name, instance_id=fenced.instance_id))
        _send(dry, log_entry("preempted", instance=rehearsed.name, instance_id=rehearsed.instance_id))

        kubelet.restart(drained.name)  # back with a new boot: recovery wants to uncordon it
        assert wait_until(lambda: cluster.node_ready(drained.name) == "True", timeout=20)
        events.wait_audit(action="node.tainted", node=fenced.name, timeout=30)
        kubelet.restart(fenced.name)  # back, but its VM still starting: our taint holds it (node.held)
        compute_api.set_status(fenced.name, "STAGING")
        assert wait_until(lambda: cluster.node_ready(fenced.name) == "True", timeout=20)
        response = requests.post(schedule.url + "/", json={"action": "recover"}, timeout=120)
        assert response.status_code == 200, response.text

        kubelet.kill(doomed.name, mark_unknown=False)
        compute_api.set_status(doomed.name, "TERMINATED")  # verified down by Compute Engine
        entry = log_entry("preempted", instance=doomed.name, instance_id=doomed.instance_id)
        _send(events, entry, status=500)
        _send(events, log_entry("preempted", instance=refused.name, instance_id=refused.instance_id), status=500)

    # `lost` was fenced by the Node rule alone a moment ago: the storm server's cap of one node is reached.
    # (After the recovery run: recovery's own drain records of this node would not name its event kind.)
    kubelet.kill(partitioned.name)
    compute_api.fail(partitioned.name, 503)
    when = cluster.after_last_heartbeat(partitioned.name)
    _send(storm, log_entry("preempted", instance=partitioned.name, instance_id=partitioned.instance_id, when=when))

    # An event published in time whose deliveries failed for hours is lost (event.expired); the same
    # event replayed on purpose, published when it was already old, is only stale (event.stale).
    gone = f"gke-test-spot-pool-{secrets.token_hex(4)}-gone"
    hours_ago = datetime.now(UTC) - timedelta(hours=3)
    late = log_entry("preempted", instance=gone, when=hours_ago)
    _send(events, late, delivery_attempt=6)
    _send(events, late)

    response = requests.post(schedule.url + "/", json={"action": "cleanup"}, timeout=120)
    assert response.status_code == 200, response.text

    nodes = {n.name for n in (drained, blocked, lost, partitioned, fenced, doomed, refused, rehearsed)} | {gone}
    wanted = {
        "event.received",
        "drain.completed",
        "drain.incomplete",
        "drain.failed",
        "pod.force_deleted",
        "node.taint_failed",
        "node.recovery_failed",
        "node.held",
        "drain.dry_run",
        "job.deleted",
        "event.expired",
        "event.stale",
        "fence.storm_held",
    }

    def mine() -> list[Record]:
        return [
            e
            for e in logging_api.entries
            if e.get("jsonPayload", {}).get("node") in nodes
            or e.get("jsonPayload", {}).get("instance") in nodes
            or e.get("jsonPayload", {}).get("action") == "job.deleted"
        ]

    assert wait_until(lambda: wanted <= {e["jsonPayload"].get("action") for e in mine()}, timeout=30), [
        e["jsonPayload"].get("action") for e in mine()
    ]
    return mine()


def _regexp_values(extractor: str, selected: list[Record]) -> set[str]:
    literal = re.search(r'"(.+)"\)$', extractor)[1]  # type: ignore[index]
    pattern = re.sub(r"\\(.)", r"\1", literal)  # the Logging string literal's escapes
    field = re.search(r"REGEXP_EXTRACT\(jsonPayload\.(\w+)", extractor)[1]  # type: ignore[index]
    return {re.search(pattern, r["jsonPayload"][field])[1] for r in selected}  # type: ignore[index]


def test_metric_filters_count_exactly_their_audit_records(
    module: Module,
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    logging_api: FakeLoggingApi,
    compute_api: FakeComputeApi,
    admin_api: client.ApiClient,
    control_plane: ControlPlane,
) -> None:
    records = _records(server_factory, cluster, kubelet, logging_api, compute_api, admin_api)
    assert {r["logName"] for r in records} == {f"projects/{control_plane.project}/logs/{AUDIT_LOG}"}
    dry_runs = [r for r in records if r["jsonPayload"].get("dry_run") is True]
    assert {r["jsonPayload"]["action"] for r in dry_runs} >= {"pod.evicted", "drain.dry_run"}
    live = [r for r in records if r["jsonPayload"].get("dry_run") is not True]

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
        expected = [r for r in live if COUNTED[key](r["jsonPayload"])]
        assert selected == expected, f"{key}: {text}"
        assert selected, f"{key} selected nothing in this run"
        by_cluster = ["cluster"] if metric.get("by_cluster", True) else []  # the resource's try(..., true)
        fields = [*by_cluster, *(f for extractor in metric["labels"].values() for f in _extracted_fields(extractor))]
        for record in selected:
            for field in fields:
                assert record["jsonPayload"].get(field), (
                    f"{key}: label field {field} missing in {record['jsonPayload']}"
                )
        for name, extractor in metric["labels"].items():
            if extractor.startswith("REGEXP_EXTRACT"):
                values = _regexp_values(extractor, selected)
                assert values <= {"completed", "incomplete", "failed"}, f"{key}.{name}: {values}"

    by_counter = {key: {r["jsonPayload"]["action"] for r in live if COUNTED[key](r["jsonPayload"])} for key in COUNTED}
    assert by_counter["drains"] == {"drain.completed", "drain.incomplete", "drain.failed"}
    assert by_counter["failed_force_cleanups"] == {"drain.incomplete", "node.taint_failed"}
    # the graceful delete held by its budget ended incomplete as designed, and no alert metric counts it
    held = [r for r in live if r["jsonPayload"]["action"] == "drain.incomplete" and r["jsonPayload"]["blocked"]]
    assert held
    assert all(r["jsonPayload"]["event_kind"] == "delete" for r in held)
    for key in ("failed_drains", "failed_force_cleanups", "recovery_failures"):
        assert not any(COUNTED[key](r["jsonPayload"]) for r in held), key

    # A lost event is counted by the instance it names (it expired before any node was looked up); the
    # replay of the same old event is stale, and no metric counts it.
    expired = [r["jsonPayload"] for r in live if r["jsonPayload"]["action"] == "event.expired"]
    assert len(expired) == 1, expired
    assert expired[0]["delivery_attempt"] == 6
    assert expired[0]["event_age_seconds"] > 3 * 3600 - 60
    assert "cluster" not in expired[0]
    assert {r["severity"] for r in live if r["jsonPayload"]["action"] == "event.expired"} <= ERROR
    stale = [r["jsonPayload"] for r in live if r["jsonPayload"]["action"] == "event.stale"]
    assert [p["event_id"] for p in stale] == [expired[0]["event_id"]]
    assert not any(COUNTED[key](p) for key in COUNTED for p in stale)
    # The storm: the second node the Node rule alone would fence was held graceful, and no force alert
    # counts its incomplete drain.
    storms = [r["jsonPayload"] for r in live if r["jsonPayload"]["action"] == "fence.storm_held"]
    assert storms
    assert all(p["fenced"] >= p["cap"] == 1 for p in storms), storms
    assert {r["severity"] for r in live if r["jsonPayload"]["action"] == "fence.storm_held"} <= ERROR
    stormed = {p["node"] for p in storms}
    assert not any(
        COUNTED["failed_force_cleanups"](r["jsonPayload"]) for r in live if r["jsonPayload"].get("node") in stormed
    )
    forced = {r["jsonPayload"]["node"] for r in live if r["jsonPayload"]["action"] == "pod.force_deleted"}
    assert not forced & stormed, "a node held by the storm cap is never forced"

    distributions = module.locals["distribution_metrics"]
    assert set(distributions) == set(MEASURED)
    for key, metric in distributions.items():
        text = render(
            metrics["distributions"]["filter"],
            module,
            variables=variables,
            bindings={"each.value.filter": metric["filter"]},
        )
        distribution = compile_filter(text)
        wanted, field = MEASURED[key]
        selected = [r for r in records if distribution.matches(r)]
        assert selected == [r for r in live if wanted(r["jsonPayload"])], f"{key}: {text}"
        assert selected, f"{key} selected nothing in this run"
        assert metric["value"] == f"EXTRACT(jsonPayload.{field})"
        for record in selected:
            value = record["jsonPayload"].get(field)
            assert isinstance(value, int | float), f"{key}: {field} is not a number in {record['jsonPayload']}"
            assert not isinstance(value, bool)
            assert value >= 0, record["jsonPayload"]
            for label, extractor in metric["labels"].items():
                for name in _extracted_fields(extractor):
                    assert record["jsonPayload"].get(name), f"{key}.{label}: {name} missing in {record['jsonPayload']}"
        for label, extractor in metric["labels"].items():
            if extractor.startswith("REGEXP_EXTRACT"):
                assert _regexp_values(extractor, selected) <= {"completed", "incomplete"}, f"{key}.{label}"

    failovers = [r["jsonPayload"] for r in live if MEASURED["failover_time"][0](r["jsonPayload"])]
    assert {p["down_signal"] for p in failovers} == {"compute", "node"}, failovers
    assert all(p["verified_down"] is True for p in failovers)
    assert all(p["failover_seconds"] <= p["duration_seconds"] for p in failovers)
    ages = [r["jsonPayload"] for r in live if r["jsonPayload"]["action"] == "event.received"]
    assert {p["event_kind"] for p in ages} == {"preempted", "delete"}
    # the node recovery keeps held (back, but its VM still starting: our taint stays) is measured with its age
    held_ages = [r["jsonPayload"] for r in live if MEASURED["held_time"][0](r["jsonPayload"])]
    back_but_held = {p["node"] for p in held_ages if p["back"] is True}
    assert back_but_held == {p["node"] for p in failovers if p["down_signal"] == "compute"}, held_ages
    assert all(p["held_seconds"] >= 0 for p in held_ages)
