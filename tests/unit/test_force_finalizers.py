"""Unit tests for the drain's force step: a force-deleted pod that a finalizer keeps is reported
remaining, with the finalizer's name, not as force-deleted and gone (invariant 10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.decisions.actions import Action, Severity
from functions.decisions.model import Node, Pod
from functions.decisions.policy import DrainPlan, PodAction, PodDecision
from functions.decisions.settings import ClusterConfig
from functions.engines.drain.budgets import Budgets
from functions.engines.drain.deadline import Deadline
from functions.engines.drain.evictions import Evictions
from functions.engines.drain.force import force_delete
from functions.engines.drain.pods import PodLog, PodResult, Pods, TrackedPod
from functions.engines.drain.report import DrainOutcome, DrainReport, build_report
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.evictions import EvictionOutcome, EvictionResult

CLUSTER = ClusterConfig(name="alpha", project="acme-prod", location="europe-west4")
PROTECT = "example.com/protect"


@dataclass(frozen=True)
class RecordingAudit(Audit):
    records: list[tuple[Action, str, dict[str, Any]]] = field(default_factory=list)

    def record(self, action: Action, message: str, /, *, severity: Severity = Severity.INFO, **details: Any) -> None:
        self.records.append((action, message, details))


class ForceKube(ClusterClient):
    """Answers a grace-0 delete as the API server would: None (already gone) or the finalizers left."""

    def __init__(self, answers: dict[str, tuple[str, ...] | None]) -> None:
        self.cluster = CLUSTER
        self.timeout = 1.0
        self.answers = answers

    def force_delete_pod(self, pod: Pod, *, dry_run: bool = False) -> tuple[str, ...] | None:
        return self.answers[pod.name]

    def evict(self, pod: Pod, *, dry_run: bool = False) -> EvictionResult:
        return EvictionResult(outcome=EvictionOutcome.GONE)  # an answer that comes after the pod went


def pod(name: str) -> Pod:
    return Pod.from_json(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
            "spec": {"nodeName": "gke-a"},
            "status": {"phase": "Running"},
        }
    )


NODE = Node.from_json({"metadata": {"name": "gke-a", "uid": "n"}, "spec": {}, "status": {}})


@dataclass
class Engine:
    """The parts of a drain that the force step touches, on one deadline."""

    kube: ForceKube
    plan: DrainPlan
    audit: RecordingAudit
    dry_run: bool
    deadline: Deadline = field(init=False)
    pods: Pods = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = Deadline(self.plan.timeout.total_seconds())
        self.pods = Pods(self.deadline)
        self.log = PodLog(audit=self.audit, events=None, node_name="gke-a")

    def force(self, items: list[TrackedPod], node: Node) -> None:
        force_delete(
            items,
            node,
            kube=self.kube,
            deadline=self.deadline,
            log=self.log,
            plan=self.plan,
            dry_run=self.dry_run,
            concurrency=4,
        )

    def evict(self, item: TrackedPod) -> None:
        budgets = Budgets(kube=self.kube, deadline=self.deadline, audit=self.audit)
        evictions = Evictions(
            kube=self.kube,
            deadline=self.deadline,
            budgets=budgets,
            log=self.log,
            dry_run=self.dry_run,
            force_when_down=self.plan.force_when_down,
            down=lambda: False,
        )
        evictions.evict(item)

    def report(self, *, cordoned: bool) -> DrainReport:
        return build_report(
            self.pods.items(),
            skipped=[],
            node="gke-a",
            cluster=CLUSTER.name,
            plan=self.plan,
            dry_run=self.dry_run,
            cordoned=cordoned,
            was_unschedulable=False,
            verified=None,
            tainted=False,
            now=self.deadline.clock(),
            started=self.deadline.started,
        )


def make_drain(answers: dict[str, tuple[str, ...] | None], *, dry_run: bool = False) -> tuple[Engine, RecordingAudit]:
    plan = DrainPlan(
        reason="preempted",
        event_id="e1",
        event_time=datetime.now(UTC),
        timeout=timedelta(seconds=1),
        force_when_down=True,
    )
    audit = RecordingAudit()
    engine = Engine(kube=ForceKube(answers), plan=plan, audit=audit, dry_run=dry_run)
    for name in answers:
        engine.pods.track(PodDecision(pod=pod(name), action=PodAction.EVICT))
    return engine, audit


def test_a_pod_held_by_a_finalizer_is_remaining_with_its_name() -> None:
    engine, audit = make_drain(
        {"held": (PROTECT,), "two": (PROTECT, "example.com/backup"), "went": (), "was-gone": None}
    )
    engine.force(engine.pods.items(), NODE)
    report = engine.report(cordoned=True)
    by_pod = {p.pod: p for p in report.pods}
    assert by_pod["ns/held"].result is PodResult.REMAINING
    assert by_pod["ns/held"].reason == f"held by finalizer {PROTECT}"
    assert by_pod["ns/held"].finalizers == (PROTECT,)
    assert by_pod["ns/two"].reason == f"held by finalizers {PROTECT}, example.com/backup"
    assert by_pod["ns/went"].result is PodResult.FORCE_DELETED
    assert by_pod["ns/was-gone"].result is PodResult.GONE
    assert report.outcome is DrainOutcome.INCOMPLETE
    summary = report.summary()
    assert summary["counts"] == {"remaining": 2, "force_deleted": 1, "gone": 1}
    assert summary["remaining"] == ["ns/held", "ns/two"]
    assert summary["held_by_finalizers"] == [
        {"pod": "ns/held", "finalizers": [PROTECT], "message": f"held by finalizer {PROTECT}"},
        {"pod": "ns/two", "finalizers": [PROTECT, "example.com/backup"], "message": by_pod["ns/two"].reason},
    ]
    forced = {d["pod"]: (m, d) for a, m, d in audit.records if a is Action.POD_FORCE_DELETED}
    message, details = forced["ns/held"]
    assert f"held by finalizer {PROTECT}" in message
    assert details["finalizers"] == [PROTECT]
    assert forced["ns/went"][1]["finalizers"] == []


def test_a_held_pod_that_goes_later_is_force_deleted() -> None:
    engine, _ = make_drain({"held": (PROTECT,)})
    engine.force(engine.pods.items(), NODE)
    assert [i.decision.pod.name for i in engine.pods.pending()] == ["held"]  # the drain still waits for it
    engine.pods.reconcile([])  # its finalizer removed: the pod watch sees it go
    [only] = engine.report(cordoned=True).pods
    assert only.result is PodResult.FORCE_DELETED
    assert only.finalizers == ()


@pytest.mark.parametrize(("answer", "result"), [((PROTECT,), "would_force_delete"), ((), "would_force_delete")])
def test_dry_run_says_what_would_hold_it(answer: tuple[str, ...], result: str) -> None:
    engine, _ = make_drain({"p": answer}, dry_run=True)
    engine.force(engine.pods.items(), NODE)
    [only] = engine.report(cordoned=False).pods
    assert only.result.value == result
    assert (PROTECT in only.reason) is bool(answer)


def test_an_eviction_answered_after_the_force_does_not_undo_it() -> None:
    """An eviction sent before the node was verified down, answered once the force-deleted pod has
    gone (its finalizer removed): the pod is still reported force-deleted."""
    engine, _ = make_drain({"tracked": ("batch.kubernetes.io/job-tracking",), "never-forced": None})
    tracked, never_forced = engine.pods.items()
    engine.force([tracked], NODE)
    engine.evict(tracked)
    engine.evict(never_forced)
    results = {p.pod: p.result for p in engine.report(cordoned=True).pods}
    assert results == {"ns/tracked": PodResult.FORCE_DELETED, "ns/never-forced": PodResult.GONE}
