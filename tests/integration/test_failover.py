"""Stateful failover on the test bed: the Compute Engine fence, the out-of-service taint, its removal
by recovery, and late events, through the real functions-framework server, the real API server,
attach/detach and node-lifecycle controllers, and the fake Compute Engine API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.controlplane.cluster import NodeInfo, TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

OOS_KEY = "node.kubernetes.io/out-of-service"
TAINTED_AT = "node-drainer.io/out-of-service-at"


def preempt(server: FunctionServer, node: NodeInfo, *, when: datetime | None = None) -> dict[str, Any]:
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id, when=when)
    body, headers = delivery("binary", entry)
    response = server.post(body, headers)
    assert response.status_code == 200, response.text
    return entry


def oos_taints(cluster: TestCluster, name: str) -> list[Any]:
    return [t for t in cluster.read_node(name).spec.taints or [] if t.key == OOS_KEY]


def scheduled(server: FunctionServer, action: str) -> dict[str, Any]:
    response = server.post(json.dumps({"action": action}), {"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def old_attachment_gone(cluster: TestCluster, pv: str, node: str) -> bool:
    return not cluster.volume_attachments(pv=pv, node=node)


@pytest.fixture
def failover(server_factory: Callable[..., FunctionServer]) -> FunctionServer:
    """The event function with a deadline long enough for a failover."""
    return server_factory(DRAINER_DEADLINE_PREEMPTED="40")


def test_preempted_stateful_pod_fails_over_with_its_volume(
    failover: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn, compute_api: FakeComputeApi
) -> None:
    victim, spare, pod, old_va = cluster.stateful_pod_and_spare("fo-pool")
    pv = old_va.spec.source.persistent_volume_name
    kubelet.kill(victim.name, mark_unknown=False)  # the VM is off; its volumes stay listed in use
    assert cluster.unique_volume_name(cluster.claimed_volume(pod)) in cluster.volumes_in_use(victim.name)
    compute_api.set_status(victim.name, "TERMINATED")

    entry = preempt(failover, victim)

    down = failover.wait_audit(action="node.verified_down", node=victim.name)
    assert down["signal"] == "compute"
    assert "TERMINATED" in down["reason"]
    tainted = failover.wait_audit(action="node.tainted", node=victim.name)
    assert tainted["ours"] is True
    assert pv in tainted["attached_volumes"]
    [taint] = oos_taints(cluster, victim.name)
    assert (taint.value, taint.effect) == ("nodeshutdown", "NoExecute")
    notes = cluster.read_node(victim.name).metadata.annotations
    assert TAINTED_AT in notes
    assert notes["node-drainer.io/detach-pending"] == pv
    # the replacement runs elsewhere with its volume, and the dead node's attachment is gone
    new_pod, new_va = cluster.wait_running_with_volume("db-0", spare.name, timeout=60)
    assert new_pod.metadata.uid != pod.metadata.uid
    assert new_va.spec.source.persistent_volume_name == pv
    assert wait_until(lambda: old_attachment_gone(cluster, pv, victim.name), timeout=30)
    report = failover.wait_audit(action="drain.completed", node=victim.name, event_id=entry["operation"]["id"])
    assert report["verified_down"] is True
    assert report["out_of_service_taint"] is True


def test_without_the_taint_the_replacement_stays_blocked_on_the_old_attachment(
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    server = server_factory(DRAINER_DEADLINE_PREEMPTED="20", DRAINER_OUT_OF_SERVICE_TAINT="false")
    victim, spare, _, old_va = cluster.stateful_pod_and_spare("notaint-pool")
    pv = old_va.spec.source.persistent_volume_name
    kubelet.kill(victim.name, mark_unknown=False)
    compute_api.set_status(victim.name, "TERMINATED")

    preempt(server, victim)
    server.wait_audit(action="pod.force_deleted", node=victim.name)
    assert not oos_taints(cluster, victim.name)

    def replacement_on_spare() -> bool:
        return any(p.spec.node_name == spare.name for p in cluster.pods(label_selector="app=db"))

    assert wait_until(replacement_on_spare, timeout=30), "the StatefulSet did not recreate its pod on the spare"
    # Kubernetes keeps the volume attached to the dead node (it is still in use there): the
    # replacement cannot start. A bounded look, not a wait for the 6-minute force detach.
    assert not wait_until(
        lambda: any(p.status.phase == "Running" for p in cluster.pods(label_selector="app=db")), timeout=15
    )
    assert cluster.volume_attachments(pv=pv, node=victim.name), "the old attachment went without the taint"


@pytest.mark.parametrize("status", ["RUNNING", "STOPPING"])
def test_a_vm_that_is_not_off_gets_no_taint_and_no_force(
    drainer: FunctionServer, cluster: TestCluster, compute_api: FakeComputeApi, status: str
) -> None:
    node = cluster.add_node(pool="alive-pool")
    cluster.replicaset(node.name, 2, name="web")
    cluster.wait_pods(lambda pods: len(pods) == 2 and all(p.status.phase == "Running" for p in pods), node=node.name)
    compute_api.set_status(node.name, status)

    entry = preempt(drainer, node)

    report = drainer.wait_audit(action="drain.completed", node=node.name, event_id=entry["operation"]["id"])
    assert report["verified_down"] is False
    assert report["counts"] == {"evicted": 2}
    assert not oos_taints(cluster, node.name)
    assert not drainer.audit_for(action="node.verified_down", node=node.name)
    assert not drainer.audit_for(action="pod.force_deleted", node=node.name)
    assert compute_api.requests_for(node.name), "the fence never asked Compute Engine"


@pytest.mark.parametrize("failure", [403, 500])
def test_a_fence_that_fails_falls_back_to_the_node_rule(
    failover: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
    failure: int,
) -> None:
    victim, spare, _, _ = cluster.stateful_pod_and_spare(f"fallback-{failure}")
    compute_api.set_status(victim.name, "TERMINATED")  # never seen: every answer fails
    compute_api.fail(victim.name, failure)
    kubelet.kill(victim.name)  # Ready Unknown now, the last heartbeat kept (before the event)

    preempt(failover, victim, when=cluster.after_last_heartbeat(victim.name))

    unavailable = failover.wait_audit(action="fence.unavailable", node=victim.name)
    assert unavailable["status"] == failure
    down = failover.wait_audit(action="node.verified_down", node=victim.name)
    assert down["signal"] == "node"
    assert oos_taints(cluster, victim.name)
    cluster.wait_running_with_volume("db-0", spare.name, timeout=60)
    # audited once by the fence (and once by the staleness check, which asks first)
    assert len(failover.audit_for(action="fence.unavailable", node=victim.name, during="fence")) == 1


def test_the_node_lifecycle_controller_verifies_down_without_the_fence(
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    control_plane: ControlPlane,
    compute_api: FakeComputeApi,
) -> None:
    deadline = control_plane.node_monitor_grace_period + 30
    server = server_factory(DRAINER_DEADLINE_PREEMPTED=str(int(deadline)), DRAINER_COMPUTE_FENCE="false")
    victim, spare, _, _ = cluster.stateful_pod_and_spare("lifecycle-fo")
    kubelet.kill(victim.name, mark_unknown=False)  # the real controller must notice
    compute_api.set_status(victim.name, "TERMINATED")

    preempt(server, victim, when=cluster.after_last_heartbeat(victim.name))

    down = server.wait_audit(action="node.verified_down", node=victim.name, timeout=deadline)
    assert down["signal"] == "node"
    assert "Unknown" in down["reason"]
    assert not compute_api.requests_for(victim.name), "the fence is off but Compute Engine was asked"
    cluster.wait_running_with_volume("db-0", spare.name, timeout=60)


def test_the_fence_asks_only_instances_get_with_the_functions_token(
    failover: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
    control_plane: ControlPlane,
) -> None:
    victim, _, _, _ = cluster.stateful_pod_and_spare("token-pool")
    kubelet.kill(victim.name, mark_unknown=False)
    compute_api.set_status(victim.name, "STOPPING")  # asked again until it is off

    def stop_after_two_questions() -> None:  # the event's POST returns when the drain ends
        if wait_until(lambda: len(compute_api.requests_for(victim.name)) >= 3, timeout=20):
            compute_api.set_status(victim.name, "TERMINATED")

    stopper = threading.Thread(target=stop_after_two_questions, daemon=True)
    stopper.start()
    preempt(failover, victim)
    stopper.join(timeout=30)
    down = failover.wait_audit(action="node.verified_down", node=victim.name)
    assert down["signal"] == "compute"
    assert len(compute_api.requests_for(victim.name)) >= 4  # staleness, then the fence until TERMINATED

    tokens = {f"Bearer {identity.token}" for identity in control_plane.drainer_identities}
    asked = compute_api.requests_for(victim.name)
    assert {r.method for r in asked} == {"GET"}
    assert {r.path for r in asked} == {f"/compute/v1/projects/acme-prod/zones/europe-west4-b/instances/{victim.name}"}
    assert {r.authorization for r in asked} <= tokens


def test_recovery_removes_our_taint_only_once_the_node_is_back_and_clear(
    failover: FunctionServer,
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    scheduler = server_factory("on_schedule", "http")
    victim, spare, _, _ = cluster.stateful_pod_and_spare("recover-pool")
    kubelet.kill(victim.name, mark_unknown=False)
    compute_api.set_status(victim.name, "TERMINATED")
    preempt(failover, victim)
    failover.wait_audit(action="node.tainted", node=victim.name)
    cluster.wait_running_with_volume("db-0", spare.name, timeout=60)

    # not back: the taint and the cordon stay, and status says why
    scheduled(scheduler, "recover")
    assert oos_taints(cluster, victim.name)
    manual = server_factory("on_manual", "http")
    rows = manual.post(json.dumps({"action": "status"}), {"Content-Type": "application/json"}).json()["nodes"]
    [row] = [r for r in rows if r["node"] == victim.name]
    assert row["tainted_by_us"] is True
    assert row["next"] == "force_cleanup"  # the VM is TERMINATED: whatever is left there may go
    assert "taint kept until the node is back" in row["why"]

    # back with a new boot, but the instance is not RUNNING yet: still kept
    kubelet.restart(victim.name)
    compute_api.set_status(victim.name, "STAGING")
    assert wait_until(lambda: cluster.node_ready(victim.name) == "True", timeout=20)
    result = scheduled(scheduler, "recover")
    assert oos_taints(cluster, victim.name)
    assert not [c for c in result["recovered"] if c["node"] == victim.name]

    # RUNNING, nothing terminating or attached there: the taint and our cordon go
    compute_api.set_status(victim.name, "RUNNING")
    scheduled(scheduler, "recover")
    assert not oos_taints(cluster, victim.name)
    node = cluster.read_node(victim.name)
    assert not node.spec.unschedulable
    assert TAINTED_AT not in (node.metadata.annotations or {})
    assert scheduler.wait_audit(action="node.untainted", node=victim.name)


def test_someone_elses_out_of_service_taint_is_never_removed(
    drainer: FunctionServer,
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
) -> None:
    scheduler = server_factory("on_schedule", "http")
    node = cluster.add_node(pool="foreign-pool")
    cluster.replicaset(node.name, 1, name="web")
    cluster.wait_pods(lambda pods: len(pods) == 1 and pods[0].status.phase == "Running", node=node.name)
    preempt(drainer, node)  # cordoned by us; the VM is RUNNING, so no taint of ours
    cluster.taint_out_of_service(node.name)  # an operator's
    kubelet.restart(node.name)
    assert wait_until(lambda: cluster.node_ready(node.name) == "True", timeout=20)

    scheduled(scheduler, "recover")

    current = cluster.read_node(node.name)
    assert not current.spec.unschedulable  # our cordon is lifted
    assert [t.key for t in current.spec.taints or [] if t.key == OOS_KEY] == [OOS_KEY]  # theirs stays


def test_a_late_event_leaves_a_node_that_came_back_untouched(
    drainer: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn, compute_api: FakeComputeApi
) -> None:
    node = cluster.add_node(pool="late-pool")
    cluster.replicaset(node.name, 1, name="web")
    cluster.wait_pods(lambda pods: len(pods) == 1 and pods[0].status.phase == "Running", node=node.name)
    before = datetime.now(UTC) - timedelta(minutes=10)  # the preemption happened before the node's return
    compute_api.set_instance(node.name, instance_id=node.instance_id, status="RUNNING", last_start=datetime.now(UTC))

    entry = preempt(drainer, node, when=before)

    stale = drainer.wait_audit(action="event.stale", event_id=entry["operation"]["id"])
    assert "after the event" in stale["reason"]
    current = cluster.read_node(node.name)
    assert not current.spec.unschedulable
    assert "node-drainer.io/cordoned-by" not in (current.metadata.annotations or {})
    assert [p.status.phase for p in cluster.pods(node=node.name)] == ["Running"]


def test_a_replay_of_old_events_changes_nothing(drainer: FunctionServer, cluster: TestCluster) -> None:
    nodes = [cluster.add_node(pool="replay-pool") for _ in range(3)]
    for node in nodes:
        cluster.replicaset(node.name, 1, name=f"web-{node.name[-4:]}")
    ids = []
    for hours in (1, 5, 30):  # within the maximum age (but before the nodes existed), and past it
        for node in nodes:
            ids.append(preempt(drainer, node, when=datetime.now(UTC) - timedelta(hours=hours))["operation"]["id"])

    for event_id in ids:
        drainer.wait_audit(action="event.stale", event_id=event_id)
    for node in nodes:
        assert not cluster.read_node(node.name).spec.unschedulable
    assert not [r for r in drainer.audit_for(action="node.cordoned") if r.get("event_id") in ids]
