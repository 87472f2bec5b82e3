"""Single-flight scheduled runs on the real control plane, through functions-framework's HTTP server:
the schedule Lease (kube-system/gke-node-drainer-schedule) taken, respected, taken over and released."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client import ApiException

from functions.decisions import policy
from functions.decisions.lease import LEASE_NAME, LEASE_NAMESPACE, microtime
from functions.decisions.names import COMPONENT
from tests.controlplane.cluster import TestCluster, wait_until
from tests.support.compute import FakeComputeApi
from tests.support.server import FunctionServer

Factory = Callable[..., FunctionServer]
KEY = f"{LEASE_NAMESPACE}/{LEASE_NAME}"
SLOW_VM_SECONDS = 4.0  # each instances.get of a held node answers this late (the client waits 5 s)


def call(server: FunctionServer, body: dict[str, Any]) -> tuple[int, Any]:
    response = requests.post(
        server.url + "/", data=json.dumps(body), headers={"Content-Type": "application/json"}, timeout=120
    )
    return response.status_code, response.json()


@pytest.fixture
def leases(admin_api: client.ApiClient) -> Iterator[client.CoordinationV1Api]:
    """The schedule Lease absent before and after the test (one Lease for the whole control plane)."""
    api = client.CoordinationV1Api(admin_api)

    def delete() -> None:
        with contextlib.suppress(ApiException):
            api.delete_namespaced_lease(LEASE_NAME, LEASE_NAMESPACE)

    delete()
    yield api
    delete()


def lease_spec(api: client.CoordinationV1Api) -> dict[str, Any]:
    body = api.api_client.sanitize_for_serialization(api.read_namespaced_lease(LEASE_NAME, LEASE_NAMESPACE))
    return dict(body["spec"])


def put_lease(api: client.CoordinationV1Api, *, holder: str, renewed: datetime, transitions: int = 0) -> Any:
    """The Lease as another instance left it (its clock written as MicroTime)."""
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 60,
            "acquireTime": microtime(renewed),
            "renewTime": microtime(renewed),
            "leaseTransitions": transitions,
        },
    }
    return api.create_namespaced_lease(LEASE_NAMESPACE, body)


@pytest.fixture
def scheduler(server_factory: Factory, namespace: str) -> FunctionServer:
    return server_factory("on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=namespace)


def job_names(cluster: TestCluster) -> set[str]:
    return {str(j.metadata.name) for j in cluster.batch.list_namespaced_job(cluster.namespace).items}


def assert_released(api: client.CoordinationV1Api, *, transitions: int) -> None:
    spec = lease_spec(api)
    assert not spec.get("holderIdentity"), spec
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == transitions
    renewed = datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    assert datetime.now(UTC) - renewed < timedelta(seconds=30)


def test_a_run_holds_the_lease_and_releases_it_at_the_end(
    scheduler: FunctionServer, cluster: TestCluster, leases: client.CoordinationV1Api
) -> None:
    cluster.finished_job(name="old", finished_at=datetime.now(UTC) - timedelta(hours=2))
    status, body = call(scheduler, {"action": "all"})
    assert status == 200, body
    assert body["clusters"] == [{"cluster": "test", "result": "ok"}]
    assert body["cleanup"][0]["deleted_jobs"] == 1
    assert_released(leases, transitions=0)  # created by this run, released by it
    status, body = call(scheduler, {"action": "recover"})  # the next run takes it again
    assert status == 200, body
    assert body["clusters"] == [{"cluster": "test", "result": "ok"}]
    assert_released(leases, transitions=1)
    assert not scheduler.audit_for(action="schedule.overlap")


def test_a_live_holder_makes_the_run_answer_overlap_at_once(
    scheduler: FunctionServer, cluster: TestCluster, leases: client.CoordinationV1Api
) -> None:
    cluster.finished_job(name="old", finished_at=datetime.now(UTC) - timedelta(hours=2))
    held = put_lease(leases, holder="gke-node-drainer-other-instance", renewed=datetime.now(UTC))
    status, body = call(scheduler, {"action": "all"})
    assert status == 200, body
    assert body["clusters"] == [
        {"cluster": "test", "result": "overlap", "holder": "gke-node-drainer-other-instance", "lease": KEY}
    ]
    assert body["recovered"] == []
    assert body["cleanup"] == []
    assert job_names(cluster) == {"old"}  # the cluster was left to the holder
    record = scheduler.wait_audit(action="schedule.overlap")
    assert record["holder"] == "gke-node-drainer-other-instance"
    assert record["lease"] == KEY
    assert record["cluster"] == "test"
    assert record["trigger"] == "schedule"
    now = leases.read_namespaced_lease(LEASE_NAME, LEASE_NAMESPACE)
    assert now.metadata.resource_version == held.metadata.resource_version  # neither taken nor released
    assert not scheduler.audit_for(action="cleanup.completed")


def test_a_lease_left_by_a_crashed_run_is_taken_over(
    scheduler: FunctionServer, cluster: TestCluster, leases: client.CoordinationV1Api
) -> None:
    cluster.finished_job(name="old", finished_at=datetime.now(UTC) - timedelta(hours=2))
    put_lease(
        leases, holder="gke-node-drainer-crashed", renewed=datetime.now(UTC) - timedelta(minutes=10), transitions=2
    )
    status, body = call(scheduler, {"action": "all"})
    assert status == 200, body
    assert body["clusters"] == [{"cluster": "test", "result": "ok"}]
    assert job_names(cluster) == set()
    assert_released(leases, transitions=3)  # one more holder, then released
    assert not scheduler.audit_for(action="schedule.overlap")


def _held_by_us(cluster: TestCluster, node: Any) -> None:
    """A node our drain cordoned and that has not come back: recovery asks Compute Engine about its
    VM on every run and waits."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {
        policy.CORDONED_BY: COMPONENT,
        policy.CORDON_REASON: "delete",
        policy.CORDON_EVENT_ID: f"test-{node.name}",
        policy.CORDON_EVENT_TIME: now,
        policy.CORDONED_AT: now,
        policy.CORDON_BOOT_ID: node.boot_id,
        policy.WAS_UNSCHEDULABLE: "false",
        policy.CORDON_INSTANCE_ID: node.instance_id,
    }
    cluster.core.patch_node(node.name, {"metadata": {"annotations": annotations}, "spec": {"unschedulable": True}})


