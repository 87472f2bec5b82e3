"""The fence holds on every path (event drain, recovery's force cleanup, the manual API), tried as an
unlucky or hostile user would, through the real functions-framework servers, the real API server
with RBAC, and the fake Compute Engine API on loopback:

- an unforced manual drain, or a graceful delete, of a node whose kubelet went silent while its VM
  runs is never forced by recovery;
- Compute Engine's RUNNING vetoes the Node rule after a preemption;
- an operator's uncordon of a node that carries our taint answers 409 unless it says untaint;
- with Compute Engine unable to answer, a storm of Unknown nodes is fenced only up to the cap;
- a node re-registered between the recovery's list and its write is skipped, the run goes on.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.decisions.model import Node
from functions.decisions.settings import DEFAULT_DEADLINES, Settings
from functions.gateways import audit as audit_log
from functions.gateways.kube.client import ClusterClient
from functions.usecases.operations import Operations
from functions.usecases.runtime import Runtime
from tests.controlplane.clients import drainer_client
from tests.controlplane.cluster import NodeInfo, TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

Factory = Callable[..., FunctionServer]
ANN = "node-drainer.io/"
OOS_KEY = "node.kubernetes.io/out-of-service"
POOL = "cloud.google.com/gke-nodepool"


def post_json(server: FunctionServer, body: dict[str, Any], timeout: float = 120) -> tuple[int, Any]:
    response = requests.post(
        server.url + "/", data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=timeout
    )
    return response.status_code, response.json()


def deliver(server: FunctionServer, kind: str, node: NodeInfo, **extra: Any) -> str:
    entry = log_entry(kind, instance=node.name, instance_id=node.instance_id, **extra)
    body, headers = delivery("binary", entry)
    response = server.post(body, headers)
    assert response.status_code in (200, 500), response.text
    return str(entry["operation"]["id"])


def held_by_budget(cluster: TestCluster, node: NodeInfo, *, name: str) -> str:
    """Two pods on ``node`` that a budget keeps there (minAvailable 2 of 2)."""
    rs = cluster.replicaset(node.name, 2, name=name)
    app = rs.metadata.labels["app"]
    cluster.wait_running(2, node=node.name)
    cluster.pdb({"app": app}, min_available=2, name=f"{name}-pdb", expected_pods=2)
    return str(app)


def taints(cluster: TestCluster, name: str) -> list[Any]:
    return [t for t in cluster.read_node(name).spec.taints or [] if t.key == OOS_KEY]


@pytest.fixture
def scheduler(server_factory: Factory, namespace: str) -> FunctionServer:
    return server_factory("on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=namespace)


@pytest.fixture
def manual(server_factory: Factory, namespace: str) -> FunctionServer:
    return server_factory("on_manual", "http", DRAINER_CLEANUP_NAMESPACES=namespace)


# --------------------------------------------------------------------- force on a running VM
@pytest.mark.parametrize("compute", ["running", "unavailable"])
def test_an_unforced_manual_drain_of_a_silent_node_is_never_forced_by_recovery(
    manual: FunctionServer,
    scheduler: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
    compute: str,
) -> None:
    node = cluster.add_node()
    app = held_by_budget(cluster, node, name="held")
    status, body = post_json(manual, {"action": "drain", "cluster": "test", "node": node.name, "timeout_seconds": 2})
    assert status == 200, body
    assert body["outcome"] == "incomplete"
    # a network partition: the kubelet goes silent, the node-lifecycle controller marks it Unknown
    # (its last heartbeat before the drain), and the VM still runs
    kubelet.kill(node.name)
    if compute == "unavailable":
        compute_api.fail(node.name, 500)
    for _ in range(2):
        status, result = post_json(scheduler, {"action": "recover"})
        assert status == 200, result
    held = scheduler.wait_audit(action="node.held", node=node.name)
    assert "never forces" in held["reason"]
    assert held["held_seconds"] is not None
    assert not scheduler.audit_for(action="pod.force_deleted", node=node.name)
    assert not taints(cluster, node.name)
    assert len([p for p in cluster.pods(label_selector=f"app={app}") if p.spec.node_name == node.name]) == 2
    compute_api.clear(node.name)


def test_a_graceful_delete_then_ready_unknown_with_the_vm_running_is_never_forced(
    drainer: FunctionServer,
    scheduler: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
) -> None:
    node = cluster.add_node()
    app = held_by_budget(cluster, node, name="deleting")
    event = deliver(drainer, "delete", node)
    drainer.wait_audit(action="drain.incomplete", event_id=event)
    kubelet.kill(node.name)  # Ready Unknown, heartbeat before now; the fake VM is RUNNING
    status, result = post_json(scheduler, {"action": "recover"})
    assert status == 200, result
    held = scheduler.wait_audit(action="node.held", node=node.name)
    assert "delete drain, which never forces" in held["reason"]
    assert not scheduler.audit_for(action="pod.force_deleted", node=node.name)
    assert len([p for p in cluster.pods(label_selector=f"app={app}") if p.spec.node_name == node.name]) == 2


def test_compute_engine_running_vetoes_the_node_rule_after_a_preemption(
    server_factory: Factory,
    scheduler: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    server = server_factory(DRAINER_DEADLINE_PREEMPTED="4")
    node = cluster.add_node()
    app = held_by_budget(cluster, node, name="vetoed")
    kubelet.kill(node.name)  # Unknown, the last heartbeat kept; Compute Engine says RUNNING
    event = deliver(server, "preempted", node, when=cluster.after_last_heartbeat(node.name))
    vetoed = server.wait_audit(action="fence.vetoed", node=node.name)
    assert vetoed["vm_status"] == "RUNNING"
    report = server.wait_audit(action="drain.incomplete", event_id=event)
    assert report["verified_down"] is False
    assert not server.audit_for(action="pod.force_deleted", node=node.name)
    assert not taints(cluster, node.name)
    status, result = post_json(scheduler, {"action": "recover"})
    assert status == 200, result
    held = scheduler.wait_audit(action="node.held", node=node.name)
    assert held["vetoed"] is True
    assert "RUNNING" in held["reason"]
    assert not scheduler.audit_for(action="pod.force_deleted", node=node.name)
    assert len([p for p in cluster.pods(label_selector=f"app={app}") if p.spec.node_name == node.name]) == 2
    # once the VM is off, the same node is failed over by recovery
    compute_api.set_status(node.name, "TERMINATED")
    status, result = post_json(scheduler, {"action": "recover"})
    change = next(c for c in result["recovered"] if c["node"] == node.name)
    assert change["action"] == "force_cleanup", change
    assert "TERMINATED" in change["reason"]
    assert wait_until(lambda: not cluster.pods(node=node.name), timeout=30)


# --------------------------------------------------------------------- no orphaned state
def test_uncordon_of_a_node_with_our_taint_is_refused_unless_untaint(
    server_factory: Factory,
    manual: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    server = server_factory(DRAINER_DEADLINE_PREEMPTED="10")
    victim, _spare, _, _ = cluster.stateful_pod_and_spare("untaint-pool")
    kubelet.kill(victim.name, mark_unknown=False)
    compute_api.set_status(victim.name, "TERMINATED")
    event = deliver(server, "preempted", victim)
    server.wait_audit(action="drain.completed", event_id=event, timeout=30)
    assert taints(cluster, victim.name)

    status, body = post_json(manual, {"action": "uncordon", "cluster": "test", "node": victim.name})
    assert status == 409, body
    assert "untaint=true" in body["error"]
    notes = cluster.read_node(victim.name).metadata.annotations
    assert f"{ANN}out-of-service-at" in notes  # nothing dropped
    assert f"{ANN}cordoned-by" in notes

    status, body = post_json(manual, {"action": "uncordon", "cluster": "test", "node": victim.name, "untaint": True})
    assert status == 200, body
    node = cluster.read_node(victim.name)
    assert not taints(cluster, victim.name)
    assert not node.spec.unschedulable
    assert not [k for k in node.metadata.annotations or {} if k.startswith(ANN)]
    manual.wait_audit(action="node.untainted", node=victim.name)


def test_uncordon_of_an_unknown_node_is_a_404(manual: FunctionServer) -> None:
    status, body = post_json(manual, {"action": "uncordon", "cluster": "test", "node": "gke-no-such-node"})
    assert status == 404, body
    assert "does not exist" in body["error"]


# --------------------------------------------------------------------- storm protection
def test_a_storm_of_unknown_nodes_without_compute_engine_is_fenced_only_up_to_the_cap(
    server_factory: Factory,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    # share 0: the cap is its minimum, one node of the cluster within the window
    server = server_factory(DRAINER_DEADLINE_PREEMPTED="8", DRAINER_FENCE_STORM_SHARE="0")
    pool = f"storm-{cluster.namespace}"
    nodes = [cluster.add_node(pool=pool) for _ in range(10)]
    for node in nodes:
        cluster.bare_pod(node.name, name=f"app-{node.name[-4:]}")
    unknown = nodes[:5]
    for node in unknown:
        kubelet.kill(node.name)  # a zonal partition: Unknown, while the VMs run
        compute_api.fail(node.name, 500)  # and Compute Engine cannot answer
    when = max(cluster.after_last_heartbeat(n.name) for n in unknown)
    threads = [threading.Thread(target=deliver, args=(server, "preempted", n), kwargs={"when": when}) for n in unknown]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    names = {n.name for n in unknown}
    down = [r for r in server.audit_for(action="node.verified_down") if r["node"] in names]
    held = [r for r in server.audit_for(action="fence.storm_held") if r["node"] in names]
    assert len(down) == 1, down
    assert down[0]["signal"] == "node"
    assert len(held) == 4, held
    assert all(r["cap"] == 1 and r["severity"] == "ERROR" for r in held)
    forced = {r["node"] for r in server.audit_for(action="pod.force_deleted") if r["node"] in names}
    assert forced <= {down[0]["node"]}
    for node in unknown:
        compute_api.clear(node.name)


# --------------------------------------------------------------------- isolation in scheduled runs
class ReplacingClient(ClusterClient):
    """The real gateway; right after it lists the nodes, one of them is deleted and registered again
    (a new UID) on the real API server, as a recreated VM's kubelet would do."""

    replace_after_list: Callable[[], None] | None = None

    def list_nodes(self, *, label_selector: str | None = None) -> list[Node]:
        nodes = super().list_nodes(label_selector=label_selector)
        if self.replace_after_list is not None:
            self.replace_after_list()
            self.replace_after_list = None
        return nodes


