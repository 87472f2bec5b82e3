"""What a drain reports: each pod's result, the outcome, and whether (and how) the node was verified
down. :meth:`DrainReport.summary` is the audit record's and the outcome event's payload."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from functions.decisions.policy import DrainPlan, PodAction
from functions.engines.drain.fence import Verified
from functions.engines.drain.pods import PodResult, TrackedPod


class DrainOutcome(StrEnum):
    COMPLETED = "completed"  # every target pod is gone
    INCOMPLETE = "incomplete"  # the deadline passed with pods left
    DRY_RUN = "dry_run"


@dataclass(frozen=True, kw_only=True)
class PodReport:
    pod: str
    result: PodResult
    reason: str = ""
    pdb: str | None = None
    finalizers: tuple[str, ...] = ()  # force-deleted, still held by these at the deadline


@dataclass(frozen=True, kw_only=True)
class DrainReport:
    node: str
    cluster: str
    event_id: str
    reason: str
    dry_run: bool
    outcome: DrainOutcome
    cordoned: bool  # this drain changed the node to unschedulable
    was_unschedulable: bool
    verified_down: bool
    duration_seconds: float
    down_signal: str = ""  # "compute" or "node" when verified down
    down_reason: str = ""
    failover_seconds: float | None = None  # verified down -> no pod of ours left on the node (completed drains)
    tainted: bool = False  # this drain added the out-of-service taint
    pods: tuple[PodReport, ...]
    message: str = ""
    transient_failures: int = 0  # pods left because the API server failed, not because of a budget

    def summary(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for p in self.pods:
            counts[p.result.value] = counts.get(p.result.value, 0) + 1
        return {
            "node": self.node,
            "cluster": self.cluster,
            "event_id": self.event_id,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "outcome": self.outcome.value,
            "cordoned": self.cordoned,
            "was_unschedulable": self.was_unschedulable,
            "verified_down": self.verified_down,
            "down_signal": self.down_signal or None,
            "down_reason": self.down_reason or None,
            "failover_seconds": None if self.failover_seconds is None else round(self.failover_seconds, 3),
            "out_of_service_taint": self.tainted,
            "duration_seconds": round(self.duration_seconds, 3),
            "counts": counts,
            "blocked": [
                {"pod": p.pod, "pdb": p.pdb, "message": p.reason} for p in self.pods if p.result is PodResult.BLOCKED
            ],
            "remaining": [p.pod for p in self.pods if p.result in (PodResult.BLOCKED, PodResult.REMAINING)],
            "held_by_finalizers": [
                {"pod": p.pod, "finalizers": list(p.finalizers), "message": p.reason}
                for p in self.pods
                if p.finalizers and p.result is PodResult.REMAINING
            ],
            "note": self.message,
        }


def build_report(
    tracked: Iterable[TrackedPod],
    *,
    skipped: Iterable[PodReport],
    node: str,
    cluster: str,
    plan: DrainPlan,
    dry_run: bool,
    cordoned: bool,
    was_unschedulable: bool,
    verified: Verified | None,
    tainted: bool,
    now: float,
    started: float,
) -> DrainReport:
    """The report of a drain that has ended (``now``, ``started`` and ``verified.at``: one clock)."""
    reports = list(skipped)
    left = 0
    transient = 0
    for item in tracked:
        pod = item.decision.pod
        if item.gone:
            reports.append(PodReport(pod=pod.key, result=item.result or PodResult.GONE, reason=item.decision.reason))
            continue
        if dry_run and item.result is not None:
            reason = item.last_message or item.decision.reason
            reports.append(PodReport(pod=pod.key, result=item.result, reason=reason, pdb=item.pdb))
            continue
        if dry_run and item.decision.action is PodAction.WAIT:
            reports.append(PodReport(pod=pod.key, result=PodResult.REMAINING, reason="already terminating"))
            continue
        left += 1
        transient += int(item.transient)
        # blocked only when a budget refused it last, not when the API server failed after that
        blocked = item.result is PodResult.BLOCKED and not item.transient
        result = PodResult.BLOCKED if blocked else PodResult.REMAINING
        reports.append(
            PodReport(
                pod=pod.key,
                result=result,
                reason=item.last_message or item.decision.reason,
                pdb=item.pdb,
                finalizers=item.finalizers,
            )
        )
    if dry_run:
        outcome = DrainOutcome.DRY_RUN
    elif left:
        outcome = DrainOutcome.INCOMPLETE
    else:
        outcome = DrainOutcome.COMPLETED
    message = ""
    if left:
        message = f"{left} pod(s) left at the deadline ({plan.timeout.total_seconds():g} s)"
        if plan.force_when_down and verified is None:
            message += "; the node was not verified down, so nothing was forced"
    return DrainReport(
        node=node,
        cluster=cluster,
        event_id=plan.event_id,
        reason=plan.reason,
        dry_run=dry_run,
        outcome=outcome,
        cordoned=cordoned,
        was_unschedulable=was_unschedulable,
        verified_down=verified is not None,
        down_signal=verified.signal.value if verified else "",
        failover_seconds=now - verified.at if verified is not None and outcome is DrainOutcome.COMPLETED else None,
        down_reason=verified.reason if verified else "",
        tainted=tainted,
        duration_seconds=now - started,
        pods=tuple(sorted(reports, key=lambda r: r.pod)),
        message=message,
        transient_failures=transient,
    )
