"""The fence: whether the node's VM is verified off, and the out-of-service taint once it is.

Two watchers gather the facts (the Node, and Compute Engine's answer about the VM); each new fact is
judged by :func:`functions.decisions.policy.fence_verdict`: Compute Engine outranks the Node rule,
and when the Node rule alone says down, storm protection caps how many nodes of the cluster are
fenced at once. Nothing here forces anything: the drain forces once :meth:`Fence.down` says so.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from functions.decisions import policy
from functions.decisions.actions import Action, Severity
from functions.decisions.model import Node
from functions.decisions.policy import DrainPlan
from functions.decisions.times import format_time
from functions.engines.drain.deadline import Deadline
from functions.errors import DrainerError, TransientError
from functions.gateways.audit import Audit
from functions.gateways.compute import ComputeClient
from functions.gateways.google_api import GoogleApiError, GoogleDenied
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import Conflict
from functions.gateways.kube.events import EventRecorder

FENCE_POLL_START = 0.5  # Compute Engine is asked again with this backoff while the VM is still STOPPING
FENCE_POLL_MAX = 3.0
TAINT_ATTEMPTS = 5


class _Unset:
    """The type of a fact not given (a Node may be None: deleted)."""


_UNSET = _Unset()


@dataclass(frozen=True, kw_only=True)
class Verified:
    """How the node was verified down."""

    signal: policy.DownSignal
    reason: str
    at: float  # on the deadline's clock


@dataclass(kw_only=True)
class Fence:
    kube: ClusterClient
    node: Node  # as cordoned: the Node the event is about
    plan: DrainPlan
    deadline: Deadline
    audit: Audit
    events: EventRecorder | None  # None: no Events (a dry run writes none)
    compute: ComputeClient | None  # the fast fence; None: only the Node rule
    wall: Callable[[], datetime]
    dry_run: bool
    storm_share: float  # the Node rule alone fences at most this share of the cluster's nodes...
    storm_window: float  # ...within this many seconds

    def __post_init__(self) -> None:
        self.verified: Verified | None = None
        self.tainted = False  # this drain added the out-of-service taint
        self._lock = self.deadline.lock
        self._node_seen: Node | None = self.node  # the fence's facts: the Node as last seen (None: deleted)...
        self._vm_seen = policy.VM_PENDING if self.compute is not None else policy.VM_UNAVAILABLE  # ...and the VM
        self._vetoed = False
        self._storm_lock = threading.Lock()
        self._storm_decided: bool | None = None

    def down(self) -> bool:
        """The node is verified down."""
        return self.verified is not None

    # ------------------------------------------------------------ the facts
    def watch_node(self) -> None:
        """The Node rule's facts: watch the Node until the fence decides (see :meth:`_judge`)."""
        node = self.node
        current: Node | None = node
        rv = node.resource_version
        deadline = self.deadline
        while deadline.running() and not self.down():
            try:
                self._judge(node=current)
                if current is None or self.down():  # the Node object was deleted: nothing to watch
                    return
                for _, seen in self.kube.watch_node(
                    self.node.name, resource_version=rv, timeout=deadline.remaining(), stop=deadline.streams
                ):
                    rv = seen.resource_version
                    if seen.uid != node.uid:  # registered again: a kubelet runs there, not the event's
                        return
                    self._judge(node=seen)
                    if deadline.finished or self.down():
                        return
                if deadline.finished:  # the stream was closed because the drain ended
                    return
                current = self.kube.get_node(self.node.name)
                if current is not None and current.uid != node.uid:  # registered again: never forced here
                    return
                rv = current.resource_version if current else rv
            except TransientError:
                if not deadline.sleep(0.5):
                    return

    def watch_vm(self) -> None:
        """Compute Engine's facts: ask instances.get, with a short backoff while the VM is still
        stopping, until it says the VM is off, gone or replaced. An error is never "down": it is
        audited once and, while Compute Engine cannot answer, the Node rule decides (403: stop
        asking; 5xx, timeouts: ask again, and a later answer outranks the Node rule again)."""
        location = self.node.location
        if self.compute is None or location is None:
            self._judge(vm=policy.VM_UNAVAILABLE)  # nothing to ask: the Node rule decides
            return
        project, zone, name = location
        delay = FENCE_POLL_START
        reported = False
        while self.deadline.running() and not self.down():
            try:
                vm = self.compute.get_instance(project=project, zone=zone, name=name)
            except GoogleApiError as exc:
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
                if isinstance(exc, GoogleDenied):
                    return
            else:
                self._judge(vm=policy.VmFacts(answer=policy.VmAnswer.ANSWERED, vm=vm))
            if self.down() or not self.deadline.sleep(delay):
                return
            delay = min(delay * 2, FENCE_POLL_MAX)

    def check_once(self) -> None:
        """Dry run: the fence's answer now, without waiting."""
        node = self.node
        vm = policy.VM_UNAVAILABLE
        if self.compute is not None and node.location is not None:
            project, zone, name = node.location
            with contextlib.suppress(GoogleApiError):
                answer = self.compute.get_instance(project=project, zone=zone, name=name)
                vm = policy.VmFacts(answer=policy.VmAnswer.ANSWERED, vm=answer)
        self._judge(node=node, vm=vm)

    # -------------------------------------------------------------- verdict
    def _judge(self, *, node: Node | _Unset | None = _UNSET, vm: policy.VmFacts | None = None) -> None:
        """Record a new fact (the Node as last seen, or Compute Engine's answer) and apply the fence:
        Compute Engine outranks the Node rule; the Node rule alone is storm-capped."""
        with self._lock:
            if not isinstance(node, _Unset):
                self._node_seen = node
            if vm is not None:
                self._vm_seen = vm
            if self.down():
                return
            verdict = policy.fence_verdict(
                node=self._node_seen,
                vm=self._vm_seen,
                event_time=self.plan.event_time,
                instance_id=self.plan.instance_id,
                boot_id=self.node.annotations.get(policy.CORDON_BOOT_ID),
            )
            veto = verdict.vetoed and not self._vetoed
            self._vetoed = self._vetoed or verdict.vetoed
        if veto:
            vm_status = self._vm_seen.vm.status if self._vm_seen.vm is not None else None
            self.audit.record(
                Action.FENCE_VETOED,
                f"{self.node.name}: {verdict.reason}; nothing is forced while the VM may run",
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
                    f"{self.node.name} is not forced on the Node rule alone",
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
                f"{self.node.name} is Unknown but Compute Engine cannot answer, and {fenced} node(s) of "
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
        before = [f for f in policy.fenced_by_node_rule(nodes, now=now, window=window) if f[1] != self.node.name]
        if self.dry_run:
            return len(before) < cap, len(before), cap
        if len(before) >= cap:
            return False, len(before), cap
        mine = self.kube.get_node(self.node.name)
        if mine is None or mine.uid != self.node.uid:
            return False, len(before), cap
        self.kube.patch_node(self.node.name, uid=mine.uid, annotations={policy.FENCED_AT: format_time(now)})
        fenced = policy.fenced_by_node_rule(self.kube.list_nodes(), now=now, window=window)
        if policy.within_storm_cap(fenced, name=self.node.name, cap=cap):
            return True, len(before), cap
        with contextlib.suppress(Conflict):  # taken back; a Node replaced meanwhile has none of it
            self.kube.patch_node(self.node.name, uid=mine.uid, annotations={policy.FENCED_AT: None})
        return False, len([f for f in fenced if f[1] != self.node.name]), cap

    def _mark_down(self, signal: policy.DownSignal, reason: str) -> None:
        with self._lock:
            if self.down():
                return
            self.verified = Verified(signal=signal, reason=reason, at=self.deadline.clock())
            self._lock.notify_all()
        self.audit.record(
            Action.NODE_VERIFIED_DOWN,
            f"{self.node.name} verified down by {signal.value}: {reason}",
            signal=signal.value,
            reason=reason,
            event_time=self.plan.event_time,
        )
        if self.events is not None:
            self.events.verified_down(self.node, signal=f"{signal.value}: {reason}")

    # ---------------------------------------------------------------- taint
    def attached_volumes(self) -> list[str]:
        """The PVs still attached to the node (empty when they cannot be listed: never blocks)."""
        try:
            return sorted(a.persistent_volume or a.name for a in self.kube.list_volume_attachments(node=self.node.name))
        except DrainerError:
            return []

    def taint(self, node: Node) -> None:
        """Add the out-of-service taint (guarded by resourceVersion), recorded as ours."""
        current: Node | None = node
        for _ in range(TAINT_ATTEMPTS):
            if current is None:
                return
            if policy.has_out_of_service_taint(current):
                if not policy.tainted_by_us(current):
                    self.audit.record(
                        Action.NODE_TAINTED,
                        f"{self.node.name} already carries an out-of-service taint that is not ours: left as it is",
                        ours=False,
                    )
                return
            attached = self.attached_volumes()
            try:
                self.kube.patch_node(
                    self.node.name,
                    uid=current.uid,
                    resource_version=current.resource_version,
                    taints=policy.taints_with_out_of_service(current),
                    annotations=policy.taint_annotations(now=self.wall(), attached_volumes=attached),
                    dry_run=self.dry_run,
                )
            except Conflict:
                current = self.kube.get_node(self.node.name)
                continue
            except DrainerError as exc:  # the force-cleanup still runs; volumes then wait for Kubernetes
                self.audit.record(
                    Action.NODE_TAINT_FAILED,
                    f"could not taint {self.node.name} out of service: {exc}",
                    severity=Severity.ERROR,
                    error=str(exc),
                )
                return
            self.tainted = not self.dry_run
            why = self.verified.reason if self.verified else ""
            if self.events is not None:
                self.events.out_of_service_taint_added(current, why=why)
            self.audit.record(
                Action.NODE_TAINTED,
                f"{'would taint' if self.dry_run else 'tainted'} {self.node.name} "
                f"{policy.OUT_OF_SERVICE.key}={policy.OUT_OF_SERVICE.value}:{policy.OUT_OF_SERVICE.effect} ({why})",
                ours=True,
                attached_volumes=attached,
                signal=self.verified.signal.value if self.verified else None,
                dry_run=self.dry_run,
            )
            return
