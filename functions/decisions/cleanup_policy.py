"""Which finished Jobs and pods the cleanup deletes (pure: ``now`` comes in as an argument).

:class:`CleanupPolicy` is the configured policy; :func:`decide_job` and :func:`decide_pod` give a
:class:`Verdict` for one object; :func:`list_scopes` says what to list.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from functions.decisions.model import Job, Owner, Pod
from functions.decisions.names import ANNOTATION_PREFIX


@dataclass(frozen=True, kw_only=True)
class CleanupPolicy:
    ttl_succeeded: timedelta = timedelta(hours=1)
    ttl_failed: timedelta = timedelta(hours=24)
    ttl_orphan_pods: timedelta = timedelta(hours=1)
    include_namespaces: frozenset[str] = frozenset()  # empty: every namespace
    exclude_namespaces: frozenset[str] = frozenset({"kube-system"})
    include_cronjob_jobs: bool = False  # by default a CronJob's history limits govern its Jobs
    sweep_other_pods: bool = False  # finished pods not owned by a Job (bare, or other owners)

    def namespace_allowed(self, namespace: str) -> bool:
        if namespace in self.exclude_namespaces:
            return False
        return not self.include_namespaces or namespace in self.include_namespaces


JOB_OPT_OUT = ANNOTATION_PREFIX + "skip-cleanup"  # "true" on a Job (or a finished pod): never cleaned


@dataclass(frozen=True, kw_only=True)
class Verdict:
    delete: bool
    reason: str
    category: str  # short key for counts: expired, young, running, opt_out, ...

    @property
    def clock_skew(self) -> bool:
        return self.category == "clock_skew"

    @property
    def foreign(self) -> bool:
        """A Job that another controller manages (owner reference or spec.managedBy): never ours to delete."""
        return self.category == FOREIGN


FOREIGN = "foreign"


def _keep(category: str, reason: str) -> Verdict:
    return Verdict(delete=False, reason=reason, category=category)


def _age_verdict(kind: str, finished_at: datetime | None, ttl: timedelta, now: datetime) -> Verdict:
    if finished_at is None:
        return _keep("no_finish_time", f"{kind} has no finish time")
    if finished_at > now:
        return _keep("clock_skew", f"{kind} finish time {finished_at.isoformat()} is in the future (clock skew)")
    age = (now - finished_at).total_seconds()
    if age < ttl.total_seconds():
        return _keep("young", f"finished {age:.0f} s ago, TTL {ttl.total_seconds():.0f} s")
    return Verdict(delete=True, reason=f"finished {age:.0f} s ago, TTL {ttl.total_seconds():.0f} s", category="expired")


def _opted_out(annotations: Mapping[str, str]) -> bool:
    return str(annotations.get(JOB_OPT_OUT, "")).strip().lower() == "true"


JOB_CONTROLLER = "kubernetes.io/job-controller"  # spec.managedBy of a Job the built-in controller syncs
CRONJOB_GROUP = "batch"


def is_cronjob(owner: Owner) -> bool:
    """A CronJob of the batch API group (batch/v1; batch/v1beta1 in references written by old clusters)."""
    return owner.kind == "CronJob" and owner.group == CRONJOB_GROUP


def foreign_manager(job: Job) -> str | None:
    """Why another controller than the Job controller (or a CronJob) manages the Job, or None.

    ``spec.managedBy`` naming another controller (Kueue's MultiKueue, ...) hands the Job's whole
    lifecycle to it; a controller owner reference of any other kind (JobSet, KubeRay's RayJob, an
    Argo Workflow, ...) means its controller deletes the Job when it is done with it, and may still
    read the Job's status or pods meanwhile."""
    if job.managed_by is not None and job.managed_by != JOB_CONTROLLER:
        return f"spec.managedBy is {job.managed_by}: that controller manages the Job, not the Job controller"
    owner = job.controller
    if owner is not None and not is_cronjob(owner):
        version = owner.api_version or "no apiVersion"
        return f"controlled by {owner.kind} {owner.name} ({version}): that controller deletes it when it is done"
    return None


def decide_job(job: Job, *, policy: CleanupPolicy, now: datetime) -> Verdict:
    if not policy.namespace_allowed(job.namespace):
        return _keep("namespace", "namespace excluded")
    if job.finished is None:
        return _keep("running", "still running")
    if job.ttl_after_finished is not None:
        return _keep("ttl_controller", "sets ttlSecondsAfterFinished: the TTL-after-finished controller owns it")
    if _opted_out(job.annotations):
        return _keep("opt_out", f"opt-out annotation {JOB_OPT_OUT}=true")
    foreign = foreign_manager(job)
    if foreign is not None:
        return _keep(FOREIGN, foreign)
    if job.controller is not None and not policy.include_cronjob_jobs:  # a CronJob: any other controller is foreign
        return _keep("cronjob", f"owned by CronJob {job.controller.name}: its history limits apply")
    ttl = policy.ttl_succeeded if job.finished == "Complete" else policy.ttl_failed
    return _age_verdict(f"Job ({job.finished})", job.finished_at, ttl, now)


JOB_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")


def job_of(pod: Pod) -> str | None:
    """The UID of the Job that made the pod: its controller reference, or (once a Job was deleted
    with propagationPolicy=Orphan and the reference removed) the label the Job controller set."""
    if pod.controller is not None:
        return pod.controller.uid if pod.controller.kind == "Job" else None
    return next((pod.labels[k] for k in JOB_UID_LABELS if pod.labels.get(k)), None)


JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def job_name_of(pod: Pod) -> str | None:
    """The name of the Job that made the pod: its controller reference, or the Job controller's label."""
    if pod.controller is not None:
        return pod.controller.name if pod.controller.kind == "Job" else None
    return next((pod.labels[k] for k in JOB_NAME_LABELS if pod.labels.get(k)), None)


def decide_pod(pod: Pod, *, live_jobs: Container[str], policy: CleanupPolicy, now: datetime) -> Verdict:
    """A finished pod: swept when its Job is gone (or, if configured, when no Job owns it)."""
    if pod.phase not in ("Succeeded", "Failed"):
        return _keep("running", "not finished")
    if not policy.namespace_allowed(pod.namespace):
        return _keep("namespace", "namespace excluded")
    if _opted_out(pod.annotations):
        return _keep("opt_out", f"opt-out annotation {JOB_OPT_OUT}=true")
    job_uid = job_of(pod)
    if job_uid:
        if job_uid in live_jobs:
            return _keep("job_exists", "its Job still exists")
        return _age_verdict("orphaned pod", pod.finished_at, policy.ttl_orphan_pods, now)
    if not policy.sweep_other_pods:
        return _keep("not_job_owned", "not owned by a Job")
    return _age_verdict("finished pod", pod.finished_at, policy.ttl_orphan_pods, now)


def list_scopes(policy: CleanupPolicy) -> Sequence[str | None]:
    """What to list: the included namespaces, excluded ones left out (sorted, so runs are
    repeatable), or None for one cluster-wide list."""
    if not policy.include_namespaces:
        return [None]
    return sorted(n for n in policy.include_namespaces if policy.namespace_allowed(n))
