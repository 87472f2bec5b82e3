"""The scheduled run: node recovery, then the Job cleanup, in every configured cluster, single-flight
per cluster through a Lease.

Rules of a run:
- one deadline for the whole run; recovery first (a node waiting to be uncordoned matters more
  than old Jobs), then the cleanup with the time left shared fairly between the clusters;
- one cluster's failure never stops the others;
- each cluster's schedule Lease is taken first (:mod:`functions.usecases.schedule_lease`). A
  cluster whose Lease a live holder has (another run, on this instance or another) is audited
  ``schedule.overlap`` and left to it; the run goes on with the others and answers at once. The
  Lease is renewed while the run works (never past the run's deadline), checked before each
  cluster's recovery and cleanup, and released at the end.
- a dry run takes no Lease: it writes nothing to a cluster, the Lease included, and only reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.decisions import lease
from functions.decisions.actions import Action
from functions.decisions.settings import ClusterConfig
from functions.errors import PermanentError, TransientError
from functions.gateways.audit import Audit
from functions.usecases.operations import Operations
from functions.usecases.runtime import Runtime, record_cluster_failure
from functions.usecases.schedule_lease import Clock, LeaseHold, Overlap, Renewer, take, utc_now

ACTIONS = ("cleanup", "recover", "all")
RECOVER = ("recover", "all")
CLEANUP = ("cleanup", "all")
OK, FAILED, OVERLAP, DEFERRED = "ok", "failed", "overlap", "deferred"  # a cluster's result


@dataclass(frozen=True, kw_only=True)
class ScheduleReport:
    action: str
    dry_run: bool
    clusters: Sequence[dict[str, Any]]  # {"cluster", "result"} (+ "error", or "holder" and "lease")
    recovered: Sequence[dict[str, str]] = ()
    cleanup: Sequence[dict[str, Any]] = ()

    @property
    def failed(self) -> list[str]:
        return [c["cluster"] for c in self.clusters if c["result"] == FAILED]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "dry_run": self.dry_run, "clusters": list(self.clusters)}
        if self.action in RECOVER:
            out["recovered"] = list(self.recovered)
        if self.action in CLEANUP:
            out["cleanup"] = list(self.cleanup)
        return out


@dataclass
class _Run:
    audit: Audit
    results: dict[str, dict[str, Any]]
    holds: dict[str, LeaseHold] = field(default_factory=dict)

    def failed(self, cluster: ClusterConfig, exc: Exception, doing: str) -> None:
        record_cluster_failure(self.audit, cluster, exc, doing=doing)
        self.results[cluster.name].update(result=FAILED, error=str(exc))

    def overlap(self, cluster: ClusterConfig, found: Overlap) -> None:
        self.audit.record(
            Action.SCHEDULE_OVERLAP,
            f"cluster {cluster.name}: another scheduled run holds the Lease {found.lease} ({found.reason}); "
            "this run leaves the cluster to it",
            cluster=cluster.name,
            holder=found.holder,
            lease=found.lease,
            reason=found.reason,
        )
        self.results[cluster.name].update(result=OVERLAP, holder=found.holder, lease=found.lease)

    def may_work(self, cluster: ClusterConfig) -> bool:
        """Whether to work on ``cluster`` now: not failed, not left to another run, and its Lease
        (when one is held) still held. A Lease lost since the last check is recorded here."""
        if self.results[cluster.name]["result"] != OK:
            return False
        hold = self.holds.get(cluster.name)
        if hold is None or hold.lost is None:
            return True
        if hold.taken_by:
            self.overlap(cluster, Overlap(holder=hold.taken_by, lease=hold.key, reason=hold.lost))
        else:
            self.failed(cluster, TransientError(hold.lost), "keeping the schedule Lease")
        return False


class Schedule:
    """One instance's scheduled runs. Runs of this instance never work on one cluster at once
    (they share the Lease's holder identity, so the Lease alone cannot tell them apart)."""

    def __init__(
        self,
        runtime: Runtime,
        ops: Operations | None = None,
        *,
        lease_seconds: int = lease.LEASE_DURATION_SECONDS,
        renew_every: float = lease.RENEW_INTERVAL_SECONDS,
        renew_deadline: float = lease.RENEW_DEADLINE_SECONDS,
        clock: Clock = utc_now,
    ) -> None:
        self.runtime = runtime
        self.ops = ops or Operations(runtime)
        self.identity = runtime.instance  # host name and a random part per process
        self.lease_seconds = lease_seconds
        self.renew_every = renew_every
        self.renew_deadline = renew_deadline
        self.clock = clock
        self._busy: set[str] = set()  # clusters a run of this instance is working on
        self._holds: dict[str, LeaseHold] = {}  # the Leases those runs hold, by cluster
        self._busy_lock = threading.Lock()

    def holding(self, cluster: str) -> LeaseHold | None:
        """The Lease a run of this instance holds for ``cluster`` now, if any."""
        with self._busy_lock:
            return self._holds.get(cluster)

    def run(self, *, action: str, dry_run: bool, audit: Audit, deadline: float) -> ScheduleReport:
        """Recover and/or clean every cluster before ``deadline`` (time.monotonic())."""
        clusters = list(self.runtime.settings.clusters)
        run = _Run(audit=audit, results={c.name: {"cluster": c.name, "result": OK} for c in clusters})
        mine: list[str] = []
        renewer: Renewer | None = None
        recovered: list[dict[str, str]] = []
        cleaned: list[dict[str, Any]] = []
        try:
            if not dry_run:
                self._take(clusters, run, mine)
                renewer = Renewer(run.holds.values(), every=self.renew_every, until=deadline).start()
            if action in RECOVER:
                for cluster in clusters:
                    if not run.may_work(cluster):
                        continue
                    try:
                        recovered += self.ops.recover(cluster, dry_run=dry_run, audit=audit, deadline=deadline)
                    except (TransientError, PermanentError) as exc:  # one cluster's failure does not stop the others
                        run.failed(cluster, exc, "recovery")
            if action in CLEANUP:
                cleaned = self._cleanup(clusters, run, dry_run=dry_run, deadline=deadline)
        finally:
            if renewer is not None:
                renewer.stop(self.runtime.settings.api_timeout + 1)
            for hold in run.holds.values():
                hold.release()
            with self._busy_lock:
                self._busy.difference_update(mine)
                for name in mine:
                    self._holds.pop(name, None)
        return ScheduleReport(
            action=action, dry_run=dry_run, clusters=list(run.results.values()), recovered=recovered, cleanup=cleaned
        )

    def _cleanup(
        self, clusters: Sequence[ClusterConfig], run: _Run, *, dry_run: bool, deadline: float
    ) -> list[dict[str, Any]]:
        cleaned = []
        todo = [c for c in clusters if run.results[c.name]["result"] == OK]
        for index, cluster in enumerate(todo):
            share = (deadline - time.monotonic()) / (len(todo) - index)  # the time left, shared fairly
            if share < 1:
                run.results[cluster.name].update(result=DEFERRED, error="no time left in this run")
                continue
            if not run.may_work(cluster):
                continue
            try:
                cleaned.append(
                    self.ops.cleanup(cluster, dry_run=dry_run, audit=run.audit, now=datetime.now(UTC), budget=share)
                )
            except (TransientError, PermanentError) as exc:
                run.failed(cluster, exc, "cleanup")
        return cleaned

    def _take(self, clusters: Sequence[ClusterConfig], run: _Run, mine: list[str]) -> None:
        """Take each cluster's Lease (or find it held, or fail); ``mine`` gets the names of the
        clusters this run has to itself on this instance (as it goes: whatever happens, the run
        gives them back)."""
        for cluster in clusters:
            with self._busy_lock:
                busy = cluster.name in self._busy
                if not busy:
                    self._busy.add(cluster.name)
            if busy:
                key = f"{lease.LEASE_NAMESPACE}/{lease.LEASE_NAME}"
                run.overlap(cluster, Overlap(holder=self.identity, lease=key, reason="another run of this instance"))
                continue
            mine.append(cluster.name)
            found = self._take_one(cluster, run)
            if isinstance(found, Overlap):
                run.overlap(cluster, found)
            elif found is not None:
                run.holds[cluster.name] = found
                with self._busy_lock:
                    self._holds[cluster.name] = found

    def _take_one(self, cluster: ClusterConfig, run: _Run) -> LeaseHold | Overlap | None:
        try:
            return take(
                self.runtime.client(cluster),
                identity=self.identity,
                duration=self.lease_seconds,
                renew_deadline=self.renew_deadline,
                clock=self.clock,
            )
        except (TransientError, PermanentError) as exc:
            run.failed(cluster, exc, "taking the schedule Lease")
            return None
