"""The drain engine: cordon, evict in parallel, wait by watching, fenced force-cleanup.

One :class:`Drain` works on one node of one cluster, against a deadline. Pods are classified by
:mod:`functions.policy`; evictions run in parallel (policy/v1, pod UID as precondition) with
system-critical pods last; a watch on the node's pods tells when each target is gone; when the
plan allows it, a watch on the Node tells when the VM is verified down, and only then is what is
left force-deleted (grace 0, UID precondition).
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from functions.decisions import policy
from functions.decisions.actions import Action, Severity
from functions.decisions.model import Budget, Node, Pod
from functions.decisions.policy import DrainPlan, PodAction, PodDecision
from functions.decisions.times import format_time
from functions.errors import DrainerError, PermanentError, TransientError
from functions.gateways.audit import Audit
from functions.gateways.compute import ComputeClient, ComputeDenied, ComputeError
from functions.gateways.kube.client import ClusterClient, EvictionOutcome, WatchEvent, WatchStop
from functions.gateways.kube.errors import ApiForbidden, ApiStatus, ApiUnavailable, Conflict
from functions.gateways.kube.events import EventRecorder

BACKOFF_START = 0.5
BACKOFF_MAX = 5.0
BUDGET_RECHECK = 15.0  # s an eviction waiting on a watched, exhausted budget waits at most before it asks again
BUDGET_SETTLE_MAX = 1.0  # s the next eviction under a budget waits at most for the disruption controller
CORDON_ATTEMPTS = 5
FENCE_POLL_START = 0.5  # Compute Engine is asked again with this backoff while the VM is still STOPPING
FENCE_POLL_MAX = 3.0
WATCHER_JOIN_MARGIN = 5.0  # s beyond one request's timeout that the end of a drain waits for its watchers


class _Unset:
    """The type of a fact not given (a Node may be None: deleted)."""


_UNSET = _Unset()


class NodeGone(DrainerError):
    """The Node object disappeared before the drain could start."""

    def __init__(self, node: str, *, why: str = "no longer exists") -> None:
        super().__init__(f"node {node} {why}")


class PodResult(StrEnum):
    EVICTED = "evicted"
    DELETED = "deleted"  # terminal pod deleted
    FORCE_DELETED = "force_deleted"
    GONE = "gone"  # went away by itself (or was already gone)
    SKIPPED = "skipped"
    BLOCKED = "blocked"  # still there at the deadline, a PDB refused the eviction
    REMAINING = "remaining"  # still there at the deadline for another reason
    WOULD_EVICT = "would_evict"  # dry run
    WOULD_DELETE = "would_delete"  # dry run
    WOULD_FORCE_DELETE = "would_force_delete"  # dry run


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


@dataclass
class _Tracked:
    decision: PodDecision
    gone: bool = False
    result: PodResult | None = None
    last_message: str = ""
    pdb: str | None = None
    transient: bool = False
    budget: str | None = None  # the key of the one PodDisruptionBudget that governs its eviction
    refusals: int = 0  # evictions of it refused (429) before one was accepted
    finalizers: tuple[str, ...] = ()  # force-deleted, the API server keeps it for these


def _evicted(item: _Tracked) -> bool:
    return item.result is PodResult.EVICTED


def _accepted(item: _Tracked) -> bool:
    """Gone, or its eviction accepted."""
    return item.gone or item.result in (PodResult.EVICTED, PodResult.WOULD_EVICT)


@dataclass
class Drain:
    kube: ClusterClient
    node_name: str
    plan: DrainPlan
    audit: Audit
    dry_run: bool = False
    concurrency: int = 32
    compute: ComputeClient | None = None  # the fast fence; None: only the Node rule
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    events: EventRecorder | None = None  # Kubernetes Events (best effort); never written in a dry run
    node_uid: str | None = None  # the Node the plan was made for: another under the same name is not drained
    storm_share: float = 0.10  # the Node rule alone fences at most this share of the cluster's nodes...
    storm_window: float = 600.0  # ...within this many seconds

    def __post_init__(self) -> None:
        self._node: Node | None = None  # as cordoned: what the Events are about
        self._lock = threading.Condition()
        self._tracked: dict[str, _Tracked] = {}  # uid -> state
        self._down = threading.Event()
        self._down_signal: policy.DownSignal | None = None
        self._down_at: float | None = None
        self._down_reason = ""
        self._tainted = False
        self._fence_node: Node | None = None  # the fence's facts: the Node as last seen...
        self._fence_vm = policy.VM_PENDING if self.compute is not None else policy.VM_UNAVAILABLE  # ...and the VM
        self._vetoed = False
        self._storm_lock = threading.Lock()
        self._storm_decided: bool | None = None
        self._finished = threading.Event()
        self._budgets: dict[str, Budget] = {}  # key -> as last seen by the budget watch
        self._budgets_watched = False
        self._budgets_live = True  # False while the budget watch cannot reach the API server
        self._watch_stop = WatchStop()  # closes this drain's watch streams when it ends
        self._started = self.clock()
        self._deadline = self._started + self.plan.timeout.total_seconds()

    # ------------------------------------------------------------ helpers
    def _remaining_time(self) -> float:
        return self._deadline - self.clock()

    def _finish(self) -> None:
        with self._lock:
            self._finished.set()
            self._lock.notify_all()

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the drain ends first; False when it should stop."""
        seconds = min(seconds, max(0.0, self._remaining_time()))
        return not self._finished.wait(seconds) and self._remaining_time() > 0

    def _record_pod(
        self, item: _Tracked, action: Action, message: str, *, severity: Severity = Severity.INFO, **extra: object
    ) -> None:
        pod = item.decision.pod
        self.audit.record(action, message, severity=severity, pod=pod.key, pod_uid=pod.uid, **extra)
        self._pod_event(item, action)

    def _pod_event(self, item: _Tracked, action: Action) -> None:
        """The Kubernetes Event on the pod for an audited action (none in a dry run)."""
        if self.events is None or self.dry_run:
            return
        pod = item.decision.pod
        if action is Action.POD_EVICTED:
            self.events.evicted(pod, node=self.node_name, why=item.decision.reason)
        elif action is Action.POD_BLOCKED:
            self.events.eviction_blocked(pod, node=self.node_name, pdb=item.pdb, message=item.last_message)
        elif action is Action.POD_FORCE_DELETED:
            self.events.force_deleted(pod, node=self.node_name)

    # ------------------------------------------------------------- cordon
    def _cordon(self) -> tuple[Node, bool, bool]:
        """Returns (node, we changed it to unschedulable, it was unschedulable before us)."""
        for _ in range(CORDON_ATTEMPTS):
            node = self.kube.get_node(self.node_name)
            if node is None:
                raise NodeGone(self.node_name)
            if self.node_uid is not None and node.uid != self.node_uid:  # not the Node the plan was made for
                raise NodeGone(self.node_name, why="was registered again since the decision (a new UID)")
            was_before = (
                node.annotations.get(policy.WAS_UNSCHEDULABLE) == "true"
                if policy.cordoned_by_us(node)
                else node.unschedulable
            )
            if not policy.cordon_needed(node, self.plan):
                return node, False, was_before
            try:
                patched = self.kube.patch_node(
                    self.node_name,
                    uid=node.uid,
                    resource_version=node.resource_version,
                    unschedulable=True,
                    annotations=policy.cordon_annotations(node, self.plan, now=self.wall()),
                    dry_run=self.dry_run,
                )
            except Conflict:
                continue
            changed = not node.unschedulable
            self.audit.record(
                Action.NODE_CORDONED,
                f"{'would cordon' if self.dry_run else 'cordoned'} {self.node_name}"
                + (" (already unschedulable before us: kept as it was)" if was_before else ""),
                was_unschedulable=was_before,
                boot_id=node.boot_id,
                dry_run=self.dry_run,
            )
            if self.events is not None and not self.dry_run:
                self.events.cordoned(
                    patched, event_kind=self.plan.reason, event_id=self.plan.event_id, was_unschedulable=was_before
                )
            return patched, changed, was_before
        raise ApiUnavailable(
            ApiStatus(
                code=409, reason="Conflict", message=f"the node kept changing; gave up after {CORDON_ATTEMPTS} tries"
            ),
            request=f"PATCH node {self.node_name}",
        )

    # ------------------------------------------------------------ watches
    def _watch_pods(self, resource_version: str) -> None:
        rv = resource_version
        while not self._finished.is_set() and self._remaining_time() > 0:
            try:
                for kind, pod in self.kube.watch_pods_on_node(
                    self.node_name, resource_version=rv, timeout=self._remaining_time(), stop=self._watch_stop
                ):
                    self._observe(kind, pod)
                    if self._finished.is_set():
                        return
                if self._finished.is_set():  # the stream was closed because the drain ended
                    return
                # expired or 410 Gone: relist and reconcile
                pods, rv = self.kube.list_pods_on_node(self.node_name)
                self._reconcile(pods)
            except TransientError:
                if not self._sleep(0.5):
                    return

    def _observe(self, kind: WatchEvent, pod: Pod) -> None:
        with self._lock:
            item = self._tracked.get(pod.uid)
            if item is not None and kind is WatchEvent.DELETED and not item.gone:
                item.gone = True
                self._lock.notify_all()

    def _reconcile(self, pods: Iterable[Pod]) -> None:
        present = {p.uid for p in pods}
        with self._lock:
            for uid, item in self._tracked.items():
                if uid not in present and not item.gone:
                    item.gone = True
            self._lock.notify_all()

    def _watch_budgets(self, resource_version: str) -> None:
        """Keep the budgets' status current, and wake the evictions that wait for one to allow. While
        the API server cannot be watched the budgets are not live: waiting evictions fall back to
        their backoff (and so meet the outage themselves)."""
        rv: str | None = resource_version
        while not self._finished.is_set() and self._remaining_time() > 0:
            try:
                if rv is None:
                    budgets, rv = self.kube.list_budgets()
                    with self._lock:
                        self._budgets = {b.key: b for b in budgets}
                        self._budgets_live = True
                        self._lock.notify_all()
                for kind, budget in self.kube.watch_budgets(
                    resource_version=rv, timeout=self._remaining_time(), stop=self._watch_stop
                ):
                    rv = budget.resource_version or rv
                    with self._lock:
                        if kind is WatchEvent.DELETED:
                            self._budgets.pop(budget.key, None)
                        else:
                            self._budgets[budget.key] = budget
                        self._lock.notify_all()
                    if self._finished.is_set():
                        return
                if self._finished.is_set():
                    return
                rv = None  # expired or 410 Gone: relist
            except TransientError:
                with self._lock:
                    self._budgets_live = False
                    self._lock.notify_all()
                rv = None
                if not self._sleep(0.5):
                    return

    def _watch_node(self, node: Node) -> None:
        """The Node rule's facts: watch the Node until the fence decides (see :meth:`_judge`)."""
        current: Node | None = node
        rv = node.resource_version
        while not self._finished.is_set() and self._remaining_time() > 0 and not self._down.is_set():
            try:
                self._judge(node=current)
                if current is None or self._down.is_set():  # the Node object was deleted: nothing to watch
                    return
                for _, seen in self.kube.watch_node(
                    self.node_name, resource_version=rv, timeout=self._remaining_time(), stop=self._watch_stop
                ):
                    rv = seen.resource_version
                    if seen.uid != node.uid:  # registered again: a kubelet runs there, not the event's
                        return
                    self._judge(node=seen)
                    if self._finished.is_set() or self._down.is_set():
                        return
                if self._finished.is_set():  # the stream was closed because the drain ended
                    return
                current = self.kube.get_node(self.node_name)
                if current is not None and current.uid != node.uid:  # registered again: never forced here
                    return
                rv = current.resource_version if current else rv
            except TransientError:
                if not self._sleep(0.5):
                    return

    def _watch_vm(self, node: Node) -> None:
        """Compute Engine's facts: ask instances.get, with a short backoff while the VM is still
        stopping, until it says the VM is off, gone or replaced. An error is never "down": it is
        audited once and, while Compute Engine cannot answer, the Node rule decides (403: stop
        asking; 5xx, timeouts: ask again, and a later answer outranks the Node rule again)."""
        location = node.location
        if self.compute is None or location is None:
            self._judge(vm=policy.VM_UNAVAILABLE)  # nothing to ask: the Node rule decides
            return
        project, zone, name = location
        delay = FENCE_POLL_START
        reported = False
        while not self._finished.is_set() and self._remaining_time() > 0 and not self._down.is_set():
            try:
                vm = self.compute.get_instance(project=project, zone=zone, name=name)
            except ComputeError as exc:
                if not reported:
                    reported = True
                    self.audit.record(
                        Action.FENCE_UNAVAILABLE,
                        f"Compute Engine could not say whether {name} is off ({exc}); the Node rule decides",
                        severity=Severity.WARNING,
                        error=str(exc),
                        status=exc.code,
                        during="fence",
                    )
                self._judge(vm=policy.VM_UNAVAILABLE)
                if isinstance(exc, ComputeDenied):
                    return
            else:
                self._judge(vm=policy.VmFacts(answer=policy.VmAnswer.ANSWERED, vm=vm))
            if self._down.is_set() or not self._sleep(delay):
                return
            delay = min(delay * 2, FENCE_POLL_MAX)

    def _judge(self, *, node: Node | _Unset | None = _UNSET, vm: policy.VmFacts | None = None) -> None:
        """Record a new fact (the Node as last seen, or Compute Engine's answer) and apply the fence:
        Compute Engine outranks the Node rule; the Node rule alone is storm-capped."""
        with self._lock:
            if not isinstance(node, _Unset):
                self._fence_node = node
            if vm is not None:
                self._fence_vm = vm
            if self._down.is_set():
                return
            verdict = policy.fence_verdict(
                node=self._fence_node,
                vm=self._fence_vm,
                event_time=self.plan.event_time,
                instance_id=self.plan.instance_id,
                boot_id=self._node.annotations.get(policy.CORDON_BOOT_ID) if self._node is not None else None,
            )
            veto = verdict.vetoed and not self._vetoed
            self._vetoed = self._vetoed or verdict.vetoed
        if veto:
            vm_status = self._fence_vm.vm.status if self._fence_vm.vm is not None else None
            self.audit.record(
                Action.FENCE_VETOED,
                f"{self.node_name}: {verdict.reason}; nothing is forced while the VM may run",
                severity=Severity.WARNING,
                vm_status=vm_status,
                reason=verdict.reason,
            )
        if not verdict.down or verdict.signal is None:
            return
        if verdict.node_rule_only and not self._storm_allows():
            return
        self._mark_down(verdict.signal, verdict.reason)

    def _storm_allows(self) -> bool:
        """Storm protection: when only the Node rule says down, at most the cluster's cap of nodes is
        fenced within the window. This node records when it was fenced (guarded by UID and
        resourceVersion), then every instance reads the same list and agrees on who is within the
        cap; a node beyond it takes its record back and its drain stays graceful."""
        with self._storm_lock:
            if self._storm_decided is not None:
                return self._storm_decided
            try:
                allowed, fenced, cap = self._storm_check()
            except DrainerError as exc:  # cannot count: do not force on the Node rule alone
                allowed, fenced, cap = False, -1, 0
                self.audit.record(
                    Action.FENCE_STORM_HELD,
                    f"could not count the nodes fenced in {self.kube.cluster.name} ({exc}): "
                    f"{self.node_name} is not forced on the Node rule alone",
                    severity=Severity.ERROR,
                    error=str(exc),
                    window_seconds=self.storm_window,
                )
                self._storm_decided = False
                return False
            self._storm_decided = allowed
        if not allowed:
            self.audit.record(
                Action.FENCE_STORM_HELD,
                f"{self.node_name} is Unknown but Compute Engine cannot answer, and {fenced} node(s) of "
                f"{self.kube.cluster.name} were already fenced by the Node rule alone in the last "
                f"{self.storm_window:g} s (cap {cap}): a zonal partition looks like this; the drain stays graceful",
                severity=Severity.ERROR,
                fenced=fenced,
                cap=cap,
                window_seconds=self.storm_window,
            )
        return allowed

    def _storm_check(self) -> tuple[bool, int, int]:
        """(allowed, nodes fenced in the window before this one, cap)."""
        window = timedelta(seconds=self.storm_window)
        nodes = self.kube.list_nodes()
        cap = policy.storm_cap(len(nodes), share=self.storm_share)
        now = self.wall()
        before = [f for f in policy.fenced_by_node_rule(nodes, now=now, window=window) if f[1] != self.node_name]
        if self.dry_run:
            return len(before) < cap, len(before), cap
        if len(before) >= cap:
            return False, len(before), cap
        mine = self.kube.get_node(self.node_name)
        if mine is None or (self._node is not None and mine.uid != self._node.uid):
            return False, len(before), cap
        self.kube.patch_node(self.node_name, uid=mine.uid, annotations={policy.FENCED_AT: format_time(now)})
        fenced = policy.fenced_by_node_rule(self.kube.list_nodes(), now=now, window=window)
        if policy.within_storm_cap(fenced, name=self.node_name, cap=cap):
            return True, len(before), cap
        with contextlib.suppress(Conflict):  # taken back; a Node replaced meanwhile has none of it
            self.kube.patch_node(self.node_name, uid=mine.uid, annotations={policy.FENCED_AT: None})
        return False, len([f for f in fenced if f[1] != self.node_name]), cap

    def _mark_down(self, signal: policy.DownSignal, reason: str) -> None:
        with self._lock:
            if self._down.is_set():
                return
            self._down_signal, self._down_reason = signal, reason
            self._down_at = self.clock()
            self._down.set()
            self._lock.notify_all()
        self.audit.record(
            Action.NODE_VERIFIED_DOWN,
            f"{self.node_name} verified down by {signal.value}: {reason}",
            signal=signal.value,
            reason=reason,
            event_time=self.plan.event_time,
        )
        if self.events is not None and not self.dry_run and self._node is not None:
            self.events.verified_down(self._node, signal=f"{signal.value}: {reason}")

    # ---------------------------------------------------------- evictions
    def _load_budgets(self) -> str | None:
        """The cluster's PodDisruptionBudgets, to evict the pods of each in turn; returns the list's
        resourceVersion, or None when they cannot be read (then every pod is evicted at once and a
        refused one is retried on a backoff, as before budgets were read)."""
        try:
            budgets, rv = self.kube.list_budgets()
        except (TransientError, ApiForbidden) as exc:
            fix = {"fix": exc.fix} if isinstance(exc, ApiForbidden) else {}
            self.audit.record(
                Action.BUDGETS_UNAVAILABLE,
                f"could not read PodDisruptionBudgets ({exc}): pods are evicted at once and refusals retried "
                "on a backoff",
                severity=Severity.WARNING,
                error=str(exc),
                **fix,
            )
            return None
        with self._lock:
            self._budgets = {b.key: b for b in budgets}
        return rv

    def _turns(self, items: list[_Tracked]) -> list[list[_Tracked]]:
        """The evictions to run: one sequence per budget (its pods in turn), then each other pod alone."""
        with self._lock:
            budgets = list(self._budgets.values())
        by_uid = {i.decision.pod.uid: i for i in items}
        grouped, free = policy.eviction_turns([i.decision.pod for i in items], budgets)
        turns = []
        for key, pods in grouped.items():
            for pod in pods:
                by_uid[pod.uid].budget = key
            turns.append([by_uid[p.uid] for p in pods])
        return turns + [[by_uid[p.uid]] for p in free]

    def _evict_in_turn(self, items: list[_Tracked]) -> None:
        """The pods of one budget, one eviction in flight. An accepted eviction writes the budget's
        status, and the disruption controller writes it again once it sees the pod terminating; an
        eviction sent between the two conflicts with the controller's write, and the API server
        retries it only after 0.5 s. So the next eviction waits (by the budget watch, briefly) until
        the controller has taken the previous one in."""
        probed = False

        def probe(rest: list[_Tracked]) -> None:
            """The budget has no disruption left: ask once for each pod still in line, so that each
            refusal is its own (audited, reported, an Event) while the first waits for the budget."""
            nonlocal probed
            if not probed:
                probed = True
                for other in rest:
                    if self._finished.is_set():
                        return
                    self._evict(other, once=True)

        for index, item in enumerate(items):
            if self._finished.is_set() or self._remaining_time() <= 0:
                return
            if _accepted(item):
                continue  # a probe's eviction was accepted
            before = self._budget_seen(item.budget)
            self._evict(item, on_exhausted=functools.partial(probe, items[index + 1 :]))
            if item.transient and not _accepted(item):
                # it ended on an outage (or a denial): the pods behind it were not asked again either
                for other in items[index + 1 :]:
                    other.transient = other.transient or not _accepted(other)
                return
            if item.budget and _evicted(item) and index + 1 < len(items):
                self._await_settled(item.budget, item.decision.pod.name, before)

    def _wait_for(self, done: Callable[[], bool], seconds: float) -> None:
        """Wait on the drain's condition until ``done()`` (checked under its lock), the drain ends or
        the node is verified down, or ``seconds`` pass."""
        end = self.clock() + seconds
        with self._lock:
            while not self._finished.is_set() and not self._down.is_set() and not done():
                left = end - self.clock()
                if left <= 0:
                    return
                self._lock.wait(left)

    def _await_settled(self, key: str, pod_name: str, before: str | None) -> None:
        """Until the watched budget has changed since ``before`` and no longer lists ``pod_name`` as
        disrupted (the disruption controller saw it terminating), at most BUDGET_SETTLE_MAX."""

        def settled() -> bool:
            budget = self._budgets.get(key)
            return budget is None or (budget.resource_version != before and pod_name not in budget.disrupted_pods)

        self._wait_for(settled, BUDGET_SETTLE_MAX)

    def _budget_seen(self, key: str | None) -> str | None:
        """The budget's resourceVersion as the watch last saw it (None: not known)."""
        with self._lock:
            budget = self._budgets.get(key) if key else None
            return budget.resource_version if budget else None

    def _await_budget(self, key: str, seen: str | None, seconds: float) -> bool:
        """Wait until the watched budget has changed since ``seen`` and allows an eviction, the node is
        verified down, the budget watch breaks, or ``seconds`` pass (a missed watch event costs no
        more than that); False when the drain should stop."""

        def allows() -> bool:
            budget = self._budgets.get(key)
            return not self._budgets_live or (
                budget is not None and budget.resource_version != seen and budget.allows_eviction
            )

        self._wait_for(allows, min(seconds, max(0.0, self._remaining_time())))
        return not self._finished.is_set() and self._remaining_time() > 0

    def _evict(self, item: _Tracked, *, once: bool = False, on_exhausted: Callable[[], None] | None = None) -> None:
        """Evict one pod, retrying refusals until the drain ends (``once``: ask only once).
        ``on_exhausted`` runs at the first refusal that says its budget has no disruption left."""
        pod = item.decision.pod
        delay = BACKOFF_START
        while True:
            with self._lock:
                if item.gone:
                    return
            if self._down.is_set() and self.plan.force_when_down:
                return  # the force phase takes over: budgets protect running pods, not dead ones
            seen = self._budget_seen(item.budget)
            try:
                result = self.kube.evict(pod, dry_run=self.dry_run)
            except (PermanentError, ApiForbidden) as exc:  # invalid, or denied: retrying now will not help
                item.last_message = str(exc)
                item.transient = isinstance(exc, ApiForbidden)  # a deployment fault: the event is retried
                fix = {"fix": exc.fix} if isinstance(exc, ApiForbidden) else {}
                self._record_pod(
                    item,
                    Action.POD_EVICTION_FAILED,
                    f"eviction of {pod.key} failed: {exc}",
                    severity=Severity.ERROR,
                    error=str(exc),
                    **fix,
                )
                return
            if result.outcome is EvictionOutcome.EVICTED:
                item.result = PodResult.WOULD_EVICT if self.dry_run else PodResult.EVICTED
                self._record_pod(
                    item,
                    Action.POD_EVICTED,
                    f"{'would evict' if self.dry_run else 'evicted'} {pod.key}"
                    + (f" ({item.decision.reason})" if item.decision.reason else ""),
                    dry_run=self.dry_run,
                    critical=item.decision.critical,
                    local_storage=item.decision.local_storage,
                    unreplicated=item.decision.unreplicated,
                    refusals=item.refusals,
                )
                return
            if result.outcome is EvictionOutcome.GONE:
                with self._lock:
                    item.gone = True
                    if item.result is not PodResult.FORCE_DELETED:  # an answer that came after the force's
                        item.result = PodResult.GONE
                    self._lock.notify_all()
                return
            if result.outcome is EvictionOutcome.TERMINATING:
                # evicted by someone else first (another delivery of the event): waited for, not counted
                if self.dry_run:
                    item.result, item.last_message = PodResult.REMAINING, result.message
                return
            if result.outcome is EvictionOutcome.STALE and result.pod is not None:
                item.decision = replace(item.decision, pod=result.pod)  # changed but running: evict it as it is
                pod = result.pod
                if self._remaining_time() <= 0:
                    return
                continue
            item.last_message = result.message
            item.pdb = result.pdb
            item.transient = result.outcome is EvictionOutcome.UNAVAILABLE
            if result.outcome in (EvictionOutcome.BLOCKED, EvictionOutcome.MULTIPLE_PDBS):
                item.refusals += 1
                if item.result is not PodResult.BLOCKED:
                    item.result = PodResult.BLOCKED
                    self._record_pod(
                        item,
                        Action.POD_BLOCKED,
                        f"eviction of {pod.key} refused: {result.message}",
                        severity=Severity.WARNING,
                        pdb=result.pdb,
                        dry_run=self.dry_run,
                    )
                else:  # a retry refused again: the Event's series counts it
                    self._pod_event(item, Action.POD_BLOCKED)
                if self.dry_run:
                    return
            if once:
                return
            refusing = f"{pod.namespace}/{result.pdb}" if result.pdb else item.budget
            exhausted = result.outcome is EvictionOutcome.BLOCKED and result.exhausted
            if exhausted and on_exhausted is not None:
                on_exhausted()
                on_exhausted = None
            if exhausted and self._budgets_watched and self._budgets_live and refusing:
                # no disruption left: nothing changes until a replacement is ready, and the budget's
                # status says when; asked again only when it allows one (or after a long recheck).
                # While the watch is broken, the backoff below decides instead.
                if refusing != item.budget:
                    seen = self._budget_seen(refusing)
                if not self._await_budget(refusing, seen, BUDGET_RECHECK):
                    return
                continue
            # a budget still being processed, two budgets, a transient failure, budgets not watched
            if not self._sleep(delay * random.uniform(0.8, 1.2)):
                return
            delay = min(delay * 2, BACKOFF_MAX)

    def _delete_terminal(self, item: _Tracked) -> None:
        pod = item.decision.pod
        try:
            deleted = self.kube.delete_pod(pod, dry_run=self.dry_run)
        except TransientError as exc:
            item.transient, item.last_message = True, str(exc)
            return
        if not deleted:
            with self._lock:
                item.gone, item.result = True, PodResult.GONE
                self._lock.notify_all()
            return
        item.result = PodResult.WOULD_DELETE if self.dry_run else PodResult.DELETED
        self._record_pod(
            item,
            Action.POD_DELETED,
            f"{'would delete' if self.dry_run else 'deleted'} {item.decision.reason} {pod.key}",
            dry_run=self.dry_run,
        )

    def _force(self, items: list[_Tracked], node: Node) -> None:
        if self.events is not None and not self.dry_run:
            self.events.force_cleanup(node, pods=[i.decision.pod.key for i in items])

        def one(item: _Tracked) -> None:
            pod = item.decision.pod
            try:
                held_by = self.kube.force_delete_pod(pod, dry_run=self.dry_run)
            except TransientError as exc:
                item.transient, item.last_message = True, str(exc)
                return
            deleted = held_by is not None
            if held_by:  # the API server keeps it until they are removed: not gone, whatever the delete said
                item.transient, item.finalizers = False, held_by
                item.last_message = f"held by finalizer{'s' if len(held_by) > 1 else ''} {', '.join(held_by)}"
            if deleted:
                item.result = PodResult.WOULD_FORCE_DELETE if self.dry_run else PodResult.FORCE_DELETED
                self._record_pod(
                    item,
                    Action.POD_FORCE_DELETED,
                    f"{'would force-delete' if self.dry_run else 'force-deleted'} {pod.key}: node verified down"
                    + (f"; {item.last_message}: it stays until they are removed" if held_by else ""),
                    severity=Severity.NOTICE,
                    ready=node.ready.status,
                    last_heartbeat=node.ready.last_heartbeat,
                    event_time=self.plan.event_time,
                    dry_run=self.dry_run,
                    finalizers=list(held_by or ()),
                )
            if held_by:
                return  # gone when the pod watch sees it go; left at the deadline: reported remaining
            if not self.dry_run or not deleted:
                with self._lock:
                    item.gone = True
                    item.result = item.result or PodResult.GONE
                    self._lock.notify_all()

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="force") as pool:
            list(pool.map(one, items))

    # ---------------------------------------------------------------- run
    def _pending(self, *, critical: bool | None = None) -> list[_Tracked]:
        with self._lock:
            return [
                i
                for i in self._tracked.values()
                if not i.gone and i.decision.target and (critical is None or i.decision.critical == critical)
            ]

    def _wait_until_down(self) -> None:
        self._wait_for(lambda: False, max(0.0, self._remaining_time()))  # ends when the node is verified down

    def _check_down_once(self, node: Node) -> None:
        """Dry run: the fence's answer now, without waiting."""
        vm = policy.VM_UNAVAILABLE
        if self.compute is not None and node.location is not None:
            project, zone, name = node.location
            with contextlib.suppress(ComputeError):
                answer = self.compute.get_instance(project=project, zone=zone, name=name)
                vm = policy.VmFacts(answer=policy.VmAnswer.ANSWERED, vm=answer)
        self._judge(node=node, vm=vm)

    def _attached_volumes(self) -> list[str]:
        """The PVs still attached to the node (empty when they cannot be listed: never blocks)."""
        try:
            return sorted(a.persistent_volume or a.name for a in self.kube.list_volume_attachments(node=self.node_name))
        except DrainerError:
            return []

    def _taint(self, node: Node) -> None:
        """Add the out-of-service taint (guarded by resourceVersion), recorded as ours."""
        current: Node | None = node
        for _ in range(CORDON_ATTEMPTS):
            if current is None:
                return
            if policy.has_out_of_service_taint(current):
                if not policy.tainted_by_us(current):
                    self.audit.record(
                        Action.NODE_TAINTED,
                        f"{self.node_name} already carries an out-of-service taint that is not ours: left as it is",
                        ours=False,
                    )
                return
            attached = self._attached_volumes()
            try:
                self.kube.patch_node(
                    self.node_name,
                    uid=current.uid,
                    resource_version=current.resource_version,
                    taints=policy.taints_with_out_of_service(current),
                    annotations=policy.taint_annotations(now=self.wall(), attached_volumes=attached),
                    dry_run=self.dry_run,
                )
            except Conflict:
                current = self.kube.get_node(self.node_name)
                continue
            except DrainerError as exc:  # the force-cleanup still runs; volumes then wait for Kubernetes
                self.audit.record(
                    Action.NODE_TAINT_FAILED,
                    f"could not taint {self.node_name} out of service: {exc}",
                    severity=Severity.ERROR,
                    error=str(exc),
                )
                return
            self._tainted = not self.dry_run
            if self.events is not None and not self.dry_run:
                self.events.out_of_service_taint_added(current, why=self._down_reason)
            self.audit.record(
                Action.NODE_TAINTED,
                f"{'would taint' if self.dry_run else 'tainted'} {self.node_name} "
                f"{policy.OUT_OF_SERVICE.key}={policy.OUT_OF_SERVICE.value}:{policy.OUT_OF_SERVICE.effect} "
                f"({self._down_reason})",
                ours=True,
                attached_volumes=attached,
                signal=self._down_signal.value if self._down_signal else None,
                dry_run=self.dry_run,
            )
            return

    def _wait(self, items: Callable[[], list[_Tracked]], *, until_down: bool) -> None:
        with self._lock:
            while items() and self._remaining_time() > 0 and not (until_down and self._down.is_set()):
                self._lock.wait(min(1.0, max(0.01, self._remaining_time())))

    def run(self) -> DrainReport:
        node, cordoned, was_before = self._cordon()
        self._node = node
        pods, rv = self.kube.list_pods_on_node(self.node_name)
        decisions = [policy.classify_pod(p) for p in pods]
        skipped = []
        for d in decisions:
            if d.action is PodAction.SKIP:
                skipped.append(PodReport(pod=d.pod.key, result=PodResult.SKIPPED, reason=d.reason))
                self.audit.record(
                    Action.POD_SKIPPED, f"skipped {d.pod.key}: {d.reason}", pod=d.pod.key, reason=d.reason
                )
                if self.events is not None and not self.dry_run and policy.opted_out(d.pod):
                    self.events.skipped(d.pod, node=self.node_name, why=d.reason)
            else:
                self._tracked[d.pod.uid] = _Tracked(decision=d)
        force = self.plan.force_when_down
        watchers = []
        evicting = any(i.decision.action is PodAction.EVICT for i in self._tracked.values())
        budgets_rv = self._load_budgets() if evicting and not self.dry_run else None
        if budgets_rv is not None:
            self._budgets_watched = True
            watchers.append(
                threading.Thread(target=self._watch_budgets, args=(budgets_rv,), name="drain-budgets", daemon=True)
            )
        if not self.dry_run:
            watchers.append(threading.Thread(target=self._watch_pods, args=(rv,), name="drain-pods", daemon=True))
            if force:
                watchers.append(threading.Thread(target=self._watch_node, args=(node,), name="drain-node", daemon=True))
                watchers.append(threading.Thread(target=self._watch_vm, args=(node,), name="drain-vm", daemon=True))
        elif force:
            self._check_down_once(node)
        for thread in watchers:
            thread.start()
        try:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="evict") as pool:
                # the budgets' sequences first: they are the drain's longest path
                normal = [i for i in self._pending(critical=False) if i.decision.action is PodAction.EVICT]
                turns = self._turns(normal)
                futures = [pool.submit(self._evict_in_turn, turn) for turn in turns if len(turn) > 1]
                for item in self._pending():
                    if item.decision.action is PodAction.DELETE:
                        pool.submit(self._delete_terminal, item)
                futures += [pool.submit(self._evict_in_turn, turn) for turn in turns if len(turn) == 1]
                if self.dry_run:
                    for f in futures:
                        f.result()
                else:
                    self._wait(lambda: self._pending(critical=False), until_down=force)
                critical = [i for i in self._pending(critical=True) if i.decision.action is PodAction.EVICT]
                futures = [pool.submit(self._evict_in_turn, turn) for turn in self._turns(critical)]
                if self.dry_run:
                    for f in futures:
                        f.result()
                else:
                    self._wait(self._pending, until_down=force)
                # Every pod went, but a dead kubelet leaves its volumes listed in use: the
                # replacements wait on them until the node is tainted, so wait for the fence.
                taint_wanted = force and self.plan.out_of_service_taint and not self.dry_run
                if taint_wanted and not self._pending() and self._attached_volumes():
                    self._wait_until_down()
                if force and self._down.is_set():
                    fresh = self.kube.get_node(self.node_name) or node
                    if fresh.uid != node.uid:  # registered again: its kubelet may run the pods
                        raise NodeGone(self.node_name, why="was registered again during the drain (a new UID)")
                    if self.plan.out_of_service_taint and (self._pending() or self._attached_volumes()):
                        self._taint(fresh)
                    if self._pending():
                        self._force(self._pending(), fresh)
                        if not self.dry_run:
                            self._wait(self._pending, until_down=False)
                self._finish()
        finally:
            self._finish()
            # no watch stream or watcher outlives the drain: close the streams, then await the threads
            self._watch_stop.close()
            for thread in watchers:
                thread.join(timeout=self.kube.timeout + WATCHER_JOIN_MARGIN)
        return self._report(cordoned=cordoned, was_before=was_before, skipped=skipped)

    def _report(self, *, cordoned: bool, was_before: bool, skipped: list[PodReport]) -> DrainReport:
        reports = list(skipped)
        left = 0
        transient = 0
        with self._lock:
            for item in self._tracked.values():
                pod = item.decision.pod
                if item.gone:
                    reports.append(
                        PodReport(pod=pod.key, result=item.result or PodResult.GONE, reason=item.decision.reason)
                    )
                    continue
                if self.dry_run and item.result is not None:
                    reports.append(
                        PodReport(
                            pod=pod.key,
                            result=item.result,
                            reason=item.last_message or item.decision.reason,
                            pdb=item.pdb,
                        )
                    )
                    continue
                if self.dry_run and item.decision.action is PodAction.WAIT:
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
        if self.dry_run:
            outcome = DrainOutcome.DRY_RUN
        else:
            outcome = DrainOutcome.COMPLETED if left == 0 else DrainOutcome.INCOMPLETE
        message = ""
        if left:
            message = f"{left} pod(s) left at the deadline ({self.plan.timeout.total_seconds():g} s)"
            if self.plan.force_when_down and not self._down.is_set():
                message += "; the node was not verified down, so nothing was forced"
        return DrainReport(
            node=self.node_name,
            cluster=self.kube.cluster.name,
            event_id=self.plan.event_id,
            reason=self.plan.reason,
            dry_run=self.dry_run,
            outcome=outcome,
            cordoned=cordoned,
            was_unschedulable=was_before,
            verified_down=self._down.is_set(),
            down_signal=self._down_signal.value if self._down_signal else "",
            failover_seconds=(
                self.clock() - self._down_at
                if self._down_at is not None and outcome is DrainOutcome.COMPLETED
                else None
            ),
            down_reason=self._down_reason,
            tainted=self._tainted,
            duration_seconds=self.clock() - self._started,
            pods=tuple(sorted(reports, key=lambda r: r.pod)),
            message=message,
            transient_failures=transient,
        )
