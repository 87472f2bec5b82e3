"""Log-sink events through functions-framework's HTTP server -> cordon and drain on the real API server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane, free_port
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import KINDS, delivery, log_entry
from tests.support.server import FunctionServer, cluster_entry

ANN = "node-drainer.io/"


def send(server: FunctionServer, entry: dict[str, Any] | bytes, shape: str = "binary", **kw: Any) -> Any:
    body, headers = delivery(shape, entry, **kw)
    return server.post(body, headers)


def event_id(entry: dict[str, Any]) -> str:
    return str(entry["operation"]["id"])


def test_preempted_event_cordons_and_drains_with_kubectl_filters(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 3, name="web")
    cluster.bare_pod(node.name, name="bare")
    cluster.bare_pod(node.name, name="scratch", volumes=[{"name": "tmp", "emptyDir": {}}])
    cluster.bare_pod(node.name, name="done", exit_code=0)
    cluster.bare_pod(node.name, name="keep-me", annotations={f"{ANN}skip-eviction": "true"})
    cluster.bare_pod(node.name, name="ca-keep", annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"})
    cluster.daemonset_pods([node.name], name="agent")
    cluster.wait_pods(
        lambda pods: len(pods) == 9 and all(p.status.phase in ("Running", "Succeeded") for p in pods), node=node.name
    )

    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    response = send(drainer, entry)
    assert response.status_code == 200, response.text

    current = cluster.read_node(node.name)
    assert current.spec.unschedulable is True
    notes = current.metadata.annotations
    assert notes[f"{ANN}cordoned-by"] == "gke-node-drainer"
    assert notes[f"{ANN}reason"] == "preempted"
    assert notes[f"{ANN}event-id"] == event_id(entry)
    assert notes[f"{ANN}was-unschedulable"] == "false"
    assert notes[f"{ANN}boot-id"] == node.boot_id
    assert notes[f"{ANN}instance-id"] == node.instance_id
    datetime.strptime(notes[f"{ANN}cordoned-at"], "%Y-%m-%dT%H:%M:%SZ")

    left = {p.metadata.name for p in cluster.pods(node=node.name)}
    assert left == {"keep-me", "ca-keep", *(n for n in left if n.startswith("agent"))}
    assert sum(1 for n in left if n.startswith("agent")) == 1

    eid = event_id(entry)
    done = drainer.wait_audit(action="drain.completed", event_id=eid)
    assert done["node"] == node.name
    assert done["cluster"] == "test"
    assert done["trigger"] == "pubsub"
    assert done["counts"] == {"evicted": 5, "deleted": 1, "skipped": 3}
    evicted = {r["pod"] for r in drainer.audit_for(action="pod.evicted", event_id=eid)}
    assert {f"{cluster.namespace}/bare", f"{cluster.namespace}/scratch"} <= evicted
    skipped = {r["pod"].split("/")[1]: r["reason"] for r in drainer.audit_for(action="pod.skipped", event_id=eid)}
    assert skipped["keep-me"].startswith("opt-out annotation")
    assert skipped["ca-keep"] == "cluster-autoscaler.kubernetes.io/safe-to-evict=false"
    assert any(reason == "managed by a DaemonSet" for reason in skipped.values())
    deleted = drainer.audit_for(action="pod.deleted", event_id=eid)
    assert [r["pod"] for r in deleted] == [f"{cluster.namespace}/done"]
    scratch = next(r for r in drainer.audit_for(action="pod.evicted", event_id=eid) if r["pod"].endswith("/scratch"))
    assert scratch["local_storage"] is True
    assert scratch["unreplicated"] is True
    received = drainer.wait_audit(action="event.received", event_id=eid)
    assert received["principal"] == "system@google.com"
    assert received["instance_id"] == node.instance_id


@pytest.mark.parametrize("kind", KINDS)
def test_every_event_kind_drains_its_node(drainer: FunctionServer, cluster: TestCluster, kind: str) -> None:
    node = cluster.add_node(zone="europe-west4-a")
    cluster.replicaset(node.name, 2)
    cluster.wait_running(2, node=node.name)
    entry = log_entry(kind, instance=node.name, zone="europe-west4-a", instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    assert cluster.read_node(node.name).spec.unschedulable is True
    assert cluster.read_node(node.name).metadata.annotations[f"{ANN}reason"] == kind
    done = drainer.wait_audit(action="drain.completed", event_id=event_id(entry))
    assert done["counts"] == {"evicted": 2}
    # the ReplicaSet's replacements cannot land on the cordoned node
    assert not [p for p in cluster.pods(node=node.name) if not p.metadata.deletion_timestamp]


@pytest.mark.parametrize("shape", ["binary", "structured", "push", "legacy"])
def test_every_delivery_shape_is_understood(drainer: FunctionServer, cluster: TestCluster, shape: str) -> None:
    node = cluster.add_node()
    cluster.bare_pod(node.name)
    cluster.wait_running(1, node=node.name)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    response = send(drainer, entry, shape)
    assert response.status_code == 200, response.text
    assert cluster.read_node(node.name).spec.unschedulable is True
    drainer.wait_audit(action="drain.completed", event_id=event_id(entry))


def test_duplicate_delivery_is_harmless(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 2)
    cluster.wait_running(2, node=node.name)
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry, message_id="42").status_code == 200
    first = cluster.read_node(node.name).metadata.annotations
    assert send(drainer, entry, message_id="42").status_code == 200
    second = cluster.read_node(node.name).metadata.annotations
    assert second == first  # nothing re-recorded: the cordon-time state is kept
    records = drainer.audit_for(action="drain.completed", event_id=event_id(entry))
    assert [r["counts"] for r in records] == [{"evicted": 2}, {}]
    assert len(drainer.audit_for(action="node.cordoned", event_id=event_id(entry))) == 1


def test_pdb_blocks_until_the_deadline_and_is_reported(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 2, name="db")
    cluster.wait_running(2, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=2, name="db-pdb", expected_pods=2)
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    started = time.monotonic()
    assert send(drainer, entry).status_code == 200
    elapsed = time.monotonic() - started
    assert elapsed >= 3.0  # the delete deadline of this server
    done = drainer.wait_audit(action="drain.incomplete", event_id=event_id(entry))
    assert done["counts"] == {"blocked": 2}
    assert sorted(b["pdb"] for b in done["blocked"]) == ["db-pdb", "db-pdb"]
    assert "disruption budget" in done["blocked"][0]["message"]
    blocked = drainer.audit_for(action="pod.blocked", event_id=event_id(entry))
    assert len(blocked) == 2
    assert all(r["pdb"] == "db-pdb" for r in blocked)
    assert len(cluster.wait_running(2, node=node.name)) == 2  # nothing was forced


def _sts_on(cluster: TestCluster, kubelet: KubeletStandIn) -> tuple[Any, Any, Any]:
    """Two nodes of one pool; a one-replica StatefulSet running on the first."""
    victim = cluster.add_node(pool="stateful-pool")
    spare = cluster.add_node(pool="stateful-pool", unschedulable=True)
    sts = cluster.statefulset(1, node_selector={"cloud.google.com/gke-nodepool": "stateful-pool"}, name="db")
    [pod] = cluster.wait_running(1, label_selector="app=db")
    assert pod.spec.node_name == victim.name
    cluster.core.patch_node(spare.name, {"spec": {"unschedulable": False}})
    return victim, spare, sts


def test_statefulset_pod_on_killed_node_is_recreated_elsewhere(
    drainer: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn, compute_api: FakeComputeApi
) -> None:
    victim, spare, _ = _sts_on(cluster, kubelet)
    [old] = cluster.pods(label_selector="app=db")
    kubelet.kill(victim.name)  # the VM is gone: Ready Unknown, the heartbeat stops
    compute_api.fail(victim.name, 503)  # and Compute Engine cannot answer: the Node rule decides
    when = cluster.after_last_heartbeat(victim.name)  # the event is logged after the last heartbeat
    entry = log_entry("preempted", instance=victim.name, instance_id=victim.instance_id, when=when)
    assert send(drainer, entry).status_code == 200
    forced = drainer.wait_audit(action="pod.force_deleted", event_id=event_id(entry))
    assert forced["pod"] == f"{cluster.namespace}/db-0"
    assert forced["ready"] == "Unknown"
    [new] = cluster.wait_pods(
        lambda pods: len(pods) == 1 and pods[0].metadata.uid != old.metadata.uid and pods[0].status.phase == "Running",
        label_selector="app=db",
        timeout=5,
    )
    assert new.spec.node_name == spare.name
    done = drainer.wait_audit(action="drain.completed", event_id=event_id(entry))
    assert done["verified_down"] is True
    assert done["counts"] == {"force_deleted": 1}
    compute_api.clear(victim.name)


def test_ready_node_is_never_force_cleaned(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 1, name="solo")
    cluster.wait_running(1, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=1)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    done = drainer.wait_audit(action="drain.incomplete", event_id=event_id(entry))
    assert done["verified_down"] is False
    assert "not verified down" in done["note"]
    assert not drainer.audit_for(action="pod.force_deleted", event_id=event_id(entry))
    assert len(cluster.wait_running(1, node=node.name)) == 1


def test_not_ready_node_with_heartbeat_after_the_event_is_not_forced(
    drainer: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn
) -> None:
    """Fencing: NotReady alone is not enough; the kubelet must have been silent since the event."""
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="p")
    cluster.wait_running(1, node=node.name)
    event_at = datetime.now(UTC)  # after the node registered, so the event is about this VM

    def heartbeat_after_the_event() -> bool:
        ready = next(c for c in cluster.read_node(node.name).status.conditions if c.type == "Ready")
        return bool(ready.last_heartbeat_time > event_at + timedelta(seconds=1))

    assert wait_until(heartbeat_after_the_event, timeout=15)
    kubelet.kill(node.name)
    entry = log_entry("host_error", instance=node.name, instance_id=node.instance_id, when=event_at)
    assert send(drainer, entry).status_code == 200
    done = drainer.wait_audit(action="drain.incomplete", event_id=event_id(entry))
    assert done["verified_down"] is False
    assert not drainer.audit_for(action="pod.force_deleted", event_id=event_id(entry))
    [pod] = cluster.pods(node=node.name)
    assert pod.metadata.deletion_timestamp is not None  # evicted, stuck terminating, not forced


def test_pre_existing_cordon_is_preserved(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node(unschedulable=True)
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    current = cluster.read_node(node.name)
    assert current.spec.unschedulable is True
    assert current.metadata.annotations[f"{ANN}was-unschedulable"] == "true"
    cordoned = drainer.wait_audit(action="node.cordoned", event_id=event_id(entry))
    assert cordoned["was_unschedulable"] is True
    done = drainer.wait_audit(action="drain.completed", event_id=event_id(entry))
    assert done["cordoned"] is False
    assert done["was_unschedulable"] is True


def test_event_about_a_replaced_instance_is_ignored(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    entry = log_entry("preempted", instance=node.name, instance_id="1234")
    assert send(drainer, entry).status_code == 200
    record = drainer.wait_audit(action="event.ignored", event_id=event_id(entry))
    assert "already replaced" in record["reason"]
    assert not cluster.read_node(node.name).spec.unschedulable


@pytest.mark.parametrize(
    ("entry_change", "reason_part"),
    [
        pytest.param({"method": "compute.instances.setMetadata"}, "not an event that drains", id="unknown-method"),
        pytest.param({"method": "compute.instances.migrateOnHostMaintenance"}, "live migration", id="live-migration"),
        pytest.param(
            {"instance": "some-vm-not-in-gke"}, "is no node of the configured clusters", id="non-gke-instance"
        ),
        pytest.param({"zone": "us-central1-a"}, "no configured cluster can own", id="other-region"),
        pytest.param({"project": "other-project"}, "no configured cluster can own", id="other-project"),
        pytest.param({"first": False}, "not the first entry", id="delete-not-first"),
        pytest.param({"severity": "ERROR"}, "failed", id="delete-failed"),
    ],
)
def test_events_we_do_not_act_on_are_acknowledged_and_audited(
    drainer: FunctionServer, cluster: TestCluster, entry_change: dict[str, Any], reason_part: str
) -> None:
    node = cluster.add_node()
    kind = "delete" if set(entry_change) & {"first", "severity"} else "preempted"
    entry = log_entry(
        kind,
        instance=entry_change.get("instance", node.name),
        zone=entry_change.get("zone", node.zone),
        project=entry_change.get("project", node.project),
    )
    if "method" in entry_change:
        entry["protoPayload"]["methodName"] = entry_change["method"]
    if "first" in entry_change:
        entry["operation"]["first"] = False
    if "severity" in entry_change:
        entry["severity"] = "ERROR"
        entry["protoPayload"]["status"] = {"code": 3, "message": "Invalid resource usage"}
    assert send(drainer, entry).status_code == 200
    record = drainer.wait_audit(action="event.ignored", insert_id=entry["insertId"])
    assert reason_part in record["reason"]
    assert not cluster.read_node(node.name).spec.unschedulable


@pytest.mark.parametrize(
    ("mangle", "error_part"),
    [
        pytest.param(lambda body: body.replace(b'"data": "', b'"data": "%%%not-base64'), "base64", id="bad-base64"),
        pytest.param("not json at all", "not a JSON LogEntry", id="non-json-data"),
        pytest.param({"insertId": "x", "resource": {"type": "gce_instance"}}, "protoPayload", id="missing-fields"),
        pytest.param("wrong-resource", "k8s_cluster", id="wrong-resource-type"),
        pytest.param(lambda body: body.replace(b'"message"', b'"massage"'), "message", id="no-message"),
    ],
)
def test_malformed_events_are_acknowledged_and_audited(drainer: FunctionServer, mangle: Any, error_part: str) -> None:
    base = log_entry("preempted", instance="gke-whatever")
    if mangle == "wrong-resource":
        base["resource"]["type"] = "k8s_cluster"
        body, headers = delivery("binary", base)
    elif isinstance(mangle, str):
        body, headers = delivery("binary", mangle.encode())
    elif isinstance(mangle, dict):
        body, headers = delivery("binary", mangle)
    else:
        body, headers = delivery("binary", base)
        body = mangle(body)
    headers["ce-id"] = mid = f"malformed-{time.monotonic_ns()}"
    response = drainer.post(body, headers)
    assert response.status_code == 200, response.text
    record = drainer.wait_audit(action="event.malformed", delivery_id=mid)
    assert error_part in record["error"]
    assert record["severity"] == "WARNING"


def test_api_server_unreachable_makes_the_handler_fail_for_redelivery(
    server_factory: Any, control_plane: ControlPlane, cluster: TestCluster
) -> None:
    dead = cluster_entry(control_plane, name="dead", endpoint=f"https://127.0.0.1:{free_port()}")
    server = server_factory(clusters=[dead])
    node = cluster.add_node()
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    response = send(server, entry)
    assert response.status_code == 500
    record = server.wait_audit(action="cluster.unreachable", event_id=event_id(entry))
    assert record["cluster"] == "dead"
    assert not cluster.read_node(node.name).spec.unschedulable


def test_unreachable_cluster_does_not_stop_resolution_in_the_others(
    server_factory: Any, control_plane: ControlPlane, cluster: TestCluster
) -> None:
    dead = cluster_entry(control_plane, name="dead", endpoint=f"https://127.0.0.1:{free_port()}")
    live = cluster_entry(control_plane, name="live")
    other = cluster_entry(
        control_plane, name="elsewhere", location="us-central1", endpoint=f"https://127.0.0.1:{free_port()}"
    )
    server = server_factory(clusters=[other, dead, live])
    node = cluster.add_node()
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    assert send(server, entry).status_code == 200
    done = server.wait_audit(action="drain.completed", event_id=event_id(entry))
    assert done["cluster"] == "live"
    asked = [r["cluster"] for r in server.audit_for(action="cluster.unreachable", event_id=event_id(entry))]
    assert asked == ["dead"]  # the us-central1 cluster cannot own a europe-west4 instance: never asked


def test_dry_run_plans_everything_and_changes_nothing(server_factory: Any, cluster: TestCluster) -> None:
    server = server_factory(DRAINER_DRY_RUN="true")
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 2, name="web")
    cluster.bare_pod(node.name, name="done", exit_code=0)
    cluster.wait_running(2, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=2, name="web-pdb")
    before = {p.metadata.uid for p in cluster.pods(node=node.name)}
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    assert send(server, entry).status_code == 200
    done = server.wait_audit(action="drain.dry_run", event_id=event_id(entry))
    assert done["dry_run"] is True
    assert done["counts"] == {"blocked": 2, "would_delete": 1}
    assert server.wait_audit(action="node.cordoned", event_id=event_id(entry))["message"].startswith("would cordon")
    current = cluster.read_node(node.name)
    assert not current.spec.unschedulable
    assert not any(k.startswith(ANN) for k in (current.metadata.annotations or {}))
    assert {p.metadata.uid for p in cluster.pods(node=node.name)} == before


def test_no_token_ever_reaches_the_audit_or_the_logs(
    drainer: FunctionServer, control_plane: ControlPlane, cluster: TestCluster
) -> None:
    node = cluster.add_node()
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    drainer.wait_audit(action="drain.completed", event_id=event_id(entry))
    output = "\n".join(drainer.lines())
    for identity in control_plane.drainer_identities:
        assert identity.token not in output
    assert json.dumps(drainer.audit_for(action="service.started")[0]["settings"])  # the settings summary is logged


def test_system_critical_pods_are_evicted_last(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="dns", priorityClassName="system-cluster-critical")
    cluster.replicaset(node.name, 4, name="web")
    cluster.wait_running(5, node=node.name)
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    drainer.wait_audit(action="drain.completed", event_id=event_id(entry))
    order = [r["pod"].split("/")[1] for r in drainer.audit_for(action="pod.evicted", event_id=event_id(entry))]
    assert len(order) == 5
    assert order[-1] == "dns"
    critical = drainer.audit_for(action="pod.evicted", event_id=event_id(entry))[-1]
    assert critical["critical"] is True


def test_pod_selected_by_two_budgets_is_reported_not_forced(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 1, name="twice")
    cluster.wait_running(1, node=node.name)
    app = rs.metadata.labels["app"]
    cluster.pdb({"app": app}, max_unavailable=1, name="first")
    cluster.pdb({"app": app}, max_unavailable=1, name="second")
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    done = drainer.wait_audit(action="drain.incomplete", event_id=event_id(entry))
    assert done["counts"] == {"blocked": 1}
    assert "more than one" in done["blocked"][0]["message"].lower()
    assert len(cluster.wait_running(1, node=node.name)) == 1


def test_cluster_that_denies_us_is_a_deployment_fault_retried_with_what_to_fix(
    server_factory: Any, control_plane: ControlPlane, cluster: TestCluster, tmp_path: Any
) -> None:
    token = tmp_path / "token"
    token.write_text(control_plane.stranger.token)  # authenticated, but no binding grants it anything
    denied = cluster_entry(control_plane, name="denied", auth="token_file", token_file=str(token))
    server = server_factory(clusters=[denied])
    node = cluster.add_node()
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    assert send(server, entry).status_code == 500  # raised: Pub/Sub redelivers, the dead-letter topic keeps it
    record = server.wait_audit(action="cluster.unreachable", event_id=event_id(entry))
    assert record["severity"] == "ERROR"
    assert record["status"]["code"] == 403
    assert record["status"]["reason"] == "Forbidden"
    assert "get nodes" in record["fix"]
    assert "ClusterRole gke-node-drainer" in record["fix"]
    assert not cluster.read_node(node.name).spec.unschedulable


def test_denial_during_the_drain_is_handled_the_same_way(
    server_factory: Any, control_plane: ControlPlane, cluster: TestCluster, admin_api: Any, tmp_path: Any
) -> None:
    from kubernetes import client as k8s

    rbac = k8s.RbacAuthorizationV1Api(admin_api)
    name = f"read-nodes-{cluster.namespace}"
    rbac.create_cluster_role(
        {"metadata": {"name": name}, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}
    )
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": control_plane.stranger.user}
            ],
        }
    )
    try:
        token = tmp_path / "token"
        token.write_text(control_plane.stranger.token)  # may read nodes, may not cordon
        entry_cluster = cluster_entry(control_plane, name="readonly", auth="token_file", token_file=str(token))
        server = server_factory(clusters=[entry_cluster])
        node = cluster.add_node()
        entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)

        def redelivered() -> bool:  # again until the new binding is in the authorizer's cache
            assert send(server, entry).status_code == 500
            return bool(server.audit_for(action="drain.failed", event_id=event_id(entry)))

        assert wait_until(redelivered, timeout=20)
        record = server.wait_audit(action="drain.failed", event_id=event_id(entry))
        assert record["severity"] == "ERROR"
        assert record["retry"] is True
        assert record["status"]["code"] == 403
        assert "patch nodes" in record["fix"]
        assert "ClusterRole gke-node-drainer" in record["fix"]
    finally:
        rbac.delete_cluster_role_binding(name)
        rbac.delete_cluster_role(name)


def test_cluster_whose_client_cannot_be_built_does_not_stop_the_others_and_is_not_rebuilt_each_time(
    server_factory: Any, control_plane: ControlPlane, cluster: TestCluster, tmp_path: Any
) -> None:
    broken = cluster_entry(control_plane, name="broken", auth="token_file", token_file=str(tmp_path / "missing"))
    live = cluster_entry(control_plane, name="live")
    server = server_factory(clusters=[broken, live])
    first, second = cluster.add_node(), cluster.add_node()
    for node in (first, second):
        entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
        assert send(server, entry).status_code == 200
        assert server.wait_audit(action="drain.completed", event_id=event_id(entry))["cluster"] == "live"
        record = server.wait_audit(action="cluster.unreachable", event_id=event_id(entry))
        assert record["cluster"] == "broken"
        assert record["severity"] == "WARNING"
        assert "cannot read the token file" in record["error"]
    assert "not rebuilt for another" in record["error"]  # the second event did not try to build it again
