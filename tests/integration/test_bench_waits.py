"""The benchmarks' bounded waits (bench.common.Vanishing) against the real API server: a wait that
times out names what remained, and a deletion the watch missed is noticed at the next list."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from bench.common import Vanishing
from tests.controlplane.harness import ControlPlane


def _pending_pod(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    # no node and no scheduler for it: the pod stays Pending until deleted
    body = {
        "metadata": {"name": name},
        "spec": {"nodeSelector": {"no-such": "node"}, "containers": [{"name": "a", "image": "b"}]},
    }
    return core.create_namespaced_pod(namespace, body)


def test_a_wait_that_times_out_names_what_remained(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    pods = {
        p.metadata.uid: f"{namespace}/{p.metadata.name}"
        for p in (_pending_pod(core, namespace, f"p{i}") for i in range(3))
    }
    watch = Vanishing(control_plane, "/api/v1/pods")
    try:
        for ref in sorted(pods.values())[:2]:
            core.delete_namespaced_pod(ref.split("/")[1], namespace, grace_period_seconds=0)
        gone = watch.await_gone(pods, timeout=3)
        assert gone.last is None
        assert gone.remaining == (f"{namespace}/p2",)
        assert "1 remained" in gone.describe()
        deleted = {uid: ref for uid, ref in pods.items() if not ref.endswith("p2")}
        assert watch.await_gone(deleted, timeout=10).last is not None
    finally:
        watch.stop()


def test_a_deletion_the_watch_missed_is_noticed_at_the_next_list(
    control_plane: ControlPlane, admin_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin_api)
    pod = _pending_pod(core, namespace, "missed")
    watch = Vanishing(control_plane, "/api/v1/pods")
    watch.track({pod.metadata.uid: "missed"})
    watch.stop()  # nobody watches while it goes
    core.delete_namespaced_pod("missed", namespace, grace_period_seconds=0)
    assert pod.metadata.uid not in watch.deleted
    gone = watch.await_gone({pod.metadata.uid: "missed"}, timeout=0.1)  # times out, then lists once more
    assert gone.remaining == ()
    assert gone.last is not None
