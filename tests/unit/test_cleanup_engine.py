"""Unit tests for functions.engines.cleanup against an in-memory cluster: the Jobs of other
controllers are counted and sampled, never deleted, and neither are their pods (invariant 10)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.decisions.actions import Action, Severity
from functions.decisions.cleanup_policy import CleanupPolicy
from functions.decisions.model import Job, Pod
from functions.decisions.settings import ClusterConfig
from functions.engines.cleanup import FOREIGN_SAMPLE, Cleanup
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
FINISHED = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
CLUSTER = ClusterConfig(name="alpha", project="acme-prod", location="europe-west4")


@dataclass(frozen=True)
class RecordingAudit(Audit):
    records: list[tuple[Action, str, Severity, dict[str, Any]]] = field(default_factory=list)

    def record(self, action: Action, message: str, /, *, severity: Severity = Severity.INFO, **details: Any) -> None:
        self.records.append((action, message, severity, details))

    def of(self, action: Action) -> list[dict[str, Any]]:
        return [{"message": m, **d} for a, m, _, d in self.records if a is action]


class FakeKube(ClusterClient):
    """The cleanup's verbs over lists of Jobs and pods; Jobs added to ``late_jobs`` exist for
    find_job only (created after the run listed the Jobs)."""

    def __init__(self, jobs: list[Job], pods: list[Pod], late_jobs: list[Job] | None = None) -> None:
        self.cluster = CLUSTER
        self.timeout = 1.0
        self.jobs = {j.uid: j for j in jobs}
        self.late = {j.uid: j for j in late_jobs or []}
        self.pods = {p.uid: p for p in pods}
        self.deleted_jobs: list[str] = []
        self.deleted_pods: list[str] = []
        self._lock = threading.Lock()

    def list_jobs(self, *, limit: int, token: str | None, namespace: str | None = None) -> tuple[list[Job], str]:
        return list(self.jobs.values()), ""

    def list_pods(
        self, field_selector: str, *, limit: int, token: str | None, namespace: str | None = None
    ) -> tuple[list[Pod], str]:
        phase = field_selector.removeprefix("status.phase=")
        return [p for p in self.pods.values() if p.phase == phase], ""

    def find_job(self, *, namespace: str, name: str) -> Job | None:
        every = {**self.jobs, **self.late}
        return next((j for j in every.values() if j.namespace == namespace and j.name == name), None)

    def delete_job(self, job: Job, *, dry_run: bool = False) -> bool:
        with self._lock:
            self.deleted_jobs.append(job.name)
        return True

    def delete_pod(self, pod: Pod, *, grace_seconds: int | None = None, dry_run: bool = False) -> bool:
        with self._lock:
            self.deleted_pods.append(pod.name)
        return True


def job(
    name: str, *, owner: tuple[str, str] | None = None, managed_by: str | None = None, uid: str | None = None
) -> Job:
    meta: dict[str, Any] = {"name": name, "namespace": "batch", "uid": uid or f"uid-{name}"}
    if owner is not None:
        api_version, kind = owner
        meta["ownerReferences"] = [
            {"apiVersion": api_version, "kind": kind, "name": f"{name}-owner", "uid": "o", "controller": True}
        ]
    spec: dict[str, Any] = {"managedBy": managed_by} if managed_by else {}
    status = {"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": FINISHED}]}
    return Job.from_json({"metadata": meta, "spec": spec, "status": status})


def pod_of(owner: Job | None, name: str, *, labels: Mapping[str, str] | None = None) -> Pod:
    meta: dict[str, Any] = {"name": name, "namespace": "batch", "uid": f"uid-{name}", "labels": dict(labels or {})}
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "batch/v1", "kind": "Job", "name": owner.name, "uid": owner.uid, "controller": True}
        ]
    status = {
        "phase": "Succeeded",
        "containerStatuses": [{"name": "main", "state": {"terminated": {"finishedAt": FINISHED}}}],
    }
    return Pod.from_json({"metadata": meta, "spec": {"nodeName": "n"}, "status": status})


JOBSET = ("jobset.x-k8s.io/v1alpha2", "JobSet")
CRONJOB = ("batch/v1", "CronJob")
ORPHANS_NOW = CleanupPolicy(ttl_orphan_pods=timedelta(0))


def run(kube: FakeKube, policy: CleanupPolicy = ORPHANS_NOW) -> tuple[dict[str, Any], RecordingAudit]:
    audit = RecordingAudit()
    report = Cleanup(kube=kube, policy=policy, audit=audit, concurrency=4).run(now=NOW)
    return report.summary(), audit


def test_jobs_of_other_controllers_are_counted_sampled_and_left_with_their_pods() -> None:
    foreign = [job(f"set-{i:02}", owner=JOBSET) for i in range(FOREIGN_SAMPLE + 5)]
    managed = job("remote", managed_by="kueue.x-k8s.io/multikueue")
    plain, cron = job("plain"), job("nightly-1", owner=CRONJOB)
    kube = FakeKube(
        [*foreign, managed, plain, cron],
        [pod_of(foreign[0], "set-00-pod"), pod_of(managed, "remote-pod"), pod_of(plain, "plain-pod")],
    )
    summary, audit = run(kube)
    assert kube.deleted_jobs == ["plain"]
    assert kube.deleted_pods == []  # the plain Job's pod is the garbage collector's; the others' stay
    assert summary["deleted_jobs"] == 1
    assert summary["skipped_foreign"] == FOREIGN_SAMPLE + 6
    assert summary["kept"] == {"foreign": FOREIGN_SAMPLE + 6, "cronjob": 1}
    assert len(summary["foreign"]) == FOREIGN_SAMPLE
    assert summary["foreign"][0] == (
        "batch/set-00: controlled by JobSet set-00-owner (jobset.x-k8s.io/v1alpha2): "
        "that controller deletes it when it is done"
    )
    skipped = audit.of(Action.JOB_SKIPPED)
    assert len(skipped) == FOREIGN_SAMPLE  # bounded: the summary counts them all
    assert skipped[0]["job"] == "batch/set-00"
    assert skipped[0]["owner"] == "jobset.x-k8s.io/v1alpha2/JobSet/set-00-owner"
    assert skipped[0]["category"] == "foreign"


def test_cronjob_jobs_are_cleaned_only_when_enabled_and_never_with_another_managed_by() -> None:
    cron = job("nightly-1", owner=CRONJOB)
    remote_cron = job("nightly-2", owner=CRONJOB, managed_by="kueue.x-k8s.io/multikueue")
    kube = FakeKube([cron, remote_cron], [])
    summary, _ = run(kube, CleanupPolicy(include_cronjob_jobs=True))
    assert kube.deleted_jobs == ["nightly-1"]
    assert summary["skipped_foreign"] == 1


def test_orphan_sweep_takes_only_pods_whose_job_is_gone() -> None:
    gone = job("gone")  # deleted before the run: its pod is an orphan
    late = job("late", owner=JOBSET)  # created after the run listed the Jobs
    relabelled = job("relabelled")  # gone; its pod lost the owner reference (propagationPolicy=Orphan)
    same_name = job("reused", uid="uid-new")  # a Job of the same name, another incarnation
    kube = FakeKube(
        [],
        [
            pod_of(gone, "gone-pod"),
            pod_of(late, "late-pod"),
            pod_of(
                None,
                "relabelled-pod",
                labels={
                    "batch.kubernetes.io/controller-uid": relabelled.uid,
                    "batch.kubernetes.io/job-name": "relabelled",
                },
            ),
            pod_of(job("reused", uid="uid-old"), "reused-pod"),
        ],
        late_jobs=[late, same_name],
    )
    summary, _ = run(kube)
    assert sorted(kube.deleted_pods) == ["gone-pod", "relabelled-pod", "reused-pod"]
    assert summary["deleted_pods"] == 3
