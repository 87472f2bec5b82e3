"""The eviction precondition that makes concurrent drains of one node count each pod once, on the real
API server through the function's own ClusterClient: an eviction is for the pod as it was read."""

from __future__ import annotations

from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.evictions import EvictionOutcome
from tests.controlplane.cluster import TestCluster


def test_an_eviction_is_for_the_pod_as_it_was_read(kube: ClusterClient, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="solo")
    cluster.wait_running(1, node=node.name)
    [seen], _ = kube.list_pods_on_node(node.name)
    assert seen.resource_version

    # changed since it was read (still running): refused, with the pod as it is now
    cluster.core.patch_namespaced_pod("solo", cluster.namespace, {"metadata": {"labels": {"touched": "yes"}}})
    stale = kube.evict(seen)
    assert stale.outcome is EvictionOutcome.STALE
    assert stale.pod is not None
    assert stale.pod.uid == seen.uid
    assert stale.pod.resource_version != seen.resource_version
    assert cluster.core.read_namespaced_pod("solo", cluster.namespace).metadata.deletion_timestamp is None

    # as it is now: evicted
    assert kube.evict(stale.pod).outcome is EvictionOutcome.EVICTED
    # a second drain that read it before: it is terminating, not evicted again by that drain
    again = kube.evict(stale.pod)
    assert again.outcome in (EvictionOutcome.TERMINATING, EvictionOutcome.GONE)
    assert kube.evict(seen).outcome in (EvictionOutcome.TERMINATING, EvictionOutcome.GONE)
    cluster.wait_pods(lambda pods: not pods, node=node.name)
    assert kube.evict(seen).outcome is EvictionOutcome.GONE


def test_a_terminating_pod_is_reported_terminating(kube: ClusterClient, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.bare_pod(node.name, name="slow", terminationGracePeriodSeconds=30)
    cluster.wait_running(1, node=node.name)
    [seen], _ = kube.list_pods_on_node(node.name)
    # the stand-in finishes a graceful deletion after its delay: held here by a finalizer instead
    cluster.core.patch_namespaced_pod("slow", cluster.namespace, {"metadata": {"finalizers": ["test/hold"]}})
    try:
        [held], _ = kube.list_pods_on_node(node.name)
        assert kube.evict(held).outcome is EvictionOutcome.EVICTED
        assert kube.evict(seen).outcome is EvictionOutcome.TERMINATING
        assert kube.evict(held).outcome is EvictionOutcome.TERMINATING
    finally:
        cluster.core.patch_namespaced_pod("slow", cluster.namespace, [{"op": "remove", "path": "/metadata/finalizers"}])
    cluster.wait_pods(lambda pods: not pods, node=node.name)
