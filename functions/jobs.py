"""Finished-Job cleanup: pure selection, then paginated, parallel, time-boxed deletion.

Selection (``decide_job``, ``decide_pod``) is pure and takes ``now``. :class:`Cleanup` walks the
cluster page by page (limit/continue) so memory stays flat, deletes with bounded parallelism, and
stops taking new work when its time budget runs out; the next run picks up the rest.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from functions.audit import Audit
from functions.errors import PermanentError, TransientError
from functions.kube import ClusterClient, ListExpired
from functions.model import Job, Pod
from functions.policy import ANNOTATION_PREFIX, CleanupPolicy

JOB_OPT_OUT = ANNOTATION_PREFIX + "skip-cleanup"  # "true" on a Job (or a finished pod): never cleaned


@dataclass(frozen=True, kw_only=True)
class Verdict:
    delete: bool
    reason: str
    category: str  # short key for counts: expired, young, running, opt_out, ...

    @property
    def clock_skew(self) -> bool:
        return self.category == "clock_skew"


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


def _opted_out(annotations: Any) -> bool:
    return str(annotations.get(JOB_OPT_OUT, "")).strip().lower() == "true"


def decide_job(job: Job, *, policy: CleanupPolicy, now: datetime) -> Verdict:
    if not policy.namespace_allowed(job.namespace):
        return _keep("namespace", "namespace excluded")
    if job.finished is None:
        return _keep("running", "still running")
    if job.ttl_after_finished is not None:
        return _keep("ttl_controller", "sets ttlSecondsAfterFinished: the TTL-after-finished controller owns it")
    if _opted_out(job.annotations):
        return _keep("opt_out", f"opt-out annotation {JOB_OPT_OUT}=true")
    if job.controller is not None and job.controller.kind == "CronJob" and not policy.include_cronjob_jobs:
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


@dataclass
class CleanupReport:
    cluster: str
    dry_run: bool
    deleted_jobs: int = 0
    deleted_pods: int = 0
    already_gone: int = 0
    kept: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    clock_skew: list[str] = field(default_factory=list)
    complete: bool = True  # False when the time budget ended the run early
    duration_seconds: float = 0.0
    jobs_seen: int = 0
    pods_seen: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "dry_run": self.dry_run,
            "deleted_jobs": self.deleted_jobs,
            "deleted_pods": self.deleted_pods,
            "already_gone": self.already_gone,
            "jobs_seen": self.jobs_seen,
            "pods_seen": self.pods_seen,
            "kept": dict(self.kept),
            "clock_skew": self.clock_skew[:50],
            "errors": self.errors[:20],
            "complete": self.complete,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@dataclass
class Cleanup:
    kube: ClusterClient
    policy: CleanupPolicy
    audit: Audit
    dry_run: bool = False
    budget_seconds: float = 300.0
    concurrency: int = 32
    page_size: int = 500
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.report = CleanupReport(cluster=self.kube.cluster.name, dry_run=self.dry_run)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency * 2)
        self._deleted_job_uids: set[str] = set()
        self._progressed = False

    def _out_of_time(self) -> bool:
        """Past the budget, once this run has made some progress (every run deletes something)."""
        return self._progressed and self.clock() >= self._deadline

    def run(self, *, now: datetime) -> CleanupReport:
        started = self.clock()
        self._deadline = started + self.budget_seconds
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cleanup") as pool:
            live_jobs = self._sweep_jobs(pool, now)
            if self._out_of_time():
                self.report.complete = False  # the pod sweep is left to the next run
            else:
                # wait for Job deletions first: their pods are the garbage collector's, not orphans
                pool.shutdown(wait=True)
                with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="cleanup") as pods:
                    self._sweep_pods(pods, live_jobs, now)
        self.report.duration_seconds = self.clock() - started
        return self.report

    # ------------------------------------------------------------------ jobs
    def _sweep_jobs(self, pool: ThreadPoolExecutor, now: datetime) -> set[str]:
        live: set[str] = set()
        for page in self._scoped_pages(self.kube.list_jobs):
            for job in page:
                self.report.jobs_seen += 1
                verdict = decide_job(job, policy=self.policy, now=now)
                if verdict.clock_skew:
                    self.report.clock_skew.append(job.key)
                    self.audit.record(
                        "job.skipped",
                        f"skipped {job.key}: {verdict.reason}",
                        severity="WARNING",
                        job=job.key,
                        reason=verdict.reason,
                    )
                if not verdict.delete:
                    live.add(job.uid)
                    self.report.kept[verdict.category] += 1
                    continue
                if self._out_of_time():
                    self.report.complete = False
                    live.add(job.uid)
                    return live
                self._submit(pool, self._delete_job, job, verdict)
        return live

    def _delete_job(self, job: Job, verdict: Verdict) -> None:
        deleted = self.kube.delete_job(job, dry_run=self.dry_run)
        with self._lock:
            if deleted:
                self.report.deleted_jobs += 1
                self._deleted_job_uids.add(job.uid)
            else:
                self.report.already_gone += 1
        if deleted:
            self.audit.record(
                "job.deleted",
                f"{'would delete' if self.dry_run else 'deleted'} Job {job.key} ({verdict.reason}) with its pods",
                job=job.key,
                job_uid=job.uid,
                condition=job.finished,
                reason=verdict.reason,
                dry_run=self.dry_run,
            )

    # ------------------------------------------------------------------ pods
    def _sweep_pods(self, pool: ThreadPoolExecutor, live_jobs: set[str], now: datetime) -> None:
        for phase in ("Succeeded", "Failed"):
            selector = f"status.phase={phase}"
            for page in self._scoped_pages(
                lambda limit, token, namespace, s=selector: self.kube.list_pods(
                    s, limit=limit, token=token, namespace=namespace
                )
            ):
                for pod in page:
                    self.report.pods_seen += 1
                    if pod.controller is not None and pod.controller.uid in self._deleted_job_uids:
                        continue  # its Job was deleted with propagation: the garbage collector takes it
                    verdict = decide_pod(pod, live_jobs=live_jobs, policy=self.policy, now=now)
                    if not verdict.delete:
                        continue
                    if self._out_of_time():
                        self.report.complete = False
                        return
                    self._submit(pool, self._delete_pod, pod, verdict)

    def _delete_pod(self, pod: Pod, verdict: Verdict) -> None:
        deleted = self.kube.delete_pod(pod, dry_run=self.dry_run)
        with self._lock:
            if deleted:
                self.report.deleted_pods += 1
            else:
                self.report.already_gone += 1
        if deleted:
            self.audit.record(
                "pod.deleted",
                f"{'would delete' if self.dry_run else 'deleted'} finished pod {pod.key} ({verdict.reason})",
                pod=pod.key,
                pod_uid=pod.uid,
                reason=verdict.reason,
                dry_run=self.dry_run,
            )

    # --------------------------------------------------------------- helpers
    def _submit(self, pool: ThreadPoolExecutor, action: Callable[..., None], *args: Any) -> None:
        self._slots.acquire()  # bounded in-flight work: memory stays flat however many items there are
        self._progressed = True
        future: Future[None] = pool.submit(self._guarded, action, *args)
        future.add_done_callback(lambda _: self._slots.release())

    def _guarded(self, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except (TransientError, PermanentError) as exc:  # counted and reported; the run goes on
            with self._lock:
                self.report.errors.append(str(exc))

    def _scoped_pages(self, lister: Callable[..., tuple[list[Any], str]]) -> Iterable[list[Any]]:
        """Pages of each included namespace in turn when the policy names them (the API server then
        reads only those), else of the whole cluster."""
        for index, namespace in enumerate(list_scopes(self.policy)):
            if index and self._out_of_time():  # no new namespace once the budget is spent
                self.report.complete = False
                return
            yield from self._pages(lambda limit, token, ns=namespace: lister(limit=limit, token=token, namespace=ns))

    def _pages(self, lister: Callable[..., tuple[list[Any], str]]) -> Iterable[list[Any]]:
        """Pages of a list; an expired continue token restarts the listing (deletes are idempotent)."""
        token: str | None = None
        restarts = 0
        while True:
            try:
                items, next_token = lister(limit=self.page_size, token=token)
            except ListExpired:
                restarts += 1
                if restarts > 3:
                    raise
                token = None
                continue
            yield items
            token = next_token or None
            if token is None:
                return
            if self._out_of_time():
                self.report.complete = False
                return