def test_two_overlapping_runs_the_second_answers_while_the_first_works(
    server_factory: Factory,
    cluster: TestCluster,
    compute_api: FakeComputeApi,
    leases: client.CoordinationV1Api,
) -> None:
    first = server_factory("on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=cluster.namespace)
    second = server_factory("on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=cluster.namespace)
    nodes = [cluster.add_node(pool="lease-pool") for _ in range(2)]
    for node in nodes:
        _held_by_us(cluster, node)
        compute_api.slow(node.name, SLOW_VM_SECONDS)
    asked = lambda: sum(len(compute_api.requests_for(n.name)) for n in nodes)  # noqa: E731
    try:
        answer: dict[str, Any] = {}

        def run_first() -> None:
            answer["status"], answer["body"] = call(first, {"action": "all"})

        worker = threading.Thread(target=run_first)
        worker.start()
        # the first run holds the Lease and is in its recovery, waiting on Compute Engine
        assert wait_until(lambda: asked() >= 1, timeout=30)
        holder = lease_spec(leases)["holderIdentity"]
        assert holder.startswith(f"{COMPONENT}-")
        started = time.monotonic()
        status, body = call(second, {"action": "all"})
        took = time.monotonic() - started
        assert worker.is_alive(), "the first run ended before the second answered"
        assert status == 200, body
        assert body["clusters"] == [{"cluster": "test", "result": "overlap", "holder": holder, "lease": KEY}]
        assert took < SLOW_VM_SECONDS  # at once: it did not wait for the first run, nor ask about a VM
        assert asked() <= len(nodes)  # only the first run's questions
        overlap = second.wait_audit(action="schedule.overlap")
        assert overlap["holder"] == holder
        assert overlap["lease"] == KEY
        worker.join(60)
        assert answer["status"] == 200, answer
        assert answer["body"]["clusters"] == [{"cluster": "test", "result": "ok"}]
        held = {c["node"] for c in answer["body"]["recovered"]} | {
            r["node"] for r in first.audit_for(action="node.held")
        }
        assert {n.name for n in nodes} <= held
        assert asked() == len(nodes)
        assert_released(leases, transitions=0)
        assert not first.audit_for(action="schedule.overlap")
    finally:
        for node in nodes:
            compute_api.clear(node.name)