def test_a_node_registered_again_between_the_list_and_the_write_is_skipped(
    drainer: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    control_plane: ControlPlane,
    tmp_path: Path,
) -> None:
    changed, other = cluster.add_node(), cluster.add_node()
    for node in (changed, other):
        deliver(drainer, "delete", node)
        kubelet.kill(node.name)
        kubelet.restart(node.name)  # back with a new boot: recovery would uncordon both

    def reregister() -> None:
        cluster.core.delete_node(changed.name)
        cluster.add_node(name=changed.name)

    kube = drainer_client(control_plane, control_plane.drainer_identities[0], tmp_path)
    kube.close()
    replacing = ReplacingClient(kube.cluster, timeout=10)
    replacing.replace_after_list = reregister
    settings = Settings(clusters=(kube.cluster,), deadlines=DEFAULT_DEADLINES, compute_fence=False)
    stream = io.StringIO()
    audit_log.configure(stream=stream)
    try:
        runtime = Runtime(settings, client_factory=lambda _: replacing)
        changes = Operations(runtime).recover(kube.cluster, dry_run=False, audit=runtime.audit)
    finally:
        audit_log.configure()
        replacing.close()
    by_node = {c["node"]: c for c in changes}
    assert by_node[changed.name]["result"] == "node gone", by_node
    assert by_node[other.name]["result"] == "uncordoned", by_node
    fresh = cluster.read_node(changed.name)
    assert not [k for k in fresh.metadata.annotations or {} if k.startswith(ANN)]  # nothing written to the new Node
    assert not fresh.spec.unschedulable


