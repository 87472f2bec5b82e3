"""Kubernetes Events where the drainer acts, written to the real API server and read back as admin."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from functions.decisions import kube_events
from functions.decisions.actions import Action, Severity
from functions.decisions.model import Pod
from functions.decisions.settings import AuthMode, ClusterConfig
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.events import EventRecorder
from tests.controlplane.clients import api_client, rbac_documents
from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer, cluster_entry

CONTROLLER = "gke-node-drainer"


def send(server: FunctionServer, entry: dict[str, Any]) -> Any:
    body, headers = delivery("binary", entry)
    return server.post(body, headers)


def event_id(entry: dict[str, Any]) -> str:
    return str(entry["operation"]["id"])


def events_about(api: client.ApiClient, *, namespace: str, kind: str, name: str) -> list[Any]:
    """The events.k8s.io/v1 Events (as JSON) our controller wrote in ``namespace`` about one object.
    Read raw: the generated models refuse the Events of other controllers that have no eventTime."""
    response: Any = client.EventsV1Api(api).list_namespaced_event(namespace, _preload_content=False)
    items = json.loads(response.data)["items"]
    return [
        e
        for e in items
        if (e.get("regarding") or {}).get("kind") == kind
        and e["regarding"].get("name") == name
        and e.get("reportingController") == CONTROLLER
    ]


def wait_events(
    api: client.ApiClient, *, namespace: str, kind: str, name: str, reasons: set[str], timeout: float = 10.0
) -> dict[str, list[Any]]:
    """Wait until every reason in ``reasons`` is there; the Events found, by reason."""
    found: dict[str, list[Any]] = {}

    def check() -> bool:
        found.clear()
        for e in events_about(api, namespace=namespace, kind=kind, name=name):
            found.setdefault(e["reason"], []).append(e)
        return reasons <= set(found)

    assert wait_until(check, timeout=timeout), f"missing {sorted(reasons - set(found))}; found {sorted(found)}"
    return found


# --- a drain, told where it happens ------------------------------------------------------------------------------


def test_drain_writes_cordoned_evicted_and_drain_completed(
    drainer: FunctionServer, cluster: TestCluster, admin_api: client.ApiClient
) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 2, name="web")
    cluster.bare_pod(node.name, name="bare")
    cluster.bare_pod(node.name, name="keep-me", annotations={"node-drainer.io/skip-eviction": "true"})
    pods = {p.metadata.name: p for p in cluster.wait_running(4, node=node.name)}
    node_uid = cluster.read_node(node.name).metadata.uid

    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    drainer.wait_audit(action="drain.completed", event_id=event_id(entry))

    on_node = wait_events(
        admin_api, namespace="default", kind="Node", name=node.name, reasons={"Cordoned", "DrainCompleted"}
    )
    [cordoned] = on_node["Cordoned"]
    assert cordoned["type"] == "Normal"
    assert cordoned["action"] == "Cordon"
    assert cordoned["reportingController"] == CONTROLLER
    assert cordoned["reportingInstance"].startswith(f"{CONTROLLER}-")
    assert cordoned["regarding"]["apiVersion"] == "v1"
    assert cordoned["regarding"]["uid"] == node_uid
    assert cordoned["regarding"]["resourceVersion"]  # the node as cordoned
    assert "preempted" in cordoned["note"]
    assert event_id(entry) in cordoned["note"]
    assert "series" not in cordoned  # happened once
    [completed] = on_node["DrainCompleted"]
    assert completed["type"] == "Normal"
    assert completed["action"] == "Drain"
    assert completed["regarding"]["uid"] == node_uid
    assert "3 evicted" in completed["note"]
    assert "1 skipped" in completed["note"]
    assert "VerifiedDown" not in on_node  # the node is Ready: never verified down

    evicted = {n: p for n, p in pods.items() if n != "keep-me"}
    for name, pod in evicted.items():
        found = wait_events(admin_api, namespace=cluster.namespace, kind="Pod", name=name, reasons={"Evicted"})
        [event] = found["Evicted"]
        assert event["type"] == "Normal"
        assert event["action"] == "Evict"
        assert event["regarding"]["namespace"] == cluster.namespace
        assert event["regarding"]["uid"] == pod.metadata.uid
        assert event["reportingController"] == CONTROLLER
        assert node.name in event["note"]
    skipped = wait_events(admin_api, namespace=cluster.namespace, kind="Pod", name="keep-me", reasons={"Skipped"})
    assert "skip-eviction" in skipped["Skipped"][0]["note"]
    assert set(skipped) == {"Skipped"}


def test_eviction_blocked_by_a_pdb_is_one_event_whose_series_grows(
    drainer: FunctionServer, cluster: TestCluster, admin_api: client.ApiClient
) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 2, name="db")
    pods = cluster.wait_running(2, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=2, name="db-pdb", expected_pods=2)
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    # a 3 s deadline: each pod is refused, then waits for the budget, which never allows one; the
    # delivery comes again (as Pub/Sub redelivers) and each pod is refused again: the same Event
    assert send(drainer, entry).status_code == 200
    assert send(drainer, entry).status_code == 200
    assert len(drainer.audit_for(action="drain.incomplete", event_id=event_id(entry))) == 2

    for pod in pods:
        found = wait_events(
            admin_api, namespace=cluster.namespace, kind="Pod", name=pod.metadata.name, reasons={"EvictionBlocked"}
        )
        assert set(found) == {"EvictionBlocked"}  # never evicted
        [blocked] = found["EvictionBlocked"]  # one object for every retry
        assert blocked["type"] == "Warning"
        assert blocked["action"] == "Evict"
        assert blocked["regarding"]["uid"] == pod.metadata.uid
        assert "PodDisruptionBudget db-pdb" in blocked["note"]
        assert "series" in blocked
        assert blocked["series"]["count"] >= 2
        assert blocked["series"]["lastObservedTime"] > blocked["eventTime"]
    on_node = wait_events(admin_api, namespace="default", kind="Node", name=node.name, reasons={"DrainIncomplete"})
    [incomplete] = on_node["DrainIncomplete"]
    assert incomplete["type"] == "Warning"
    assert "db-pdb" in incomplete["note"]
    for pod in pods:
        assert f"{cluster.namespace}/{pod.metadata.name}" in incomplete["note"]


def test_a_dry_run_writes_no_events(
    server_factory: Callable[..., FunctionServer], cluster: TestCluster, admin_api: client.ApiClient
) -> None:
    server = server_factory(DRAINER_DRY_RUN="true")
    node = cluster.add_node()
    pod = cluster.bare_pod(node.name, name="solo")
    cluster.wait_running(1, node=node.name)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    assert send(server, entry).status_code == 200
    planned = server.wait_audit(action="drain.dry_run", event_id=event_id(entry))
    assert planned["counts"] == {"would_evict": 1}
    # the handler waits for its Events before it answers: anything written would be there now
    assert events_about(admin_api, namespace="default", kind="Node", name=node.name) == []
    assert events_about(admin_api, namespace=cluster.namespace, kind="Pod", name=pod.metadata.name) == []
    assert not server.audit_for(action="k8s_event.write_failed")


# --- refused writes: the drain goes on, audited once -------------------------------------------------------------


@pytest.fixture
def identity_without_events(control_plane: ControlPlane, admin_api: client.ApiClient, tmp_path: Path) -> Iterator[Path]:
    """A token file of a user bound to the drainer's ClusterRole minus its events rule."""
    user = control_plane.stranger.user
    [role] = [d for d in rbac_documents(user) if d["kind"] == "ClusterRole"]
    name = f"drainer-no-events-{secrets.token_hex(3)}"
    rules = [r for r in role["rules"] if "events.k8s.io" not in r["apiGroups"]]
    assert len(rules) == len(role["rules"]) - 1
    rbac = client.RbacAuthorizationV1Api(admin_api)
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }
    )
    token = tmp_path / "token"
    token.write_text(control_plane.stranger.token)
    try:
        assert wait_until(lambda: _allowed(control_plane, "patch", "nodes"), timeout=10)
        yield token
    finally:
        for delete in (rbac.delete_cluster_role_binding, rbac.delete_cluster_role):
            with contextlib.suppress(ApiException):
                delete(name)
        assert wait_until(lambda: not _allowed(control_plane, "patch", "nodes"), timeout=10)


