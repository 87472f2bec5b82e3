"""The drain of one node of one cluster, against a deadline: cordon, classify, start the watchers,
evict, wait, fence, force, report. Each step's work lives in a module of its own (see the package)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from functions.decisions import policy
from functions.decisions.actions import Action
from functions.decisions.model import Node, Pod
from functions.decisions.policy import DrainPlan, PodAction
from functions.engines.drain.budgets import Budgets
from functions.engines.drain.cordon import Cordoned, NodeGone, cordon
from functions.engines.drain.deadline import Deadline
from functions.engines.drain.evictions import Evictions
from functions.engines.drain.fence import Fence
from functions.engines.drain.force import force_delete
from functions.engines.drain.pods import PodLog, PodResult, Pods
from functions.engines.drain.report import DrainReport, PodReport, build_report
from functions.gateways.audit import Audit
from functions.gateways.compute import ComputeClient
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.events import EventRecorder

WATCHER_JOIN_MARGIN = 5.0  # s beyond one request's timeout that the end of a drain waits for its watchers


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
        self._deadline = Deadline(self.plan.timeout.total_seconds(), clock=self.clock)
        self._events = None if self.dry_run else self.events
        self._pods = Pods(self._deadline)
        self._log = PodLog(audit=self.audit, events=self._events, node_name=self.node_name)
        self._budgets = Budgets(kube=self.kube, deadline=self._deadline, audit=self.audit)

    def run(self) -> DrainReport:
        cordoned = cordon(
            self.kube,
            self.node_name,
            self.plan,
            node_uid=self.node_uid,
            audit=self.audit,
            events=self._events,
            wall=self.wall,
            dry_run=self.dry_run,
        )
        listed, rv = self.kube.list_pods_on_node(self.node_name)
        skipped = self._classify(listed)
        fence = self._fence(cordoned.node)
        watchers = self._watchers(rv, fence)
        for thread in watchers:
            thread.start()
        try:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="evict") as pool:
                self._evict(pool, fence)
                if self.plan.force_when_down:
                    self._force_once_down(cordoned.node, fence)
                self._deadline.finish()
        finally:
            self._deadline.finish()
            # no watch stream or watcher outlives the drain: close the streams, then await the threads
            self._deadline.streams.close()
            for thread in watchers:
                thread.join(timeout=self.kube.timeout + WATCHER_JOIN_MARGIN)
        return self._report(cordoned, skipped, fence)

    def _classify(self, pods: list[Pod]) -> list[PodReport]:
        """Track the pods to act on; report (and audit) the ones skipped."""
        skipped = []
        for d in map(policy.classify_pod, pods):
            if d.action is PodAction.SKIP:
                skipped.append(PodReport(pod=d.pod.key, result=PodResult.SKIPPED, reason=d.reason))
                self.audit.record(
                    Action.POD_SKIPPED, f"skipped {d.pod.key}: {d.reason}", pod=d.pod.key, reason=d.reason
                )
                if self._events is not None and policy.opted_out(d.pod):
                    self._events.skipped(d.pod, node=self.node_name, why=d.reason)
            else:
                self._pods.track(d)
        return skipped

    def _fence(self, node: Node) -> Fence:
        return Fence(
            kube=self.kube,
            node=node,
            plan=self.plan,
            deadline=self._deadline,
            audit=self.audit,
            events=self._events,
            compute=self.compute,
            wall=self.wall,
            dry_run=self.dry_run,
            storm_share=self.storm_share,
            storm_window=self.storm_window,
        )

    def _watchers(self, rv: str, fence: Fence) -> list[threading.Thread]:
        """The threads that watch the budgets, the node's pods and, when the plan forces, the fence's
        facts (a dry run asks the fence once instead, and watches nothing)."""
        watchers = []
        evicting = any(i.decision.action is PodAction.EVICT for i in self._pods.items())
        budgets_rv = self._budgets.load() if evicting and not self.dry_run else None
        if budgets_rv is not None:
            self._budgets.watched = True
            watchers.append(self._thread("drain-budgets", self._budgets.watch, budgets_rv))
        force = self.plan.force_when_down
        if not self.dry_run:
            watchers.append(self._thread("drain-pods", self._pods.watch, self.kube, self.node_name, rv))
            if force:
                watchers.append(self._thread("drain-node", fence.watch_node))
                watchers.append(self._thread("drain-vm", fence.watch_vm))
        elif force:
            fence.check_once()
        return watchers

    @staticmethod
    def _thread(name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        return threading.Thread(target=target, args=args, name=name, daemon=True)

    def _evict(self, pool: ThreadPoolExecutor, fence: Fence) -> None:
        """Evict the pods, the budgets' sequences first (the drain's longest path), system-critical
        pods last; delete terminal pods. Waits until they are gone, the deadline, or the node is
        verified down when the plan forces."""
        pods = self._pods
        evictions = Evictions(
            kube=self.kube,
            deadline=self._deadline,
            budgets=self._budgets,
            log=self._log,
            dry_run=self.dry_run,
            force_when_down=self.plan.force_when_down,
            down=fence.down,
        )
        normal = [i for i in pods.pending(critical=False) if i.decision.action is PodAction.EVICT]
        turns = self._budgets.turns(normal)
        futures = [pool.submit(evictions.in_turn, turn) for turn in turns if len(turn) > 1]
        for item in pods.pending():
            if item.decision.action is PodAction.DELETE:
                pool.submit(evictions.delete_terminal, item)
        futures += [pool.submit(evictions.in_turn, turn) for turn in turns if len(turn) == 1]
        self._settle(futures, lambda: bool(pods.pending(critical=False)), fence)
        critical = [i for i in pods.pending(critical=True) if i.decision.action is PodAction.EVICT]
        futures = [pool.submit(evictions.in_turn, turn) for turn in self._budgets.turns(critical)]
        self._settle(futures, lambda: bool(pods.pending()), fence)

    def _settle(self, futures: list[Future[None]], busy: Callable[[], bool], fence: Fence) -> None:
        """A dry run: until the evictions have answered. Else until ``busy()`` is false, the deadline,
        or the node is verified down when the plan forces."""
        if self.dry_run:
            for f in futures:
                f.result()
        else:
            force = self.plan.force_when_down
            self._deadline.wait_while(lambda: busy() and not (force and fence.down()))

    def _force_once_down(self, node: Node, fence: Fence) -> None:
        """Once the node is verified down: the out-of-service taint, then force-delete what is left."""
        pending = self._pods.pending
        # Every pod went, but a dead kubelet leaves its volumes listed in use: the
        # replacements wait on them until the node is tainted, so wait for the fence.
        taint_wanted = self.plan.out_of_service_taint and not self.dry_run
        if taint_wanted and not pending() and fence.attached_volumes():
            self._deadline.wait_for(fence.down, max(0.0, self._deadline.remaining()))
        if not fence.down():
            return
        fresh = self.kube.get_node(self.node_name) or node
        if fresh.uid != node.uid:  # registered again: its kubelet may run the pods
            raise NodeGone(self.node_name, why="was registered again during the drain (a new UID)")
        if self.plan.out_of_service_taint and (pending() or fence.attached_volumes()):
            fence.taint(fresh)
        if pending():
            force_delete(
                pending(),
                fresh,
                kube=self.kube,
                deadline=self._deadline,
                log=self._log,
                plan=self.plan,
                dry_run=self.dry_run,
                concurrency=self.concurrency,
            )
            if not self.dry_run:
                self._deadline.wait_while(lambda: bool(pending()))

    def _report(self, cordoned: Cordoned, skipped: list[PodReport], fence: Fence) -> DrainReport:
        with self._deadline.lock:
            return build_report(
                self._pods.items(),
                skipped=skipped,
                node=self.node_name,
                cluster=self.kube.cluster.name,
                plan=self.plan,
                dry_run=self.dry_run,
                cordoned=cordoned.changed,
                was_unschedulable=cordoned.was_unschedulable,
                verified=fence.verified,
                tainted=fence.tainted,
                now=self._deadline.clock(),
                started=self._deadline.started,
            )
