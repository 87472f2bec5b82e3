"""The finished-Job cleanup engine: paginated, parallel, time-boxed deletion.

Selection is pure (:mod:`functions.decisions.cleanup_policy`). :class:`Cleanup` walks the
cluster page by page (limit/continue) so memory stays flat, deletes with bounded parallelism, and
stops taking new work when its time budget runs out; the next run picks up the rest.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from functions.decisions.actions import Action, Severity
from functions.decisions.cleanup_policy import (
    CleanupPolicy,
    Verdict,
    decide_job,
    decide_pod,
    job_name_of,
    job_of,
    list_scopes,
)
from functions.decisions.model import Job, Pod
from functions.errors import PermanentError, TransientError
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ListExpired

FOREIGN_SAMPLE = 20  # Jobs of other controllers audited (and listed in the summary) per run; all are counted


@dataclass
class CleanupReport:
    cluster: str
    dry_run: bool
    deleted_jobs: int = 0
    deleted_pods: int = 0
    already_gone: int = 0
    skipped_foreign: int = 0  # finished Jobs another controller manages (owner reference or spec.managedBy)
    foreign: list[str] = field(default_factory=list)  # a bounded sample of them: "namespace/name: why"
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
            "skipped_foreign": self.skipped_foreign,
            "foreign": self.foreign[:FOREIGN_SAMPLE],
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
                        Action.JOB_SKIPPED,
                        f"skipped {job.key}: {verdict.reason}",
                        severity=Severity.WARNING,
                        job=job.key,
                        reason=verdict.reason,
                    )
                if verdict.foreign:
                    self._skipped_foreign(job, verdict)
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

    def _skipped_foreign(self, job: Job, verdict: Verdict) -> None:
        """Counted, every one; audited for the first few of a run only (a cluster of JobSets has thousands)."""
        self.report.skipped_foreign += 1
        if len(self.report.foreign) >= FOREIGN_SAMPLE:
            return
        self.report.foreign.append(f"{job.key}: {verdict.reason}")
        owner = job.controller
        self.audit.record(
            Action.JOB_SKIPPED,
            f"skipped {job.key}: {verdict.reason}",
            job=job.key,
            job_uid=job.uid,
            reason=verdict.reason,
            category=verdict.category,
            owner=f"{owner.api_version}/{owner.kind}/{owner.name}" if owner is not None else None,
            managed_by=job.managed_by,
        )

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
                Action.JOB_DELETED,
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
        if self._job_still_there(pod):
            return
        deleted = self.kube.delete_pod(pod, dry_run=self.dry_run)
        with self._lock:
            if deleted:
                self.report.deleted_pods += 1
            else:
                self.report.already_gone += 1
        if deleted:
            self.audit.record(
                Action.POD_DELETED,
                f"{'would delete' if self.dry_run else 'deleted'} finished pod {pod.key} ({verdict.reason})",
                pod=pod.key,
                pod_uid=pod.uid,
                reason=verdict.reason,
                dry_run=self.dry_run,
            )

    def _job_still_there(self, pod: Pod) -> bool:
        """The pod's Job exists after all: it was created after this run listed the Jobs (or adopted
        the pod since). Its pods are not orphans; the next run decides on the Job, which may be
        another controller's."""
        name, uid = job_name_of(pod), job_of(pod)
        if not name or not uid:
            return False
        job = self.kube.find_job(namespace=pod.namespace, name=name)
        return job is not None and job.uid == uid

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
