"""Invariant 5: every write to a Node is pinned to its UID. A Node deleted and registered again under
the same name (a new UID) between our read and our patch never receives the write."""

from __future__ import annotations

import pytest

from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import Conflict
from tests.controlplane.cluster import TestCluster


def test_a_patch_pinned_to_a_replaced_nodes_uid_is_refused(cluster: TestCluster, kube: ClusterClient) -> None:
    info = cluster.add_node()
    before = kube.get_node(info.name)
    assert before is not None
    cluster.core.delete_node(info.name)
    cluster.add_node(name=info.name)  # re-registered: same name, new UID
    after = kube.get_node(info.name)
    assert after is not None
    assert after.uid != before.uid
    with pytest.raises(Conflict):
        kube.patch_node(info.name, uid=before.uid, unschedulable=True, annotations={"x.io/a": "b"})
    current = kube.get_node(info.name)
    assert current is not None
    assert not current.unschedulable
    assert "x.io/a" not in current.annotations
    patched = kube.patch_node(info.name, uid=after.uid, annotations={"x.io/a": "b"})
    assert patched.annotations["x.io/a"] == "b"