def _allowed(plane: ControlPlane, verb: str, resource: str) -> bool:
    api = api_client(plane, plane.stranger)
    try:
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"verb": verb, "resource": resource}}}
        )
        return bool(review.status.allowed)
    finally:
        api.close()


def test_refused_events_never_fail_the_drain_and_are_audited_once(
    server_factory: Callable[..., FunctionServer],
    control_plane: ControlPlane,
    identity_without_events: Path,
    cluster: TestCluster,
    admin_api: client.ApiClient,
) -> None:
    entry_cfg = cluster_entry(control_plane, auth="token_file", token_file=str(identity_without_events))
    server = server_factory(clusters=[entry_cfg])
    first, second = cluster.add_node(), cluster.add_node()
    cluster.replicaset(first.name, 2, name="web")
    cluster.bare_pod(second.name, name="solo")
    cluster.wait_running(2, node=first.name)
    cluster.wait_running(1, node=second.name)

    entry = log_entry("preempted", instance=first.name, instance_id=first.instance_id)
    assert send(server, entry).status_code == 200
    done = server.wait_audit(action="drain.completed", event_id=event_id(entry))
    assert done["counts"] == {"evicted": 2}
    assert cluster.read_node(first.name).spec.unschedulable is True
    refused = server.wait_audit(action="k8s_event.write_failed")
    assert refused["severity"] == "WARNING"
    assert refused["cluster"] == "test"
    assert refused["status"]["code"] == 403
    assert refused["event_reason"] in {"Cordoned", "Evicted", "DrainCompleted"}

    again = log_entry("preempted", instance=second.name, instance_id=second.instance_id)
    assert send(server, again).status_code == 200
    server.wait_audit(action="drain.completed", event_id=event_id(again))
    assert len(server.audit_for(action="k8s_event.write_failed")) == 1  # once per recorder, not per Event
    for node in (first, second):
        assert events_about(admin_api, namespace="default", kind="Node", name=node.name) == []


