"""The cluster's PodDisruptionBudgets as one drain sees them: read once, then kept current by a watch,
so that the pods of each budget are evicted in turn and an eviction refused for want of a disruption
waits for the budget to allow one instead of polling."""

from __future__ import annotations

from functions.decisions import policy
from functions.decisions.actions import Action, Severity
from functions.decisions.model import Budget
from functions.engines.drain.deadline import Deadline
from functions.engines.drain.pods import TrackedPod
from functions.errors import TransientError
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ApiForbidden
from functions.gateways.kube.watch import WatchEvent


class Budgets:
    def __init__(self, *, kube: ClusterClient, deadline: Deadline, audit: Audit) -> None:
        self._kube = kube
        self._deadline = deadline
        self._lock = deadline.lock
        self._audit = audit
        self._budgets: dict[str, Budget] = {}  # key -> as last seen by the watch
        self.watched = False  # a watch keeps them current
        self.live = True  # False while the watch cannot reach the API server

    def load(self) -> str | None:
        """The cluster's PodDisruptionBudgets, to evict the pods of each in turn; returns the list's
        resourceVersion, or None when they cannot be read (then every pod is evicted at once and a
        refused one is retried on a backoff, as before budgets were read)."""
        try:
            budgets, rv = self._kube.list_budgets()
        except (TransientError, ApiForbidden) as exc:
            fix = {"fix": exc.fix} if isinstance(exc, ApiForbidden) else {}
            self._audit.record(
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

    def watch(self, resource_version: str) -> None:
        """Keep the budgets' status current, and wake the evictions that wait for one to allow. While
        the API server cannot be watched the budgets are not live: waiting evictions fall back to
        their backoff (and so meet the outage themselves)."""
        rv: str | None = resource_version
        deadline = self._deadline
        while deadline.running():
            try:
                if rv is None:
                    budgets, rv = self._kube.list_budgets()
                    with self._lock:
                        self._budgets = {b.key: b for b in budgets}
                        self.live = True
                        self._lock.notify_all()
                for kind, budget in self._kube.watch_budgets(
                    resource_version=rv, timeout=deadline.remaining(), stop=deadline.streams
                ):
                    rv = budget.resource_version or rv
                    with self._lock:
                        if kind is WatchEvent.DELETED:
                            self._budgets.pop(budget.key, None)
                        else:
                            self._budgets[budget.key] = budget
                        self._lock.notify_all()
                    if deadline.finished:
                        return
                if deadline.finished:
                    return
                rv = None  # expired or 410 Gone: relist
            except TransientError:
                with self._lock:
                    self.live = False
                    self._lock.notify_all()
                rv = None
                if not deadline.sleep(0.5):
                    return

    def turns(self, items: list[TrackedPod]) -> list[list[TrackedPod]]:
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

    def seen(self, key: str | None) -> str | None:
        """The budget's resourceVersion as the watch last saw it (None: not known)."""
        with self._lock:
            budget = self._budgets.get(key) if key else None
            return budget.resource_version if budget else None

    def settled(self, key: str, pod_name: str, before: str | None) -> bool:
        """The budget has changed since ``before`` and no longer lists ``pod_name`` as disrupted (the
        disruption controller saw it terminating). Called under the deadline's lock."""
        budget = self._budgets.get(key)
        return budget is None or (budget.resource_version != before and pod_name not in budget.disrupted_pods)

    def allows(self, key: str, seen: str | None) -> bool:
        """The budget has changed since ``seen`` and allows an eviction, or the watch is broken (then
        the caller's backoff decides). Called under the deadline's lock."""
        budget = self._budgets.get(key)
        return not self.live or (budget is not None and budget.resource_version != seen and budget.allows_eviction)
