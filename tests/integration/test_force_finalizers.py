"""Invariant 10 on the real control plane: a pod force-deleted from a node verified down that a
finalizer keeps is reported remaining, with the finalizer's name, not as force-deleted and gone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes.client import ApiException

from tests.controlplane.cluster import TestCluster
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

PROTECT = "example.com/protect"
JOB_TRACKING = "batch.kubernetes.io/job-tracking"  # the Job controller's: removed once it has counted the pod
DEADLINE = 12  # s: the drain waits until then for a held pod to go


@contextmanager
def finalizers_removed_at_the_end(cluster: TestCluster, name: str) -> Iterator[None]:
    """Whatever the test found, the pod's finalizer goes at the end, so that the pod and the
    namespace can go."""
    try:
        yield
    finally:
        try:
            cluster.core.patch_namespaced_pod(name, cluster.namespace, {"metadata": {"finalizers": None}})
        except ApiException as exc:
            if exc.status != 404:
                raise
        cluster.wait_pods(lambda pods: name not in {p.metadata.name for p in pods}, timeout=30)


def test_a_force_deleted_pod_held_by_a_finalizer_is_reported_remaining_with_its_name(
    server_factory: Callable[..., FunctionServer],
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    server = server_factory(DRAINER_DEADLINE_PREEMPTED=str(DEADLINE))
    node = cluster.add_node(pool="finalizer-pool")
    cluster.bare_pod(node.name, name="held")
    cluster.core.patch_namespaced_pod("held", cluster.namespace, {"metadata": {"finalizers": [PROTECT]}})
    cluster.bare_pod(node.name, name="free")
    job = cluster.job(node.name, name="tracked", exit_code=None)  # its pod carries the Job controller's finalizer
    with finalizers_removed_at_the_end(cluster, "held"):
        pods = cluster.wait_pods(
            lambda pods: len(pods) == 3 and all(p.status.phase == "Running" for p in pods), node=node.name
        )
        tracked = next(p for p in pods if p.metadata.name.startswith("tracked-"))
        assert JOB_TRACKING in (tracked.metadata.finalizers or [])
        assert job.metadata.uid == tracked.metadata.owner_references[0].uid
        kubelet.kill(node.name, mark_unknown=False)  # the VM is off: nobody finishes a graceful delete
        compute_api.set_status(node.name, "TERMINATED")

        entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
        body, headers = delivery("binary", entry)
        response = server.post(body, headers)
        assert response.status_code == 200, response.text

        report = server.wait_audit(action="drain.incomplete", node=node.name, event_id=entry["operation"]["id"])
        assert report["verified_down"] is True
        held = f"{cluster.namespace}/held"
        assert report["remaining"] == [held]
        assert report["held_by_finalizers"] == [
            {"pod": held, "finalizers": [PROTECT], "message": f"held by finalizer {PROTECT}"}
        ]
        # the others went: one without a finalizer at once, the Job's once its controller let it go
        assert report["counts"] == {"force_deleted": 2, "remaining": 1}, report["counts"]
        forced: dict[str, Any] = {r["pod"]: r for r in server.audit_for(action="pod.force_deleted", node=node.name)}
        assert forced[held]["finalizers"] == [PROTECT]
        assert f"held by finalizer {PROTECT}" in forced[held]["message"]
        assert forced[f"{cluster.namespace}/free"]["finalizers"] == []
        # and the API server indeed keeps it, deleted and waiting for its finalizer
        still = cluster.core.read_namespaced_pod("held", cluster.namespace)
        assert still.metadata.deletion_timestamp is not None
        assert still.metadata.finalizers == [PROTECT]