# --- the recorder itself, in process -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Captured(Audit):
    """An audit context that keeps what it is asked to record."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def record(self, action: Action, message: str, /, *, severity: Severity = Severity.INFO, **details: Any) -> None:
        self.records.append({"action": action, "message": message, "severity": severity, **details})


@pytest.fixture
def kube(control_plane: ControlPlane, drainer_rbac: list[dict[str, Any]], tmp_path: Path) -> Iterator[ClusterClient]:
    config = control_plane.write_kubeconfig(control_plane.drainer_identities[1], tmp_path / "kubeconfig")
    cluster = ClusterConfig(
        name="test",
        project=control_plane.project,
        location="europe-west4",
        auth=AuthMode.KUBECONFIG,
        kubeconfig=str(config),
    )
    made = ClusterClient(cluster, timeout=10)
    yield made
    made.close()


def _pod(cluster: TestCluster, name: str, *, namespace: str | None = None) -> Pod:
    return Pod(
        namespace=namespace or cluster.namespace,
        name=name,
        uid=f"uid-{name}",
        node_name="n",
        phase="Running",
        controller=None,
        annotations={},
        labels={},
        deletion_timestamp=None,
        local_storage=False,
        priority=0,
        priority_class="",
    )


def test_repeats_are_one_object_whose_series_counts_them(
    kube: ClusterClient, cluster: TestCluster, admin_api: client.ApiClient
) -> None:
    audit = Captured()
    recorder = EventRecorder(kube, audit=audit, instance="test-instance")
    pod = _pod(cluster, "retried")
    for _ in range(5):
        recorder.eviction_blocked(pod, node="n", pdb="db-pdb", message="Cannot evict pod")
    recorder.evicted(_pod(cluster, "other"), node="n", why="")
    assert recorder.flush(10)
    [event] = events_about(admin_api, namespace=cluster.namespace, kind="Pod", name="retried")
    assert "series" in event
    assert event["series"]["count"] == 5
    assert event["reportingInstance"] == "test-instance"
    assert event["metadata"]["name"] == kube_events.event_name(
        kube_events.eviction_blocked(pod, node="n", pdb="db-pdb", message="Cannot evict pod").key,
        instance="test-instance",
    )
    recorder.eviction_blocked(pod, node="n", pdb="db-pdb", message="Cannot evict pod")
    assert recorder.flush(10)
    [event] = events_about(admin_api, namespace=cluster.namespace, kind="Pod", name="retried")
    assert event["series"]["count"] == 6  # patched in place
    [other] = events_about(admin_api, namespace=cluster.namespace, kind="Pod", name="other")
    assert "series" not in other
    assert audit.records == []


def test_a_namespace_that_does_not_exist_is_audited_once_and_never_raises(
    kube: ClusterClient, cluster: TestCluster
) -> None:
    audit = Captured()
    recorder = EventRecorder(kube, audit=audit, instance="test-instance")
    for index in range(3):
        recorder.evicted(_pod(cluster, f"p{index}", namespace=f"gone-{secrets.token_hex(4)}"), node="n", why="")
    assert recorder.flush(10)
    [record] = audit.records
    assert record["action"] is Action.EVENT_WRITE_FAILED
    assert record["status"]["code"] == 404
    assert record["event_reason"] == "Evicted"
    assert recorder.lost == 3
