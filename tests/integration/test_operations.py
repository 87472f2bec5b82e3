"""Scheduled and manual operations through functions-framework's HTTP server, on the real API server:
finished-Job cleanup, node recovery, the operator JSON API and its error paths."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

ANN = "node-drainer.io/"
Factory = Callable[..., FunctionServer]


def call(
    server: FunctionServer, body: Any, *, method: str = "POST", headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    import requests

    response = requests.request(
        method,
        server.url + "/",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=120,
    )
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


@pytest.fixture
def scheduler(server_factory: Factory, namespace: str) -> FunctionServer:
    return server_factory("on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=namespace)


@pytest.fixture
def manual(server_factory: Factory, namespace: str) -> FunctionServer:
    return server_factory("on_manual", "http", DRAINER_CLEANUP_NAMESPACES=namespace)


def job_names(cluster: TestCluster) -> set[str]:
    return {str(j.metadata.name) for j in cluster.batch.list_namespaced_job(cluster.namespace).items}


# ----------------------------------------------------------------------------------- cleanup
def test_cleanup_honours_ttls_opt_outs_and_owners(scheduler: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.finished_job(name="old-ok", finished_at=ago(hours=1, seconds=30), pod_node=node.name)
    cluster.finished_job(name="young-ok", finished_at=ago(minutes=59), pod_node=node.name)
    cluster.finished_job(name="old-failed", failed=True, finished_at=ago(hours=24, seconds=30), pod_node=node.name)
    cluster.finished_job(name="young-failed", failed=True, finished_at=ago(hours=23), pod_node=node.name)
    cluster.finished_job(name="own-ttl", finished_at=ago(hours=5), ttl_after_finished=86400)
    cluster.finished_job(name="opted-out", finished_at=ago(hours=5), annotations={f"{ANN}skip-cleanup": "true"})
    cronjob = cluster.batch.create_namespaced_cron_job(
        cluster.namespace,
        {
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "0 3 * * *",
                "suspend": True,
                "jobTemplate": {
                    "spec": {
                        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}}
                    }
                },
            },
        },
    )
    cluster.finished_job(
        name="nightly-1",
        finished_at=ago(hours=5),
        owner={
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "nightly",
            "uid": cronjob.metadata.uid,
            "controller": True,
        },
    )
    cluster.finished_job(name="skewed", finished_at=datetime.now(UTC) + timedelta(hours=1))
    cluster.job(node.name, name="running", exit_code=None)
    cluster.wait_pods(lambda pods: len(pods) == 5 and all(p.status.phase != "Pending" for p in pods), node=node.name)

    status, body = call(
        scheduler, {"action": "cleanup"}, headers={"X-CloudScheduler-ScheduleTime": "2026-10-02T03:00:00Z"}
    )
    assert status == 200, body
    [report] = body["cleanup"]
    assert report["deleted_jobs"] == 2
    assert report["complete"] is True
    assert report["kept"] == {
        "young": 2,
        "ttl_controller": 1,
        "opt_out": 1,
        "cronjob": 1,
        "clock_skew": 1,
        "running": 1,
    }
    assert job_names(cluster) == {"young-ok", "young-failed", "own-ttl", "opted-out", "nightly-1", "skewed", "running"}
    # Background propagation: the garbage collector removes the deleted Jobs' pods
    cluster.wait_pods(
        lambda pods: (
            {p.metadata.name for p in pods} >= {"young-ok-pod"}
            and not any(p.metadata.name.startswith("old-") for p in pods)
        ),
        node=node.name,
        timeout=20,
    )
    deleted = {r["job"].split("/")[1] for r in scheduler.audit_for(action="job.deleted")}
    assert deleted == {"old-ok", "old-failed"}
    skew = scheduler.wait_audit(action="job.skipped")
    assert skew["job"] == f"{cluster.namespace}/skewed"
    assert "clock skew" in skew["reason"]
    summary = scheduler.wait_audit(action="cleanup.completed")
    assert summary["schedule_time"] == "2026-10-02T03:00:00Z"
    assert summary["trigger"] == "schedule"


def test_retry_of_the_same_scheduled_run_does_no_harm(scheduler: FunctionServer, cluster: TestCluster) -> None:
    cluster.finished_job(name="old", finished_at=ago(hours=2))
    cluster.finished_job(name="new", finished_at=ago(minutes=5))
    headers = {"X-CloudScheduler-ScheduleTime": "2026-10-02T03:00:00Z", "X-CloudScheduler": "true"}
    first = call(scheduler, {"action": "all"}, headers=headers)
    second = call(scheduler, {"action": "all"}, headers=headers)
    assert first[0] == second[0] == 200
    assert first[1]["cleanup"][0]["deleted_jobs"] == 1
    assert second[1]["cleanup"][0]["deleted_jobs"] == 0
    assert job_names(cluster) == {"new"}


def test_orphaned_finished_pods_are_swept_other_pods_left(server_factory: Factory, cluster: TestCluster) -> None:
    scheduler = server_factory(
        "on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=cluster.namespace, DRAINER_ORPHAN_POD_TTL_SECONDS="0"
    )
    node = cluster.add_node()
    job = cluster.finished_job(name="gone", finished_at=ago(hours=2), pod_node=node.name)
    cluster.bare_pod(node.name, name="bare-done", exit_code=0)
    cluster.wait_pods(lambda pods: all(p.status.phase == "Succeeded" for p in pods) and len(pods) == 2, node=node.name)
    # deleting a Job with propagationPolicy=Orphan leaves its pods behind, without an owner
    cluster.batch.delete_namespaced_job(job.metadata.name, cluster.namespace, propagation_policy="Orphan")
    cluster.wait_pods(lambda pods: all(not p.metadata.owner_references for p in pods), node=node.name)
    status, body = call(scheduler, {"action": "cleanup"})
    assert status == 200, body
    assert body["cleanup"][0]["deleted_pods"] == 1
    cluster.wait_pods(lambda pods: [p.metadata.name for p in pods] == ["bare-done"], node=node.name)
    swept = scheduler.wait_audit(action="pod.deleted")
    assert swept["pod"] == f"{cluster.namespace}/gone-pod"
    assert "TTL 0 s" in swept["reason"]


def test_cleanup_paginates_over_many_jobs(server_factory: Factory, cluster: TestCluster) -> None:
    scheduler = server_factory(
        "on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=cluster.namespace, DRAINER_CLEANUP_PAGE_SIZE="7"
    )
    for i in range(40):
        cluster.finished_job(name=f"batch-{i}", finished_at=ago(hours=3))
    status, body = call(scheduler, {"action": "cleanup"})
    assert status == 200, body
    report = body["cleanup"][0]
    assert report["deleted_jobs"] == 40
    assert report["jobs_seen"] == 40  # only the included namespace is listed
    assert job_names(cluster) == set()
    assert len(scheduler.audit_for(action="job.deleted")) == 40


@pytest.fixture
def other_namespaces(admin_api: Any) -> Iterator[list[str]]:
    core = client.CoreV1Api(admin_api)
    names = [f"t-{secrets.token_hex(4)}" for _ in range(2)]
    for name in names:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield names
    for name in names:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")


def test_cleanup_reads_only_the_included_namespaces(
    server_factory: Factory, cluster: TestCluster, other_namespaces: list[str]
) -> None:
    excluded, outside = (dataclasses.replace(cluster, namespace=n) for n in other_namespaces)
    scheduler = server_factory(
        "on_schedule",
        "http",
        DRAINER_CLEANUP_NAMESPACES=f"{cluster.namespace},{excluded.namespace}",
        DRAINER_CLEANUP_EXCLUDE_NAMESPACES=excluded.namespace,
    )
    cluster.finished_job(name="in-scope", finished_at=ago(hours=3))
    excluded.finished_job(name="excluded", finished_at=ago(hours=3))
    outside.finished_job(name="outside", finished_at=ago(hours=3))
    status, body = call(scheduler, {"action": "cleanup"})
    assert status == 200, body
    report = body["cleanup"][0]
    # namespace by namespace: Jobs elsewhere are never listed, so never seen nor counted as kept
    assert (report["deleted_jobs"], report["jobs_seen"], report["kept"]) == (1, 1, {})
    assert job_names(cluster) == set()
    assert job_names(excluded) == {"excluded"}
    assert job_names(outside) == {"outside"}


def test_time_budget_ends_a_run_cleanly_and_the_next_resumes(server_factory: Factory, cluster: TestCluster) -> None:
    scheduler = server_factory(
        "on_schedule",
        "http",
        DRAINER_CLEANUP_NAMESPACES=cluster.namespace,
        DRAINER_CLEANUP_BUDGET_SECONDS="0.1",
        DRAINER_CLEANUP_CONCURRENCY="1",
        DRAINER_CLEANUP_PAGE_SIZE="5",
    )
    for i in range(150):
        cluster.finished_job(name=f"many-{i}", finished_at=ago(hours=3))
    status, body = call(scheduler, {"action": "cleanup"})
    assert status == 200, body
    first = body["cleanup"][0]
    assert first["complete"] is False
    assert 0 < first["deleted_jobs"] < 150
    assert scheduler.wait_audit(action="cleanup.partial")["severity"] == "INFO"
    total = first["deleted_jobs"]
    for _ in range(20):
        status, body = call(scheduler, {"action": "cleanup"})
        total += body["cleanup"][0]["deleted_jobs"]
        if body["cleanup"][0]["complete"]:
            break
    assert total == 150
    assert job_names(cluster) == set()


def test_dry_run_cleanup_deletes_nothing(manual: FunctionServer, cluster: TestCluster) -> None:
    cluster.finished_job(name="old", finished_at=ago(hours=2))
    status, body = call(manual, {"action": "cleanup", "dry_run": True})
    assert status == 200, body
    assert body["clusters"][0]["deleted_jobs"] == 1
    assert body["clusters"][0]["dry_run"] is True
    assert job_names(cluster) == {"old"}
    assert manual.wait_audit(action="job.deleted")["message"].startswith("would delete")


# ---------------------------------------------------------------------------------- recovery
def _cordon_by_event(
    drainer: FunctionServer, cluster: TestCluster, node: Any, kind: str = "preempted", when: datetime | None = None
) -> str:
    entry = log_entry(kind, instance=node.name, instance_id=node.instance_id, when=when)
    body, headers = delivery("binary", entry)
    assert drainer.post(body, headers).status_code in (200, 500)
    assert cluster.read_node(node.name).spec.unschedulable is True
    return str(entry["operation"]["id"])


def _our_annotations(cluster: TestCluster, name: str) -> dict[str, str]:
    return {k: v for k, v in (cluster.read_node(name).metadata.annotations or {}).items() if k.startswith(ANN)}


def test_recovery_uncordons_a_node_that_came_back(
    drainer: FunctionServer, scheduler: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn
) -> None:
    node = cluster.add_node()
    _cordon_by_event(drainer, cluster, node)
    status, body = call(scheduler, {"action": "recover"})
    assert status == 200
    assert node.name not in [c["node"] for c in body["recovered"]]  # same boot: not back yet
    assert cluster.read_node(node.name).spec.unschedulable is True
    kubelet.kill(node.name)
    kubelet.restart(node.name)
    status, body = call(scheduler, {"action": "recover"})
    change = next(c for c in body["recovered"] if c["node"] == node.name)
    assert change["action"] == "uncordon"
    assert change["result"] == "uncordoned"
    current = cluster.read_node(node.name)
    assert not current.spec.unschedulable
    assert _our_annotations(cluster, node.name) == {}
    assert scheduler.wait_audit(action="node.uncordoned", node=node.name)["cluster"] == "test"


def test_recovery_never_uncordons_a_node_cordoned_before_us(
    drainer: FunctionServer, scheduler: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn
) -> None:
    node = cluster.add_node(unschedulable=True)
    _cordon_by_event(drainer, cluster, node, kind="delete")
    kubelet.restart(node.name)
    _status, body = call(scheduler, {"action": "recover"})
    change = next(c for c in body["recovered"] if c["node"] == node.name)
    assert change["action"] == "release"
    assert "unschedulable before" in change["reason"]
    assert cluster.read_node(node.name).spec.unschedulable is True
    assert _our_annotations(cluster, node.name) == {}


def test_recovery_never_uncordons_a_node_someone_cordoned_after_us(
    drainer: FunctionServer, scheduler: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn
) -> None:
    node = cluster.add_node()
    _cordon_by_event(drainer, cluster, node, kind="delete")
    # an operator runs `kubectl uncordon`, then `kubectl cordon`
    cluster.core.patch_node(node.name, {"spec": {"unschedulable": False}}, field_manager="kubectl-uncordon")
    cluster.core.patch_node(node.name, {"spec": {"unschedulable": True}}, field_manager="kubectl-cordon")
    kubelet.restart(node.name)
    _status, body = call(scheduler, {"action": "recover"})
    change = next(c for c in body["recovered"] if c["node"] == node.name)
    assert change["action"] == "release"
    assert "kubectl-cordon" in change["reason"]
    assert cluster.read_node(node.name).spec.unschedulable is True


def test_recovery_only_forgets_a_node_someone_already_uncordoned(
    drainer: FunctionServer, scheduler: FunctionServer, cluster: TestCluster, kubelet: KubeletStandIn
) -> None:
    node = cluster.add_node()
    _cordon_by_event(drainer, cluster, node, kind="delete")
    cluster.core.patch_node(node.name, {"spec": {"unschedulable": False}}, field_manager="kubectl-uncordon")
    kubelet.restart(node.name)
    _status, body = call(scheduler, {"action": "recover"})
    change = next(c for c in body["recovered"] if c["node"] == node.name)
    assert change["action"] == "release"
    assert not cluster.read_node(node.name).spec.unschedulable
    assert _our_annotations(cluster, node.name) == {}


def test_recovery_finishes_a_fenced_force_cleanup(
    drainer: FunctionServer,
    scheduler: FunctionServer,
    cluster: TestCluster,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> None:
    victim = cluster.add_node(pool="recover-pool")
    spare = cluster.add_node(pool="recover-pool", unschedulable=True)
    cluster.statefulset(1, node_selector={"cloud.google.com/gke-nodepool": "recover-pool"}, name="db")
    [old] = cluster.wait_running(1, label_selector="app=db")
    assert old.spec.node_name == victim.name
    cluster.core.patch_node(spare.name, {"spec": {"unschedulable": False}})
    # the VM stops; the node-lifecycle controller has not noticed yet, so the node still says Ready
    kubelet.kill(victim.name, mark_unknown=False)
    compute_api.set_status(victim.name, "STOPPING")  # not off yet
    event = _cordon_by_event(drainer, cluster, victim, when=cluster.after_last_heartbeat(victim.name))
    done = drainer.wait_audit(action="drain.incomplete", event_id=event)
    assert done["verified_down"] is False  # fencing held: nothing forced while Ready and STOPPING
    kubelet.mark_unknown(victim.name)  # ... and now it has, and the VM is off
    compute_api.set_status(victim.name, "TERMINATED")
    _status, body = call(scheduler, {"action": "recover"})
    change = next(c for c in body["recovered"] if c["node"] == victim.name)
    assert change["action"] == "force_cleanup"
    assert change["result"] == "completed"
    forced = scheduler.wait_audit(action="pod.force_deleted")
    assert forced["pod"] == f"{cluster.namespace}/db-0"
    [new] = cluster.wait_pods(
        lambda pods: len(pods) == 1 and pods[0].metadata.uid != old.metadata.uid and pods[0].status.phase == "Running",
        label_selector="app=db",
    )
    assert new.spec.node_name == spare.name


# ----------------------------------------------------------------------------------- manual
def test_manual_drain_dry_run_then_real(manual: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 2, name="web")
    cluster.wait_running(2, node=node.name)
    status, body = call(manual, {"action": "drain", "node": node.name, "dry_run": True})
    assert status == 200, body
    assert body["outcome"] == "dry_run"
    assert body["counts"] == {"would_evict": 2}
    assert not cluster.read_node(node.name).spec.unschedulable
    status, body = call(manual, {"action": "drain", "cluster": "test", "node": node.name, "timeout_seconds": 20})
    assert status == 200, body
    assert body["outcome"] == "completed"
    assert sorted(p["result"] for p in body["pods"]) == ["evicted", "evicted"]
    assert cluster.read_node(node.name).metadata.annotations[f"{ANN}reason"] == "manual"
    record = manual.wait_audit(action="drain.completed", node=node.name)
    assert record["trigger"] == "manual"


def test_manual_status_and_uncordon(drainer: FunctionServer, manual: FunctionServer, cluster: TestCluster) -> None:
    ours = cluster.add_node()
    before_us = cluster.add_node(unschedulable=True)
    theirs = cluster.add_node(unschedulable=True)
    event = _cordon_by_event(drainer, cluster, ours)
    _cordon_by_event(drainer, cluster, before_us, kind="delete")
    status, body = call(manual, {"action": "status"})
    assert status == 200
    rows = {r["node"]: r for r in body["nodes"]}
    assert rows[ours.name]["reason"] == "preempted"
    assert rows[ours.name]["event_id"] == event
    assert rows[ours.name]["cordoned_at"]
    assert rows[ours.name]["next"] == "wait"
    assert rows[before_us.name]["was_unschedulable"] is True
    assert theirs.name not in rows

    assert call(manual, {"action": "uncordon", "node": theirs.name})[0] == 409
    code, body = call(manual, {"action": "uncordon", "node": before_us.name})
    assert code == 409
    assert "force" in body["error"]
    code, body = call(manual, {"action": "uncordon", "node": ours.name, "dry_run": True})
    assert code == 200
    assert cluster.read_node(ours.name).spec.unschedulable is True
    code, body = call(manual, {"action": "uncordon", "node": ours.name})
    assert code == 200
    assert body["result"] == "uncordoned"
    assert not cluster.read_node(ours.name).spec.unschedulable
    code, body = call(manual, {"action": "uncordon", "node": before_us.name, "force": True})
    assert code == 200
    assert not cluster.read_node(before_us.name).spec.unschedulable


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param(b"{not json", 400, "not valid JSON", id="invalid-json"),
        pytest.param(b"", 400, "send a JSON object", id="empty-body"),
        pytest.param(b"[1, 2]", 400, "JSON object", id="not-an-object"),
        pytest.param(
            {"action": "reboot"}, 400, "action must be one of drain, uncordon, cleanup, status", id="unknown-action"
        ),
        pytest.param({"node": "x"}, 400, "action must be one of", id="no-action"),
        pytest.param({"action": "drain"}, 400, "node is required", id="no-node"),
        pytest.param({"action": "drain", "node": "Bad_Name"}, 400, "not a DNS-1123 name", id="bad-node-name"),
        pytest.param({"action": "drain", "node": "a" * 254}, 400, "not a DNS-1123 name", id="node-name-too-long"),
        pytest.param(
            {"action": "drain", "node": "n1", "cluster": "nope"}, 400, "unknown cluster 'nope'", id="unknown-cluster"
        ),
        pytest.param(
            {"action": "status", "dry_run": "yes"}, 400, "dry_run must be true or false", id="dry-run-not-bool"
        ),
        pytest.param({"action": "status", "nodes": ["x"]}, 400, "unknown fields ['nodes']", id="unknown-field"),
        pytest.param({"action": "drain", "node": "n1", "timeout_seconds": 0}, 400, "timeout_seconds", id="bad-timeout"),
        pytest.param(
            {"action": "drain", "node": "n1", "timeout_seconds": 600},
            400,
            "from 1 to 510: the function runs at most 540 s (DRAINER_FUNCTION_TIMEOUT_SECONDS)",
            id="timeout-past-the-function-timeout",
        ),
        pytest.param({"action": "drain", "node": "gke-no-such-node"}, 404, "does not exist", id="no-such-node"),
    ],
)
def test_manual_api_errors_say_what_to_fix(manual: FunctionServer, body: Any, status: int, message: str) -> None:
    code, answer = call(manual, body)
    assert code == status, answer
    assert message in answer["error"]
    assert manual.wait_audit(action="http.rejected", status=status)["trigger"] == "manual"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405(manual: FunctionServer, scheduler: FunctionServer, method: str) -> None:
    for server in (manual, scheduler):
        code, answer = call(server, {"action": "status"}, method=method)
        assert code == 405
        assert answer["error"] == f"use POST, not {method}"


def test_scheduler_rejects_unknown_actions(scheduler: FunctionServer) -> None:
    code, answer = call(scheduler, {"action": "drain"})
    assert code == 400
    assert "cleanup, recover, all" in answer["error"]


def test_unreachable_cluster_answers_503(server_factory: Factory, control_plane: ControlPlane) -> None:
    from tests.controlplane.harness import free_port
    from tests.support.server import cluster_entry

    dead = cluster_entry(control_plane, name="dead", endpoint=f"https://127.0.0.1:{free_port()}")
    server = server_factory("on_manual", "http", clusters=[dead])
    code, answer = call(server, {"action": "status"})
    assert code == 503
    assert "try again" in answer["error"]


def test_scheduled_run_goes_on_past_an_unreachable_cluster_and_reports_each(
    server_factory: Factory, control_plane: ControlPlane, cluster: TestCluster
) -> None:
    from tests.controlplane.harness import free_port
    from tests.support.server import cluster_entry

    dead = cluster_entry(control_plane, name="dead", endpoint=f"https://127.0.0.1:{free_port()}")
    live = cluster_entry(control_plane, name="live")
    scheduler = server_factory(
        "on_schedule",
        "http",
        clusters=[dead, live],
        DRAINER_CLEANUP_NAMESPACES=cluster.namespace,
        DRAINER_FUNCTION_TIMEOUT_SECONDS="120",
    )
    cluster.finished_job(name="old", finished_at=ago(hours=2))
    status, body = call(scheduler, {"action": "all"})
    assert status == 503, body  # Cloud Scheduler sees the failure and retries; the run is safe to repeat
    assert body["clusters"][0]["cluster"] == "dead"
    assert body["clusters"][0]["result"] == "failed"
    assert body["clusters"][0]["error"]
    assert body["clusters"][1] == {"cluster": "live", "result": "ok"}
    assert [r["cluster"] for r in body["cleanup"]] == ["live"]
    assert body["cleanup"][0]["deleted_jobs"] == 1
    assert job_names(cluster) == set()
    assert scheduler.wait_audit(action="cluster.unreachable", cluster="dead")["severity"] == "WARNING"
    assert scheduler.wait_audit(action="cleanup.completed", cluster="live")["deleted_jobs"] == 1
    assert scheduler.wait_audit(action="http.failed", status=503)["failed_clusters"] == ["dead"]


def test_scheduled_cleanup_shares_the_run_deadline(server_factory: Factory, cluster: TestCluster) -> None:
    # a 60 s function keeps 30 s to report: the cleanup budget (300 s configured) shrinks to what is left
    scheduler = server_factory(
        "on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=cluster.namespace, DRAINER_FUNCTION_TIMEOUT_SECONDS="60"
    )
    cluster.finished_job(name="old", finished_at=ago(hours=2))
    status, body = call(scheduler, {"action": "cleanup"})
    assert status == 200, body
    assert body["clusters"] == [{"cluster": "test", "result": "ok"}]
    assert body["cleanup"][0]["complete"] is True
    assert body["cleanup"][0]["duration_seconds"] < 30
