"""Two clusters on two separate real control planes (two API servers, two etcds, two stand-ins), one
function configured with both: events go to the cluster that owns the node, and one plane stopped
does not stop the other."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.controlplane.cluster import NodeInfo, TestCluster
from tests.controlplane.harness import ControlPlane
from tests.controlplane.stack import PlaneStack
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer, cluster_entry

ANN = "node-drainer.io/"
CENTRAL_ZONE = "us-central1-a"


@pytest.fixture(scope="module")
def central(control_plane: ControlPlane) -> Iterator[PlaneStack]:
    """The second plane. It knows the session plane's drainer tokens: one Google identity (the fake
    metadata server's tokens) for both clusters, as one service account is in GKE; its own RBAC."""
    stack = PlaneStack(drainer_identities=control_plane.drainer_identities).start()
    yield stack
    stack.stop()


@pytest.fixture
def central_cluster(central: PlaneStack, compute_api: FakeComputeApi) -> Iterator[TestCluster]:
    with central.cluster(compute=compute_api) as helper:
        yield helper


@pytest.fixture(scope="module")
def routed(
    server_factory: Callable[..., FunctionServer], control_plane: ControlPlane, central: PlaneStack
) -> FunctionServer:
    """Both clusters, in different regions: an instance's zone says which cluster may own it."""
    return server_factory(
        clusters=[
            cluster_entry(central.plane, name="central", location="us-central1"),
            cluster_entry(control_plane, name="west", location="europe-west4"),
        ]
    )


@pytest.fixture(scope="module")
def same_region(
    server_factory: Callable[..., FunctionServer], control_plane: ControlPlane, central: PlaneStack
) -> FunctionServer:
    """Both clusters in one region: both are asked who owns the node."""
    return server_factory(
        clusters=[
            cluster_entry(central.plane, name="central", location="europe-west4"),
            cluster_entry(control_plane, name="west", location="europe-west4"),
        ]
    )


def event_id(entry: dict[str, Any]) -> str:
    return str(entry["operation"]["id"])


def send(server: FunctionServer, node: NodeInfo) -> tuple[dict[str, Any], int]:
    entry = log_entry("preempted", instance=node.name, zone=node.zone, instance_id=node.instance_id)
    response = server.post(*delivery("binary", entry))
    return entry, response.status_code


def drained(server: FunctionServer, helper: TestCluster, node: NodeInfo, entry: dict[str, Any], name: str) -> None:
    done = server.wait_audit(action="drain.completed", event_id=event_id(entry))
    assert done["cluster"] == name
    assert done["node"] == node.name
    assert done["counts"] == {"evicted": 2}
    current = helper.read_node(node.name)
    assert current.spec.unschedulable is True
    assert current.metadata.annotations[f"{ANN}event-id"] == event_id(entry)
    helper.wait_pods(lambda pods: not [p for p in pods if not p.metadata.deletion_timestamp], node=node.name)


def test_the_planes_are_separate(cluster: TestCluster, central_cluster: TestCluster) -> None:
    """What this module proves needs two API servers: a node of one is unknown to the other."""
    west = cluster.add_node()
    east = central_cluster.add_node(zone=CENTRAL_ZONE)
    assert not [n for n in central_cluster.core.list_node().items if n.metadata.name == west.name]
    assert not [n for n in cluster.core.list_node().items if n.metadata.name == east.name]


@pytest.mark.parametrize("server_name", ["routed", "same_region"])
def test_events_go_to_the_cluster_that_owns_the_node(
    request: pytest.FixtureRequest,
    server_name: str,
    cluster: TestCluster,
    central_cluster: TestCluster,
) -> None:
    server: FunctionServer = request.getfixturevalue(server_name)
    zone = CENTRAL_ZONE if server_name == "routed" else "europe-west4-c"
    west = cluster.add_node()
    east = central_cluster.add_node(zone=zone)
    cluster.replicaset(west.name, 2)
    central_cluster.replicaset(east.name, 2)
    cluster.wait_running(2, node=west.name)
    central_cluster.wait_running(2, node=east.name)

    west_entry, status = send(server, west)
    assert status == 200
    drained(server, cluster, west, west_entry, "west")
    east_entry, status = send(server, east)
    assert status == 200
    drained(server, central_cluster, east, east_entry, "central")
    # each drain touched its own cluster only: the other node is as it was
    assert cluster.read_node(west.name).metadata.annotations[f"{ANN}event-id"] == event_id(west_entry)
    assert central_cluster.read_node(east.name).metadata.annotations[f"{ANN}event-id"] == event_id(east_entry)
    for entry in (west_entry, east_entry):
        assert not server.audit_for(action="cluster.unreachable", event_id=event_id(entry))


@pytest.mark.parametrize("server_name", ["routed", "same_region"])
def test_a_stopped_plane_does_not_stop_the_other_and_its_events_are_retried(
    request: pytest.FixtureRequest,
    server_name: str,
    central: PlaneStack,
    cluster: TestCluster,
    central_cluster: TestCluster,
) -> None:
    server: FunctionServer = request.getfixturevalue(server_name)
    zone = CENTRAL_ZONE if server_name == "routed" else "europe-west4-c"
    east = central_cluster.add_node(zone=zone)
    west = cluster.add_node()
    cluster.replicaset(west.name, 2)
    cluster.wait_running(2, node=west.name)
    central.plane.stop_apiserver()
    try:
        # the healthy plane's node drains
        west_entry, status = send(server, west)
        assert status == 200
        drained(server, cluster, west, west_entry, "west")
        asked = [r["cluster"] for r in server.audit_for(action="cluster.unreachable", event_id=event_id(west_entry))]
        # routed: the us-central1 cluster cannot own a europe-west4 instance, so it is not even asked
        assert asked == ([] if server_name == "routed" else ["central"])

        # the stopped plane's node: not acknowledged (Pub/Sub redelivers), audited unreachable
        east_entry, status = send(server, east)
        assert status == 500
        record = server.wait_audit(action="cluster.unreachable", event_id=event_id(east_entry))
        assert record["cluster"] == "central"
        assert not server.audit_for(action="drain.started", event_id=event_id(east_entry))
    finally:
        central.plane.start_apiserver()
    # once the plane is back, the redelivery of the same event drains its node
    response = server.post(*delivery("binary", east_entry))
    assert response.status_code == 200, response.text
    done = server.wait_audit(action="drain.completed", event_id=event_id(east_entry))
    assert done["cluster"] == "central"
    assert central_cluster.read_node(east.name).spec.unschedulable is True
