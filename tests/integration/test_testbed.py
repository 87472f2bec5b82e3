"""The test bed behaves like a cluster where it matters for stateful failover: volumes are bound by
the real PV binder and attached through the real attach/detach controller (and the attacher
stand-in), node health is judged by the real node-lifecycle controller from Leases, and the
non-graceful shutdown taint releases a dead node's volumes. Plus the fake Compute Engine API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.attacher import PD_CSI_DRIVER, AttacherStandIn, attacher_finalizer
from tests.controlplane.clients import api_client
from tests.controlplane.cluster import POOL_LABEL, TestCluster, wait_until
from tests.controlplane.harness import ControlPlane, Identity
from tests.controlplane.kubelet import (
    CONTROLLER_MANAGED_ANNOTATION,
    LEASE_NAMESPACE,
    KubeletStandIn,
    _NodeState,
    csi_volume_name,
)
from tests.support.compute import FakeComputeApi


def _events_about(cluster: TestCluster, uid: str) -> list[Any]:
    return list(cluster.core.list_namespaced_event(cluster.namespace, field_selector=f"involvedObject.uid={uid}").items)


def test_statefulset_pod_runs_with_its_volume_bound_and_attached(cluster: TestCluster) -> None:
    node = cluster.add_node(pool="vol-pool")
    cluster.stateful_set_with_volumes(1, node_selector={POOL_LABEL: "vol-pool"}, name="db")
    pod, va = cluster.wait_running_with_volume("db-0", node.name)

    pvc = cluster.core.read_namespaced_persistent_volume_claim("data-db-0", cluster.namespace)
    assert pvc.status.phase == "Bound"  # by the real PV binder
    pv = cluster.claimed_volume(pod)
    assert pv.status.phase == "Bound"
    assert pv.spec.claim_ref.uid == pvc.metadata.uid
    assert va.spec.attacher == PD_CSI_DRIVER
    assert va.spec.source.persistent_volume_name == pv.metadata.name
    assert attacher_finalizer(PD_CSI_DRIVER) in va.metadata.finalizers
    assert attacher_finalizer(PD_CSI_DRIVER) == "external-attacher/pd-csi-storage-gke-io"
    unique = csi_volume_name(PD_CSI_DRIVER, pv.spec.csi.volume_handle)
    assert unique == f"kubernetes.io/csi/pd.csi.storage.gke.io^{pv.spec.csi.volume_handle}"
    current = cluster.read_node(node.name)
    assert unique in (current.status.volumes_in_use or [])
    assert current.metadata.annotations[CONTROLLER_MANAGED_ANNOTATION] == "true"
    # the attach/detach controller reports the attachment in the node's status too
    assert wait_until(
        lambda: unique in [v.name for v in cluster.read_node(node.name).status.volumes_attached or []], timeout=10
    )
    assert all(c.state.running is not None for c in pod.status.container_statuses)


def test_pod_waits_in_container_creating_until_its_volume_is_attached(
    cluster: TestCluster, attacher: AttacherStandIn
) -> None:
    node = cluster.add_node(pool="slow-attach-pool")
    attacher.attach_delay = 2.0
    try:
        cluster.stateful_set_with_volumes(1, node_selector={POOL_LABEL: "slow-attach-pool"}, name="db")
        assert wait_until(lambda: bool(cluster.volume_attachments(node=node.name)), timeout=20)
        pod = cluster.core.read_namespaced_pod("db-0", cluster.namespace)
        assert pod.spec.node_name == node.name
        assert pod.status.phase == "Pending"  # attachment requested, not attached yet
        cluster.wait_running_with_volume("db-0", node.name)
    finally:
        attacher.attach_delay = 0.0


def test_killed_node_turns_unknown_through_the_node_lifecycle_controller(
    cluster: TestCluster, kubelet: KubeletStandIn, control_plane: ControlPlane
) -> None:
    node = cluster.add_node(pool="lifecycle-pool")
    cluster.stateful_set_with_volumes(1, node_selector={POOL_LABEL: "lifecycle-pool"}, name="db")
    pod, _ = cluster.wait_running_with_volume("db-0", node.name)
    unique = cluster.unique_volume_name(cluster.claimed_volume(pod))
    coordination = client.CoordinationV1Api(cluster.api)
    lease = coordination.read_namespaced_lease(node.name, LEASE_NAMESPACE)
    assert lease.spec.holder_identity == node.name
    first = lease.spec.renew_time

    def renewed() -> bool:
        renew: Any = coordination.read_namespaced_lease(node.name, LEASE_NAMESPACE).spec.renew_time
        return bool(renew > first)

    assert wait_until(renewed, timeout=10), "the stand-in does not renew the node's Lease"
    # the real controller removed the not-ready taint the API server put on the new node
    assert not [t for t in cluster.read_node(node.name).spec.taints or [] if t.key.startswith("node.kubernetes.io/")]

    killed_at = datetime.now(UTC)
    kubelet.kill(node.name, mark_unknown=False)
    assert cluster.node_ready(node.name) == "True"  # nobody has noticed yet
    current = cluster.wait_node_ready(node.name, "Unknown", timeout=control_plane.node_monitor_grace_period + 20)
    ready = next(c for c in current.status.conditions if c.type == "Ready")
    assert ready.reason == "NodeStatusUnknown"
    assert ready.last_heartbeat_time <= killed_at  # the kubelet's last heartbeat is kept
    assert unique in (current.status.volumes_in_use or [])  # a dead node keeps listing its volumes
    assert wait_until(
        lambda: any(
            t.key == "node.kubernetes.io/unreachable" and t.effect == "NoSchedule"
            for t in cluster.read_node(node.name).spec.taints or []
        ),
        timeout=10,
    ), "the controller did not taint the lost node unreachable"
    # ... and marked its pods NotReady
    assert wait_until(
        lambda: (
            not any(
                c.type == "Ready" and c.status == "True"
                for c in cluster.core.read_namespaced_pod("db-0", cluster.namespace).status.conditions
            )
        ),
        timeout=10,
    )

    kubelet.restart(node.name)
    cluster.wait_node_ready(node.name, "True", timeout=10)
    assert wait_until(
        lambda: (
            not [t for t in cluster.read_node(node.name).spec.taints or [] if t.key.startswith("node.kubernetes.io/")]
        ),
        timeout=15,
    ), "the controller kept the unreachable taints of a node that is back"
    assert wait_until(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in cluster.core.read_namespaced_pod("db-0", cluster.namespace).status.conditions
        ),
        timeout=10,
    ), "the kubelet of a node that is back did not report its pod ready again"


def test_dead_node_keeps_the_volume_until_it_is_marked_out_of_service(
    cluster: TestCluster, kubelet: KubeletStandIn, attacher: AttacherStandIn
) -> None:
    victim, spare, old, old_va = cluster.stateful_pod_and_spare("failover-pool")
    pv = cluster.claimed_volume(old)
    unique = cluster.unique_volume_name(pv)

    kubelet.kill(victim.name)  # the VM is gone (Ready Unknown at once: the controller's verdict)
    cluster.core.delete_namespaced_pod(
        "db-0", cluster.namespace, body=client.V1DeleteOptions(grace_period_seconds=0)
    )  # force-deleted, as `kubectl delete --force` does
    assert unique in cluster.volumes_in_use(victim.name)  # nobody told the dead kubelet

    def replacement() -> Any:
        try:
            pod = cluster.core.read_namespaced_pod("db-0", cluster.namespace)
        except ApiException:  # between the deletion and the StatefulSet's new pod
            return None
        return pod if pod.metadata.uid != old.metadata.uid and pod.spec.node_name else None

    assert wait_until(lambda: replacement() is not None, timeout=20), "the StatefulSet was not replaced"
    new = replacement()
    assert new.spec.node_name == spare.name

    # The attach/detach controller refuses a second attachment of the ReadWriteOnce volume.
    def multi_attach_reported() -> bool:
        return any(
            e.reason == "FailedAttachVolume" and "Multi-Attach" in (e.message or "")
            for e in _events_about(cluster, new.metadata.uid)
        )

    assert wait_until(multi_attach_reported, timeout=30, interval=0.2), [
        (e.reason, e.message) for e in _events_about(cluster, new.metadata.uid)
    ]
    assert not wait_until(
        lambda: cluster.core.read_namespaced_pod("db-0", cluster.namespace).status.phase == "Running", timeout=3
    ), "the replacement ran while the volume was still attached to the dead node"
    [still] = cluster.volume_attachments(pv=pv.metadata.name)
    assert still.metadata.name == old_va.metadata.name
    assert still.spec.node_name == victim.name
    assert still.status.attached

    # Non-graceful node shutdown: the out-of-service taint lets the controller detach at once.
    cluster.taint_out_of_service(victim.name)
    assert wait_until(lambda: not cluster.volume_attachments(pv=pv.metadata.name, node=victim.name), timeout=30), (
        "the attach/detach controller did not detach the volume from the out-of-service node"
    )
    pod, va = cluster.wait_running_with_volume("db-0", spare.name, timeout=30)
    assert pod.metadata.uid == new.metadata.uid
    assert va.metadata.name != old_va.metadata.name
    assert (old_va.metadata.name, victim.name, "detached") in [(n, node, w) for _, n, node, w in attacher.history]
    assert unique in cluster.volumes_in_use(spare.name)


def test_stand_in_threads_survive_an_unreachable_api_server(control_plane: ControlPlane) -> None:
    """A connection error (a restarting API server) must not end the heartbeats or the scheduler."""
    api = api_client(control_plane, Identity("nobody", "x"))
    api.configuration.host = "https://127.0.0.1:9"  # nothing listens there
    standin = KubeletStandIn(api, heartbeat_interval=0.2, lease_interval=0.2)
    standin._nodes["ghost"] = _NodeState(name="ghost", boot_id="b")
    standin._pending["uid"] = ("default", "p")
    standin.start()
    try:
        assert not wait_until(lambda: not all(t.is_alive() for t in standin._threads), timeout=2)
    finally:
        standin.stop()


# ----------------------------------------------------------------------- fake Compute API
def _get(fake: FakeComputeApi, name: str, *, zone: str = "europe-west4-b", token: str = "ya29.t") -> requests.Response:
    return requests.get(
        f"{fake.url}/compute/v1/projects/{fake.project}/zones/{zone}/instances/{name}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_fake_compute_api_serves_instance_states(compute_api: FakeComputeApi) -> None:
    instance = compute_api.set_instance("gke-x-pool-1234-abcd", instance_id="7310455628112203391")
    answer = _get(compute_api, "gke-x-pool-1234-abcd", token="ya29.one")
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == "7310455628112203391"
    assert isinstance(body["id"], str)
    assert body["name"] == "gke-x-pool-1234-abcd"
    assert body["status"] == "RUNNING"
    assert datetime.fromisoformat(body["lastStartTimestamp"]) <= datetime.now(UTC)

    for status in ("STOPPING", "TERMINATED"):
        compute_api.set_status(instance.name, status)
        assert _get(compute_api, instance.name).json()["status"] == status
    assert "lastStopTimestamp" in _get(compute_api, instance.name).json()

    replaced = compute_api.replace(instance.name)
    body = _get(compute_api, instance.name).json()
    assert body["id"] == replaced.id != "7310455628112203391"
    assert body["status"] == "RUNNING"

    compute_api.delete(instance.name)
    gone = _get(compute_api, instance.name)
    assert gone.status_code == 404
    assert gone.json()["error"]["errors"][0]["reason"] == "notFound"
    assert _get(compute_api, instance.name, zone="us-central1-a").status_code == 404

    log = compute_api.requests_for(instance.name)
    assert log[0].method == "GET"
    assert log[0].path == f"/compute/v1/projects/{compute_api.project}/zones/europe-west4-b/instances/{instance.name}"
    assert log[0].authorization == "Bearer ya29.one"


def test_fake_compute_api_errors_and_slowness(compute_api: FakeComputeApi) -> None:
    compute_api.set_instance("gke-y-pool-1234-abcd")
    compute_api.fail("gke-y-pool-1234-abcd", 403, times=1)
    denied = _get(compute_api, "gke-y-pool-1234-abcd")
    assert denied.status_code == 403
    assert "compute.instances.get" in denied.json()["error"]["message"]
    assert _get(compute_api, "gke-y-pool-1234-abcd").status_code == 200  # only once

    compute_api.fail("gke-y-pool-1234-abcd", 500)
    assert [_get(compute_api, "gke-y-pool-1234-abcd").status_code for _ in range(2)] == [500, 500]
    compute_api.clear("gke-y-pool-1234-abcd")

    compute_api.slow("gke-y-pool-1234-abcd", 5.0, times=1)
    with pytest.raises(requests.Timeout):
        requests.get(
            f"{compute_api.url}/compute/v1/projects/{compute_api.project}/zones/europe-west4-b/instances/gke-y-pool-1234-abcd",
            headers={"Authorization": "Bearer t"},
            timeout=0.5,
        )
    assert _get(compute_api, "gke-y-pool-1234-abcd").status_code == 200

    unauthenticated = requests.get(
        f"{compute_api.url}/compute/v1/projects/{compute_api.project}/zones/europe-west4-b/instances/gke-y-pool-1234-abcd",
        timeout=10,
    )
    assert unauthenticated.status_code == 401
