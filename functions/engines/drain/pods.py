"""The pods a drain acts on: what happened to each (:class:`TrackedPod`), the table of them that the
pod watch keeps current (:class:`Pods`), and what the drain says about each (:class:`PodLog`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from functions.decisions.actions import Action, Severity
from functions.decisions.model import Pod
from functions.decisions.policy import PodDecision
from functions.engines.drain.deadline import Deadline
from functions.errors import TransientError
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.events import EventRecorder
from functions.gateways.kube.watch import WatchEvent


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


@dataclass
class TrackedPod:
    decision: PodDecision
    gone: bool = False
    result: PodResult | None = None
    last_message: str = ""
    pdb: str | None = None
    transient: bool = False
    budget: str | None = None  # the key of the one PodDisruptionBudget that governs its eviction
    refusals: int = 0  # evictions of it refused (429) before one was accepted
    finalizers: tuple[str, ...] = ()  # force-deleted, the API server keeps it for these


class Pods:
    """The pods the drain acts on, by UID; read and changed under the deadline's lock."""

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._lock = deadline.lock
        self._tracked: dict[str, TrackedPod] = {}

    def track(self, decision: PodDecision) -> TrackedPod:
        with self._lock:
            item = self._tracked[decision.pod.uid] = TrackedPod(decision=decision)
            return item

    def items(self) -> list[TrackedPod]:
        with self._lock:
            return list(self._tracked.values())

    def pending(self, *, critical: bool | None = None) -> list[TrackedPod]:
        """The targets not gone yet (``critical``: only those that are, or are not, system-critical)."""
        with self._lock:
            return [
                i
                for i in self._tracked.values()
                if not i.gone and i.decision.target and (critical is None or i.decision.critical == critical)
            ]

    def watch(self, kube: ClusterClient, node_name: str, resource_version: str) -> None:
        """Mark each pod gone when the watch on the node's pods sees it deleted (relists on expiry)."""
        rv = resource_version
        deadline = self._deadline
        while deadline.running():
            try:
                for kind, pod in kube.watch_pods_on_node(
                    node_name, resource_version=rv, timeout=deadline.remaining(), stop=deadline.streams
                ):
                    self.observe(kind, pod)
                    if deadline.finished:
                        return
                if deadline.finished:  # the stream was closed because the drain ended
                    return
                # expired or 410 Gone: relist and reconcile
                pods, rv = kube.list_pods_on_node(node_name)
                self.reconcile(pods)
            except TransientError:
                if not deadline.sleep(0.5):
                    return

    def observe(self, kind: WatchEvent, pod: Pod) -> None:
        with self._lock:
            item = self._tracked.get(pod.uid)
            if item is not None and kind is WatchEvent.DELETED and not item.gone:
                item.gone = True
                self._lock.notify_all()

    def reconcile(self, pods: Iterable[Pod]) -> None:
        """Every tracked pod not in ``pods`` (the node's pods as listed now) is gone."""
        present = {p.uid for p in pods}
        with self._lock:
            for uid, item in self._tracked.items():
                if uid not in present and not item.gone:
                    item.gone = True
            self._lock.notify_all()


@dataclass(frozen=True, kw_only=True)
class PodLog:
    """The audit record of what the drain did to a pod, and the Kubernetes Event on the pod."""

    audit: Audit
    events: EventRecorder | None  # None: no Events (a dry run writes none)
    node_name: str

    def record(
        self, item: TrackedPod, action: Action, message: str, *, severity: Severity = Severity.INFO, **extra: object
    ) -> None:
        pod = item.decision.pod
        self.audit.record(action, message, severity=severity, pod=pod.key, pod_uid=pod.uid, **extra)
        self.event(item, action)

    def event(self, item: TrackedPod, action: Action) -> None:
        """The Kubernetes Event on the pod for an audited action."""
        if self.events is None:
            return
        pod = item.decision.pod
        if action is Action.POD_EVICTED:
            self.events.evicted(pod, node=self.node_name, why=item.decision.reason)
        elif action is Action.POD_BLOCKED:
            self.events.eviction_blocked(pod, node=self.node_name, pdb=item.pdb, message=item.last_message)
        elif action is Action.POD_FORCE_DELETED:
            self.events.force_deleted(pod, node=self.node_name)
