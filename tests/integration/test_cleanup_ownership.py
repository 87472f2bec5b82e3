"""Invariant 10 on the real API server, through functions-framework's HTTP server: the finished-Job
cleanup deletes only Jobs with no controller (or a CronJob's, when enabled). A finished Job that
another controller owns, or whose spec.managedBy names another controller, stays with its pods,
and the report counts it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from tests.controlplane.cluster import TestCluster
from tests.support.server import FunctionServer

REMOTE = "example.com/remote-dispatcher"  # a controller that is not the Job controller (as Kueue's MultiKueue)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def remote_finished_job(cluster: TestCluster, *, name: str, finished_at: datetime) -> Any:
    """A Job with ``spec.managedBy`` naming another controller: the Job controller never syncs it,
    so its status is written here, as that controller would write it (spec.managedBy is immutable)."""
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": cluster.namespace},
        "spec": {
            "managedBy": REMOTE,
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}},
        },
    }
    job = cluster.batch.create_namespaced_job(cluster.namespace, body)
    assert job.spec.managed_by == REMOTE, "this API server ignores spec.managedBy"
    when = stamp(finished_at)
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": when, "lastProbeTime": when, "reason": "Remote"}
        for kind in ("SuccessCriteriaMet", "Complete")
    ]
    status = {
        "startTime": stamp(finished_at - timedelta(minutes=5)),
        "completionTime": when,
        "succeeded": 1,
        "conditions": conditions,
    }
    return cluster.batch.patch_namespaced_job_status(name, cluster.namespace, {"status": status})


def job_pod(cluster: TestCluster, job: Any, node: str) -> Any:
    """A finished pod of ``job`` (controller reference and the Job controller's labels)."""
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job.metadata.name,
        "uid": job.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = {"batch.kubernetes.io/controller-uid": job.metadata.uid, "batch.kubernetes.io/job-name": job.metadata.name}
    return cluster.bare_pod(node, name=f"{job.metadata.name}-pod", labels=labels, owner=owner, exit_code=0)


def test_jobs_of_other_controllers_stay_with_their_pods_and_are_counted(
    server_factory: Callable[..., FunctionServer], cluster: TestCluster
) -> None:
    # the orphan sweep at its most eager: a finished pod whose Job is gone goes at once
    scheduler = server_factory(
        "on_schedule", "http", DRAINER_CLEANUP_NAMESPACES=cluster.namespace, DRAINER_ORPHAN_POD_TTL_SECONDS="0"
    )
    node = cluster.add_node()
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    # a real owner object (the garbage collector deletes dependents whose owner does not exist),
    # referenced as a controller: a kind that is not CronJob, as a JobSet or an Argo Workflow would be
    trainer = cluster.core.create_namespaced_config_map(cluster.namespace, {"metadata": {"name": "trainer"}})
    owned = cluster.finished_job(
        name="owned",
        finished_at=long_ago,
        pod_node=node.name,
        owner={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "trainer",
            "uid": trainer.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        },
    )
    remote = remote_finished_job(cluster, name="remote", finished_at=long_ago)
    job_pod(cluster, remote, node.name)
    cluster.finished_job(name="plain", finished_at=long_ago, pod_node=node.name)
    cluster.wait_pods(lambda pods: len(pods) == 3 and all(p.status.phase == "Succeeded" for p in pods), node=node.name)

    response = requests.post(
        scheduler.url + "/",
        data=json.dumps({"action": "cleanup"}),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    [report] = response.json()["cleanup"]
    assert report["deleted_jobs"] == 1, json.dumps(report)
    assert report["deleted_pods"] == 0
    assert report["skipped_foreign"] == 2
    assert report["kept"] == {"foreign": 2}
    assert sorted(report["foreign"]) == [
        f"{cluster.namespace}/owned: controlled by ConfigMap trainer (v1): that controller deletes it when it is done",
        f"{cluster.namespace}/remote: spec.managedBy is {REMOTE}: that controller manages the Job, "
        "not the Job controller",
    ]
    # the ordinary Job's pod goes with it (Background propagation); the others' stay
    cluster.wait_pods(lambda pods: "plain-pod" not in {p.metadata.name for p in pods}, node=node.name, timeout=30)
    assert {p.metadata.name for p in cluster.pods(node=node.name)} == {"owned-pod", "remote-pod"}
    assert {j.metadata.name for j in cluster.batch.list_namespaced_job(cluster.namespace).items} == {"owned", "remote"}
    assert cluster.batch.read_namespaced_job("owned", cluster.namespace).metadata.uid == owned.metadata.uid

    skipped = {r["job"]: r for r in scheduler.audit_for(action="job.skipped")}
    assert set(skipped) == {f"{cluster.namespace}/owned", f"{cluster.namespace}/remote"}
    assert skipped[f"{cluster.namespace}/owned"]["owner"] == "v1/ConfigMap/trainer"
    assert skipped[f"{cluster.namespace}/remote"]["managed_by"] == REMOTE
    assert [r["job"] for r in scheduler.audit_for(action="job.deleted")] == [f"{cluster.namespace}/plain"]
    summary = scheduler.wait_audit(action="cleanup.completed")
    assert summary["skipped_foreign"] == 2

    # a second run changes nothing: the skipped Jobs and their pods are still not ours
    again = requests.post(
        scheduler.url + "/",
        data=json.dumps({"action": "cleanup"}),
        headers={"Content-Type": "application/json"},
        timeout=120,
    ).json()["cleanup"][0]
    assert (again["deleted_jobs"], again["deleted_pods"], again["skipped_foreign"]) == (0, 0, 2)
    assert {j.metadata.name for j in cluster.batch.list_namespaced_job(cluster.namespace).items} == {"owned", "remote"}
    assert {p.metadata.name for p in cluster.pods(node=node.name)} == {"owned-pod", "remote-pod"}
