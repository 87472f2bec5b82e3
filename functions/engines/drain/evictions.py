"""Evictions: policy/v1 with the pod UID as precondition, the pods of one budget in turn, refusals
retried until the deadline (by the budget watch when it can tell, else on a backoff); terminal pods
deleted. Once the node is verified down and the plan forces, the force step takes over."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from functions.decisions.actions import Action, Severity
from functions.engines.drain.budgets import Budgets
from functions.engines.drain.deadline import Deadline
from functions.engines.drain.pods import PodLog, PodResult, TrackedPod
from functions.errors import PermanentError, TransientError
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ApiForbidden
from functions.gateways.kube.evictions import EvictionOutcome

BACKOFF_START = 0.5
BACKOFF_MAX = 5.0
BUDGET_RECHECK = 15.0  # s an eviction waiting on a watched, exhausted budget waits at most before it asks again
BUDGET_SETTLE_MAX = 1.0  # s the next eviction under a budget waits at most for the disruption controller


def _evicted(item: TrackedPod) -> bool:
    return item.result is PodResult.EVICTED


def _accepted(item: TrackedPod) -> bool:
    """Gone, or its eviction accepted."""
    return item.gone or item.result in (PodResult.EVICTED, PodResult.WOULD_EVICT)


@dataclass(kw_only=True)
class Evictions:
    kube: ClusterClient
    deadline: Deadline
    budgets: Budgets
    log: PodLog
    dry_run: bool
    force_when_down: bool  # the plan forces once the node is verified down...
    down: Callable[[], bool]  # ...and this says it is (the fence's verdict)

    def in_turn(self, items: list[TrackedPod]) -> None:
        """The pods of one budget, one eviction in flight. An accepted eviction writes the budget's
        status, and the disruption controller writes it again once it sees the pod terminating; an
        eviction sent between the two conflicts with the controller's write, and the API server
        retries it only after 0.5 s. So the next eviction waits (by the budget watch, briefly) until
        the controller has taken the previous one in."""
        probed = False

        def probe(rest: list[TrackedPod]) -> None:
            """The budget has no disruption left: ask once for each pod still in line, so that each
            refusal is its own (audited, reported, an Event) while the first waits for the budget."""
            nonlocal probed
            if not probed:
                probed = True
                for other in rest:
                    if self.deadline.finished:
                        return
                    self.evict(other, once=True)

        for index, item in enumerate(items):
            if self.deadline.finished or self.deadline.remaining() <= 0:
                return
            if _accepted(item):
                continue  # a probe's eviction was accepted
            before = self.budgets.seen(item.budget)
            self.evict(item, on_exhausted=functools.partial(probe, items[index + 1 :]))
            if item.transient and not _accepted(item):
                # it ended on an outage (or a denial): the pods behind it were not asked again either
                for other in items[index + 1 :]:
                    other.transient = other.transient or not _accepted(other)
                return
            if item.budget and _evicted(item) and index + 1 < len(items):
                self._await_settled(item.budget, item.decision.pod.name, before)

    def _wait_for(self, done: Callable[[], bool], seconds: float) -> None:
        """Wait until ``done()``, the drain ends or the node is verified down, or ``seconds`` pass."""
        self.deadline.wait_for(lambda: self.down() or done(), seconds)

    def _await_settled(self, key: str, pod_name: str, before: str | None) -> None:
        """Until the watched budget has changed since ``before`` and no longer lists ``pod_name`` as
        disrupted (the disruption controller saw it terminating), at most BUDGET_SETTLE_MAX."""
        self._wait_for(lambda: self.budgets.settled(key, pod_name, before), BUDGET_SETTLE_MAX)

    def _await_budget(self, key: str, seen: str | None, seconds: float) -> bool:
        """Wait until the watched budget has changed since ``seen`` and allows an eviction, the node is
        verified down, the budget watch breaks, or ``seconds`` pass (a missed watch event costs no
        more than that); False when the drain should stop."""
        self._wait_for(lambda: self.budgets.allows(key, seen), min(seconds, max(0.0, self.deadline.remaining())))
        return self.deadline.running()

    def evict(self, item: TrackedPod, *, once: bool = False, on_exhausted: Callable[[], None] | None = None) -> None:
        """Evict one pod, retrying refusals until the drain ends (``once``: ask only once).
        ``on_exhausted`` runs at the first refusal that says its budget has no disruption left."""
        pod = item.decision.pod
        lock = self.deadline.lock
        delay = BACKOFF_START
        while True:
            with lock:
                if item.gone:
                    return
            if self.down() and self.force_when_down:
                return  # the force phase takes over: budgets protect running pods, not dead ones
            seen = self.budgets.seen(item.budget)
            try:
                result = self.kube.evict(pod, dry_run=self.dry_run)
            except (PermanentError, ApiForbidden) as exc:  # invalid, or denied: retrying now will not help
                item.last_message = str(exc)
                item.transient = isinstance(exc, ApiForbidden)  # a deployment fault: the event is retried
                fix = {"fix": exc.fix} if isinstance(exc, ApiForbidden) else {}
                self.log.record(
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
                self.log.record(
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
                with lock:
                    item.gone = True
                    if item.result is not PodResult.FORCE_DELETED:  # an answer that came after the force's
                        item.result = PodResult.GONE
                    lock.notify_all()
                return
            if result.outcome is EvictionOutcome.TERMINATING:
                # evicted by someone else first (another delivery of the event): waited for, not counted
                if self.dry_run:
                    item.result, item.last_message = PodResult.REMAINING, result.message
                return
            if result.outcome is EvictionOutcome.STALE and result.pod is not None:
                item.decision = replace(item.decision, pod=result.pod)  # changed but running: evict it as it is
                pod = result.pod
                if self.deadline.remaining() <= 0:
                    return
                continue
            item.last_message = result.message
            item.pdb = result.pdb
            item.transient = result.outcome is EvictionOutcome.UNAVAILABLE
            if result.outcome in (EvictionOutcome.BLOCKED, EvictionOutcome.MULTIPLE_PDBS):
                item.refusals += 1
                if item.result is not PodResult.BLOCKED:
                    item.result = PodResult.BLOCKED
                    self.log.record(
                        item,
                        Action.POD_BLOCKED,
                        f"eviction of {pod.key} refused: {result.message}",
                        severity=Severity.WARNING,
                        pdb=result.pdb,
                        dry_run=self.dry_run,
                    )
                else:  # a retry refused again: the Event's series counts it
                    self.log.event(item, Action.POD_BLOCKED)
                if self.dry_run:
                    return
            if once:
                return
            refusing = f"{pod.namespace}/{result.pdb}" if result.pdb else item.budget
            exhausted = result.outcome is EvictionOutcome.BLOCKED and result.exhausted
            if exhausted and on_exhausted is not None:
                on_exhausted()
                on_exhausted = None
            if exhausted and self.budgets.watched and self.budgets.live and refusing:
                # no disruption left: nothing changes until a replacement is ready, and the budget's
                # status says when; asked again only when it allows one (or after a long recheck).
                # While the watch is broken, the backoff below decides instead.
                if refusing != item.budget:
                    seen = self.budgets.seen(refusing)
                if not self._await_budget(refusing, seen, BUDGET_RECHECK):
                    return
                continue
            # a budget still being processed, two budgets, a transient failure, budgets not watched
            if not self.deadline.sleep(delay * random.uniform(0.8, 1.2)):
                return
            delay = min(delay * 2, BACKOFF_MAX)

    def delete_terminal(self, item: TrackedPod) -> None:
        """Delete a pod that has finished (Succeeded or Failed): nothing runs to evict."""
        pod = item.decision.pod
        try:
            deleted = self.kube.delete_pod(pod, dry_run=self.dry_run)
        except TransientError as exc:
            item.transient, item.last_message = True, str(exc)
            return
        if not deleted:
            with self.deadline.lock:
                item.gone, item.result = True, PodResult.GONE
                self.deadline.lock.notify_all()
            return
        item.result = PodResult.WOULD_DELETE if self.dry_run else PodResult.DELETED
        self.log.record(
            item,
            Action.POD_DELETED,
            f"{'would delete' if self.dry_run else 'deleted'} {item.decision.reason} {pod.key}",
            dry_run=self.dry_run,
        )