# --------------------------------------------------------------------- what a 404 means
def test_a_404_without_googles_not_found_body_is_no_answer(
    server_factory: Factory,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    server = server_factory(DRAINER_DEADLINE_PREEMPTED="8")
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="solo")
    cluster.wait_running(1, node=node.name)
    compute_api.fail(node.name, 404, bare=True)  # a proxy's or a wrong endpoint's 404: says nothing of the VM
    event = deliver(server, "preempted", node)  # the kubelet is alive: Ready, so the Node rule says no
    unavailable = server.wait_audit(action="fence.unavailable", node=node.name, during="fence")
    assert unavailable["status"] == 404
    report = server.wait_audit(action="drain.completed", event_id=event, timeout=30)
    assert report["verified_down"] is False
    assert not server.audit_for(action="node.verified_down", node=node.name)
    compute_api.clear(node.name)


def test_googles_not_found_means_the_vm_is_gone(
    server_factory: Factory,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    server = server_factory(DRAINER_DEADLINE_PREEMPTED="8")
    victim, _spare, _, _ = cluster.stateful_pod_and_spare("gone-pool")
    kubelet.kill(victim.name, mark_unknown=False)
    compute_api.delete(victim.name)
    deliver(server, "preempted", victim)
    down = server.wait_audit(action="node.verified_down", node=victim.name)
    assert down["signal"] == "compute"
    assert "404" in down["reason"]


# --------------------------------------------------------------------- lost events are loud
def test_an_event_that_aged_out_after_failed_deliveries_is_expired_not_stale(
    drainer: FunctionServer, cluster: TestCluster
) -> None:
    node = cluster.add_node()
    old = datetime.now(UTC) - timedelta(hours=3)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id, when=old)
    # Pub/Sub's push body with a dead-letter policy counts the attempts; the sink published it in time
    body, headers = delivery("binary", entry)
    envelope = json.loads(body)
    envelope["deliveryAttempt"] = 7
    envelope["message"]["publishTime"] = (old + timedelta(seconds=4)).isoformat().replace("+00:00", "Z")
    headers["ce-id"] = mid = f"expired-{node.name}"
    response = drainer.post(json.dumps(envelope), headers)
    assert response.status_code == 200, response.text
    expired = drainer.wait_audit(action="event.expired", delivery_id=mid)
    assert expired["severity"] == "ERROR"
    assert expired["delivery_attempt"] == 7
    assert not drainer.audit_for(action="event.stale", delivery_id=mid)
    assert not cluster.read_node(node.name).spec.unschedulable

    # the same old entry replayed (published again now, first attempt): a harmless replay
    body, headers = delivery("binary", entry)
    headers["ce-id"] = replayed = f"replayed-{node.name}"
    assert drainer.post(body, headers).status_code == 200
    stale = drainer.wait_audit(action="event.stale", delivery_id=replayed)
    assert stale["severity"] == "INFO"
    assert not cluster.read_node(node.name).spec.unschedulable


def test_a_raw_push_delivery_keeps_its_delivery_attempt(drainer: FunctionServer, cluster: TestCluster) -> None:
    """Pub/Sub push (the deployed delivery) sends deliveryAttempt beside the message; it reaches the verdict."""
    node = cluster.add_node()
    old = datetime.now(UTC) - timedelta(hours=3)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id, when=old)
    body, headers = delivery("push", entry)
    envelope = json.loads(body)
    envelope["deliveryAttempt"] = 5
    envelope["message"]["messageId"] = mid = f"push-{node.name}"
    envelope["message"]["publishTime"] = (old + timedelta(seconds=4)).isoformat().replace("+00:00", "Z")
    response = drainer.post(json.dumps(envelope), headers)
    assert response.status_code == 200, response.text
    expired = drainer.wait_audit(action="event.expired", delivery_id=mid)
    assert expired["delivery_attempt"] == 5
