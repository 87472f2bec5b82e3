"""The API server stopped in the middle of a drain and started again, on a control plane of this
module's own (its stand-ins and function server too), so that the other tests never see the outage."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.controlplane.cluster import NodeInfo, TestCluster, wait_until
from tests.controlplane.metadata import FakeMetadataServer
from tests.controlplane.stack import PlaneStack
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import KINDS, delivery, log_entry
from tests.support.server import FunctionServer, cluster_entry

ANN = "node-drainer.io/"
POOL_LABEL = "cloud.google.com/gke-nodepool"
DEADLINE = 10  # of a "delete" drain in this module's function


@pytest.fixture(scope="module")
def stack() -> Iterator[PlaneStack]:
    stack = PlaneStack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def function(
    stack: PlaneStack, compute_api: FakeComputeApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    plane = stack.plane
    metadata = FakeMetadataServer(
        project=plane.project, email=plane.drainer_user, tokens=[i.token for i in plane.drainer_identities]
    ).start()
    settings = {
        "DRAINER_CLUSTERS": json.dumps([cluster_entry(plane, name="outage")]),
        **metadata.environ(),
        "DRAINER_COMPUTE_API_ENDPOINT": compute_api.url,
        **{f"DRAINER_DEADLINE_{k.upper()}": "6" for k in KINDS},
        "DRAINER_DEADLINE_DELETE": str(DEADLINE),
    }
    log = tmp_path_factory.mktemp("outage") / "on_node_event.log"
    server = FunctionServer(target="on_node_event", signature="cloudevent", env=settings, log_path=log)
    yield server
    server.stop()
    metadata.stop()


@pytest.fixture
def cluster(stack: PlaneStack, compute_api: FakeComputeApi) -> Iterator[TestCluster]:
    with stack.cluster(compute=compute_api) as helper:
        yield helper


def event_id(entry: dict[str, Any]) -> str:
    return str(entry["operation"]["id"])


def heartbeat(cluster: TestCluster, name: str) -> datetime:
    ready = next(c for c in cluster.read_node(name).status.conditions if c.type == "Ready")
    moment: datetime = ready.last_heartbeat_time
    return moment


def _ready_on(cluster: TestCluster, app: str, node: str) -> int:
    return sum(
        1
        for p in cluster.pods(label_selector=f"app={app}")
        if p.spec.node_name == node and p.status.phase == "Running" and not p.metadata.deletion_timestamp
    )


def test_an_outage_in_the_middle_of_a_drain_fails_the_delivery_and_the_redelivery_completes_it(
    stack: PlaneStack, function: FunctionServer, cluster: TestCluster
) -> None:
    plane = stack.plane
    pool = f"outage-{cluster.namespace}"
    victim: NodeInfo = cluster.add_node(pool=pool)
    spare = cluster.add_node(pool=pool, unschedulable=True)
    rs = cluster.replicaset(None, 3, name="held", node_selector={POOL_LABEL: pool})
    app = rs.metadata.labels["app"]
    cluster.bare_pod(victim.name, name="bare")
    cluster.wait_running(4, node=victim.name)
    # the budget holds the drain open: the set's pods are refused until it is relaxed
    pdb = cluster.pdb({"app": app}, min_available=3, name="held-pdb", expected_pods=3)
    cluster.core.patch_node(spare.name, {"spec": {"unschedulable": False}})

    entry = log_entry("delete", instance=victim.name, instance_id=victim.instance_id)
    eid = event_id(entry)
    body = delivery("binary", entry, message_id="outage-1")
    first: list[requests.Response] = []
    sender = threading.Thread(target=lambda: first.append(function.post(*body)), daemon=True)
    sender.start()
    # in the middle of the drain: cordoned, the bare pod evicted and gone, the set's pods refused
    function.wait_audit(action="node.cordoned", event_id=eid)
    function.wait_audit(action="pod.blocked", event_id=eid)
    assert function.wait_audit(action="pod.evicted", event_id=eid)["pod"] == f"{cluster.namespace}/bare"
    cluster.wait_pods(lambda pods: not [p for p in pods if p.metadata.name == "bare"], node=victim.name)

    plane.stop_apiserver()
    try:
        sender.join(timeout=DEADLINE + 60)
        assert not sender.is_alive()
        # the outage outlasted the drain's deadline: the delivery fails, for Pub/Sub to redeliver it
        assert first[0].status_code == 500, first[0].text
        incomplete = function.wait_audit(action="drain.incomplete", event_id=eid)
        assert incomplete["counts"] == {"evicted": 1, "remaining": 3}, incomplete
        assert incomplete["blocked"] == []  # left because the API server was away, not because of the budget
    finally:
        plane.start_apiserver()
    restarted = datetime.now(UTC).replace(microsecond=0)

    # the stand-ins came through the outage: heartbeats resume, pods still start and finish
    assert wait_until(lambda: heartbeat(cluster, spare.name) > restarted, timeout=30)
    assert wait_until(lambda: heartbeat(cluster, victim.name) > restarted, timeout=30)
    assert all(t.is_alive() for t in stack.kubelet._threads), [t.name for t in stack.kubelet._threads]
    # the node-lifecycle controller flipped Ready during the outage: Ready again since after the event,
    # the same boot (an outage is not a new incarnation, and must not make the redelivery stale)
    stack.kubelet.flap(victim.name)
    ready = next(c for c in cluster.read_node(victim.name).status.conditions if c.type == "Ready")
    assert ready.status == "True"
    assert ready.last_transition_time > datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))

    # relaxed, as an operator would (a budget is not the drainer's to override); then Pub/Sub redelivers
    relaxed = cluster.policy.patch_namespaced_pod_disruption_budget(
        pdb.metadata.name, cluster.namespace, {"spec": {"minAvailable": 2}}
    )

    def allows_one() -> bool:
        status = cluster.policy.read_namespaced_pod_disruption_budget(pdb.metadata.name, cluster.namespace).status
        allowed: int = status.disruptions_allowed or 0
        return bool(status.observed_generation == relaxed.metadata.generation and allowed >= 1)

    assert wait_until(allows_one, timeout=60), cluster.policy.read_namespaced_pod_disruption_budget(
        pdb.metadata.name, cluster.namespace
    ).status
    response = function.post(*body)
    assert response.status_code == 200, response.text
    assert not function.audit_for(action="event.stale", event_id=eid)
    done = function.wait_audit(action="drain.completed", event_id=eid)
    assert done["counts"] == {"evicted": 3}, done
    # nothing lost, nothing twice: one cordon, every pod gone from the node, the set whole elsewhere
    assert len(function.audit_for(action="node.cordoned", event_id=eid)) == 1
    node = cluster.read_node(victim.name)
    assert node.spec.unschedulable is True
    assert node.metadata.annotations[f"{ANN}event-id"] == eid
    cluster.wait_pods(lambda pods: not pods, node=victim.name, timeout=30)
    cluster.wait_running(3, label_selector=f"app={app}")
    assert _ready_on(cluster, app, spare.name) == 3
    evicted = [r["pod_uid"] for r in function.audit_for(action="pod.evicted", event_id=eid)]
    assert len(evicted) == len(set(evicted)) == 4


def test_a_pod_deletion_the_outage_interrupted_is_still_finalized(
    stack: PlaneStack, cluster: TestCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The kubelet stand-in keeps the work an outage interrupted (a real kubelet retries too): without
    that, a pod evicted just before an outage would stay terminating and no redelivery could finish."""
    node = cluster.add_node()
    pod = cluster.bare_pod(node.name, name="slow")
    cluster.wait_running(1, node=node.name)
    caplog.set_level(logging.WARNING, logger="tests.controlplane.kubelet")
    stack.kubelet.deletion_delay = 3.0
    try:
        cluster.core.delete_namespaced_pod("slow", cluster.namespace)
        # the stand-in saw the deletion and will finalize it in 3 s: the API server is gone by then
        assert wait_until(lambda: stack.kubelet.handled(pod.metadata.uid, "finalize"), timeout=30)
        stack.plane.stop_apiserver()
        # the stand-in's finalization (its only pod action due) met the stopped API server
        assert wait_until(lambda: any(r.funcName == "_guard" for r in caplog.records), timeout=30)
    finally:
        stack.plane.start_apiserver()
        stack.kubelet.deletion_delay = 0.2
    cluster.wait_pods(lambda pods: not [p for p in pods if p.metadata.uid == pod.metadata.uid], timeout=30)
    assert all(t.is_alive() for t in stack.kubelet._threads), [t.name for t in stack.kubelet._threads]
