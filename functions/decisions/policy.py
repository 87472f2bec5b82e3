"""Pure decisions: what a node event means, which pods to evict, when force is allowed.

Nothing here does I/O or reads the clock: ``now`` and snapshots come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from functions.decisions.logentry import EventKind
from functions.decisions.model import Budget, Node, Pod, Taint, VmInstance
from functions.decisions.names import ANNOTATION_PREFIX, COMPONENT, FIELD_MANAGER
from functions.decisions.times import format_time, parse_time

CORDONED_BY = ANNOTATION_PREFIX + "cordoned-by"
CORDON_REASON = ANNOTATION_PREFIX + "reason"
CORDON_EVENT_ID = ANNOTATION_PREFIX + "event-id"
CORDONED_AT = ANNOTATION_PREFIX + "cordoned-at"
CORDON_BOOT_ID = ANNOTATION_PREFIX + "boot-id"
WAS_UNSCHEDULABLE = ANNOTATION_PREFIX + "was-unschedulable"
CORDON_INSTANCE_ID = ANNOTATION_PREFIX + "instance-id"
CORDON_EVENT_TIME = ANNOTATION_PREFIX + "event-time"
TAINTED_AT = ANNOTATION_PREFIX + "out-of-service-at"  # set when the out-of-service taint is ours
DETACH_PENDING = ANNOTATION_PREFIX + "detach-pending"  # PVs attached to the node when we tainted it
FORCE_REQUESTED = ANNOTATION_PREFIX + "force"  # "true": an operator asked that the drain may force once off
FENCED_AT = ANNOTATION_PREFIX + "fenced-at"  # when the Node rule alone fenced the node (the storm cap counts it)
OUR_NODE_ANNOTATIONS = (
    CORDON_EVENT_TIME,
    CORDONED_BY,
    CORDON_REASON,
    CORDON_EVENT_ID,
    CORDONED_AT,
    CORDON_BOOT_ID,
    WAS_UNSCHEDULABLE,
    CORDON_INSTANCE_ID,
    TAINTED_AT,
    DETACH_PENDING,
    FORCE_REQUESTED,
    FENCED_AT,
)

POD_OPT_OUT = ANNOTATION_PREFIX + "skip-eviction"  # "true": never evict (reported on every drain)
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
GKE_INSTANCE_ID = "container.googleapis.com/instance_id"
CRITICAL_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})
CRITICAL_PRIORITY = 2_000_000_000

# Events after which the VM is (or is about to be) gone without a graceful shutdown of its pods:
# once the node is verified down, what is left may be force-deleted so controllers recreate it.
FORCE_KINDS = frozenset(
    {
        EventKind.PREEMPTED,
        EventKind.RECREATE,
        EventKind.HOST_ERROR,
        EventKind.GUEST_TERMINATE,
        EventKind.AUTOMATIC_RESTART,
        EventKind.TERMINATE_ON_HOST_MAINTENANCE,
    }
)


FORCE_REASONS = frozenset(k.value for k in FORCE_KINDS)
MANUAL = "manual"


def force_reason(reason: str, *, operator_force: bool) -> bool:
    """Invariant 1a: whether a drain for ``reason`` may ever force (force-delete, out-of-service taint).

    Only a forced kind of event (the VM is gone or going without a graceful shutdown of its pods) or
    an operator's explicit ``force`` allows it; a graceful delete or an unforced manual drain never does.
    Being allowed is never enough: the VM must also be verified off (:func:`fence_verdict`)."""
    return reason in FORCE_REASONS or (reason == MANUAL and operator_force)


def node_force_reason(node: Node) -> bool:
    """Whether our cordon on ``node`` records a reason that allows force (see :func:`force_reason`)."""
    return force_reason(
        node.annotations.get(CORDON_REASON, ""), operator_force=node.annotations.get(FORCE_REQUESTED) == "true"
    )


class PodAction(StrEnum):
    EVICT = "evict"
    DELETE = "delete"  # terminal pod: nothing runs, no budget applies
    WAIT = "wait"  # already terminating: wait for it (and force it when the node is down)
    SKIP = "skip"


@dataclass(frozen=True, kw_only=True)
class PodDecision:
    pod: Pod
    action: PodAction
    reason: str = ""
    critical: bool = False
    local_storage: bool = False
    unreplicated: bool = False

    @property
    def target(self) -> bool:
        """The drain is finished only when this pod is gone."""
        return self.action is not PodAction.SKIP


def is_critical(pod: Pod) -> bool:
    return pod.priority_class in CRITICAL_CLASSES or pod.priority >= CRITICAL_PRIORITY


def opted_out(pod: Pod) -> str | None:
    """Why the pod must not be evicted, or None."""
    if pod.annotations.get(POD_OPT_OUT, "").strip().lower() == "true":
        return f"opt-out annotation {POD_OPT_OUT}=true"
    if pod.annotations.get(SAFE_TO_EVICT, "").strip().lower() == "false":
        return f"{SAFE_TO_EVICT}=false"
    return None


def classify_pod(pod: Pod) -> PodDecision:
    """kubectl drain's filters, in kubectl's order, then the opt-outs."""
    flags = {
        "critical": is_critical(pod),
        "local_storage": pod.local_storage,
        "unreplicated": pod.controller is None,
    }
    if pod.deletion_timestamp is not None:
        return PodDecision(pod=pod, action=PodAction.WAIT, reason="already terminating", **flags)
    if pod.controller is not None and pod.controller.kind == "DaemonSet":
        return PodDecision(pod=pod, action=PodAction.SKIP, reason="managed by a DaemonSet", **flags)
    if pod.is_mirror:
        return PodDecision(pod=pod, action=PodAction.SKIP, reason="mirror (static) pod", **flags)
    if pod.phase in ("Succeeded", "Failed"):
        return PodDecision(pod=pod, action=PodAction.DELETE, reason=f"terminal pod ({pod.phase})", **flags)
    opt_out = opted_out(pod)
    if opt_out:
        return PodDecision(pod=pod, action=PodAction.SKIP, reason=opt_out, **flags)
    notes = []
    if pod.local_storage:
        notes.append("emptyDir data is lost")
    if pod.controller is None:
        notes.append("unreplicated: no controller recreates it")
    return PodDecision(pod=pod, action=PodAction.EVICT, reason="; ".join(notes), **flags)


def budget_of(pod: Pod, budgets: Iterable[Budget]) -> str | None:
    """The key of the one PodDisruptionBudget that governs the pod's eviction; None when no budget
    selects it, or when several do (the API server refuses those evictions outright)."""
    keys = [b.key for b in budgets if b.selects(pod)]
    return keys[0] if len(keys) == 1 else None


def eviction_turns(pods: Sequence[Pod], budgets: Iterable[Budget]) -> tuple[dict[str, list[Pod]], list[Pod]]:
    """Pods grouped by the budget that governs them, and the pods no single budget governs.

    The API server updates a budget's status for every eviction it allows, so evictions under one
    budget issued together conflict on it and it retries them with a 0.5 s step: the pods of one
    budget are evicted in turn, one request in flight, and the others all at once."""
    known = list(budgets)
    turns: dict[str, list[Pod]] = {}
    free: list[Pod] = []
    for pod in pods:
        key = budget_of(pod, known)
        if key is None:
            free.append(pod)
        else:
            turns.setdefault(key, []).append(pod)
    return turns, free


@dataclass(frozen=True, kw_only=True)
class DrainPlan:
    """What one drain may do, fixed before it starts."""

    reason: str  # event kind or "manual"
    event_id: str
    event_time: datetime
    timeout: timedelta
    force_when_down: bool  # fenced force-cleanup of what is left once the VM is verified down
    instance_id: str | None = None
    out_of_service_taint: bool = False  # once verified down: the non-graceful shutdown taint before the force
    operator_force: bool = False  # an operator asked for force (manual drains only)

    def __post_init__(self) -> None:
        # the one place every path (event, recovery, API, CLI) builds its plan: no reason, no force
        if (self.force_when_down or self.out_of_service_taint) and not force_reason(
            self.reason, operator_force=self.operator_force
        ):
            raise ValueError(f"a {self.reason!r} drain never forces: no force-delete, no out-of-service taint")
        if self.out_of_service_taint and not self.force_when_down:
            raise ValueError("the out-of-service taint is part of the fenced force-cleanup")


def plan_for_event(
    *,
    kind: EventKind,
    event_id: str,
    event_time: datetime,
    instance_id: str | None,
    deadlines: Mapping[EventKind, float],
    force_cleanup: bool,
    out_of_service_taint: bool = True,
) -> DrainPlan:
    force = force_cleanup and kind in FORCE_KINDS
    return DrainPlan(
        reason=kind.value,
        event_id=event_id,
        event_time=event_time,
        timeout=timedelta(seconds=deadlines[kind]),
        force_when_down=force,
        instance_id=instance_id,
        out_of_service_taint=force and out_of_service_taint,
    )


def stale_instance(node: Node, instance_id: str | None) -> bool:
    """True when the node runs a different VM than the event's (recreated under the same name)."""
    current = node.annotations.get(GKE_INSTANCE_ID)
    return bool(instance_id and current and current != instance_id)


HEARTBEAT_RESOLUTION = timedelta(seconds=1)  # Node condition times are whole seconds


def verified_down(node: Node, *, event_time: datetime) -> bool:
    """The fencing rule: never force-delete a pod while its kubelet may still run it.

    Down means the node-lifecycle controller has marked Ready ``Unknown`` (the kubelet stopped
    renewing its lease and posting status) and the kubelet's last heartbeat is older than the event.
    ``False`` is not enough: it is what a living kubelet reports when it is unhealthy, and a living
    kubelet may refresh an unchanged status only every few minutes.
    """
    ready = node.ready
    if ready.status != "Unknown":
        return False
    return ready.last_heartbeat is None or ready.last_heartbeat + HEARTBEAT_RESOLUTION <= event_time


def cordon_annotations(node: Node, plan: DrainPlan, *, now: datetime) -> dict[str, str | None]:
    """The annotations a cordon writes. The first cordon of ours records what was there before us;
    later events only update the reason and the boot they are about (a redelivery changes nothing
    recorded), never the pre-existing state."""
    update: dict[str, str | None] = {
        CORDONED_BY: COMPONENT,
        CORDON_REASON: plan.reason,
        CORDON_EVENT_ID: plan.event_id,
        CORDON_EVENT_TIME: format_time(plan.event_time),
    }
    if plan.operator_force or FORCE_REQUESTED in node.annotations:
        update[FORCE_REQUESTED] = "true" if plan.operator_force else None
    if node.annotations.get(CORDON_EVENT_ID) != plan.event_id:
        update[CORDON_BOOT_ID] = node.boot_id  # the incarnation this event is about...
        if plan.instance_id or CORDON_INSTANCE_ID in node.annotations:
            update[CORDON_INSTANCE_ID] = plan.instance_id  # ...and its VM ("replaced" is against this id)
    if node.annotations.get(CORDONED_BY) != COMPONENT:
        update |= {
            CORDONED_AT: format_time(now),
            CORDON_BOOT_ID: node.boot_id,
            WAS_UNSCHEDULABLE: "true" if node.unschedulable else "false",
        }
    return update


def cordon_needed(node: Node, plan: DrainPlan) -> bool:
    return not node.unschedulable or any(
        node.annotations.get(k) != v
        for k, v in ((CORDONED_BY, COMPONENT), (CORDON_EVENT_ID, plan.event_id))  # an event id is one plan
    )


# ------------------------------------------------------------------------- fencing
DOWN_VM_STATUSES = frozenset({"TERMINATED", "STOPPED"})


class DownSignal(StrEnum):
    COMPUTE = "compute"  # Compute Engine says the VM is off, gone or replaced
    NODE = "node"  # the node-lifecycle controller gave up on the kubelet (Ready Unknown)


def vm_down(vm: VmInstance | None, *, instance_id: str | None) -> str | None:
    """Why Compute Engine's answer means the event's VM is off, or None when it does not.

    404 (None), another id than the event's (the VM was replaced) and TERMINATED or STOPPED are
    down; RUNNING, STOPPING, PENDING_STOP, SUSPENDING, SUSPENDED, REPAIRING, PROVISIONING and
    STAGING of the same VM are not."""
    if vm is None:
        return "the VM no longer exists (instances.get: 404)"
    if instance_id and vm.id and vm.id != instance_id:
        return f"the VM was replaced (instance id {vm.id}, the event's was {instance_id})"
    if vm.status in DOWN_VM_STATUSES:
        return f"the VM is {vm.status}"
    return None


def node_down(node: Node, *, event_time: datetime) -> str | None:
    """Why the Node means its kubelet is gone, or None (see :func:`verified_down`)."""
    if not verified_down(node, event_time=event_time):
        return None
    heartbeat = node.ready.last_heartbeat
    return f"Ready is Unknown, last heartbeat {heartbeat.isoformat() if heartbeat else 'never'} (before the event)"


class VmAnswer(StrEnum):
    """What Compute Engine said about the node's VM."""

    ANSWERED = "answered"  # it described the VM, or said it does not exist (404 notFound)
    PENDING = "pending"  # asked, no answer yet: the Node rule waits for it
    UNAVAILABLE = "unavailable"  # it cannot answer (timeout, 5xx, 403) or the fence is switched off


@dataclass(frozen=True, kw_only=True)
class VmFacts:
    answer: VmAnswer
    vm: VmInstance | None = None  # when ANSWERED: None means the VM does not exist


VM_UNAVAILABLE = VmFacts(answer=VmAnswer.UNAVAILABLE)
VM_PENDING = VmFacts(answer=VmAnswer.PENDING)


@dataclass(frozen=True, kw_only=True)
class FenceVerdict:
    down: bool
    reason: str
    signal: DownSignal | None = None
    vetoed: bool = False  # the Node rule alone would say down, but Compute Engine says the VM is not off
    node_rule_only: bool = False  # down by the Node rule while Compute Engine could not answer: storm-capped


def fence_verdict(
    *, node: Node | None, vm: VmFacts, event_time: datetime, instance_id: str | None, boot_id: str | None = None
) -> FenceVerdict:
    """Invariant 2: whether the event's VM is verified off. Compute Engine outranks the Node rule.

    An answer decides: gone, replaced, TERMINATED or STOPPED are off; any other answer about that VM
    (RUNNING, STOPPING, SUSPENDED, REPAIRING, ...) vetoes the Node rule. Only when Compute Engine
    cannot answer does the Node rule decide (Ready Unknown, heartbeat before the event; a deleted
    Node object too); while its answer is pending, the Node rule waits for it.

    ``boot_id`` is the boot the event is about (recorded at our cordon): a node that has booted
    since runs a new kubelet, which may run the pods bound to it, so nothing is forced there."""
    if node is not None and boot_id and node.boot_id and node.boot_id != boot_id:
        return FenceVerdict(
            down=False, reason=f"the node has booted again since the event (boot {node.boot_id}): not forced"
        )
    node_says = "the Node object was deleted" if node is None else node_down(node, event_time=event_time)
    if vm.answer is VmAnswer.ANSWERED:
        off = vm_down(vm.vm, instance_id=instance_id)
        if off:
            return FenceVerdict(down=True, reason=off, signal=DownSignal.COMPUTE)
        status = vm.vm.status if vm.vm is not None else "unknown"
        return FenceVerdict(
            down=False,
            reason=f"Compute Engine says the VM is {status}, not off"
            + (f" (it outranks the Node rule: {node_says})" if node_says else ""),
            vetoed=bool(node_says),
        )
    if not node_says:
        ready = node.ready.status if node is not None else "gone"
        return FenceVerdict(down=False, reason=f"Ready is {ready}: not verified down yet")
    if vm.answer is VmAnswer.PENDING:
        return FenceVerdict(down=False, reason=f"{node_says}; waiting for Compute Engine's answer")
    return FenceVerdict(down=True, reason=node_says, signal=DownSignal.NODE, node_rule_only=True)


def storm_cap(nodes: int, *, share: float) -> int:
    """How many nodes of a cluster of ``nodes`` the Node rule alone may fence within the window (at least 1)."""
    return max(1, int(nodes * share))


def fenced_by_node_rule(nodes: Iterable[Node], *, now: datetime, window: timedelta) -> list[tuple[datetime, str]]:
    """(when, name) of the nodes the Node rule alone fenced within the window, oldest first: the
    order every instance agrees on, so concurrent drains agree who is within the cap."""
    fenced = []
    for node in nodes:
        at = parse_time(node.annotations.get(FENCED_AT))
        if at is not None and now - window <= at <= now + window:
            fenced.append((at, node.name))
    return sorted(fenced)


def within_storm_cap(fenced: Sequence[tuple[datetime, str]], *, name: str, cap: int) -> bool:
    """Whether ``name`` (which has recorded its own FENCED_AT) is among the first ``cap`` fenced."""
    names = [n for _, n in fenced]
    return name in names[:cap]


OUT_OF_SERVICE = Taint(key="node.kubernetes.io/out-of-service", value="nodeshutdown", effect="NoExecute")


def has_out_of_service_taint(node: Node) -> bool:
    return any(t.key == OUT_OF_SERVICE.key for t in node.taints)


def tainted_by_us(node: Node) -> bool:
    """Our out-of-service taint is on the node (we never count someone else's as ours)."""
    return TAINTED_AT in node.annotations and has_out_of_service_taint(node)


def taints_with_out_of_service(node: Node) -> list[dict[str, object]]:
    """The node's taints (as the API sent them) plus the out-of-service taint."""
    return [*(dict(t) for t in node.raw_taints), dict(OUT_OF_SERVICE.as_json())]


def taints_without_out_of_service(node: Node) -> list[dict[str, object]]:
    return [dict(t) for t in node.raw_taints if t.get("key") != OUT_OF_SERVICE.key]


def taint_annotations(*, now: datetime, attached_volumes: list[str]) -> dict[str, str | None]:
    return {TAINTED_AT: format_time(now), DETACH_PENDING: ",".join(sorted(attached_volumes)) or None}


# ---------------------------------------------------------------------- late events
def event_too_old(event_time: datetime, *, now: datetime, max_age: timedelta) -> str | None:
    age = now - event_time
    if age > max_age:
        return f"the event is {age.total_seconds():.0f} s old, more than the maximum of {max_age.total_seconds():g} s"
    return None


class Lateness(StrEnum):
    STALE = "stale"  # a replay of an old event: harmless
    EXPIRED = "expired"  # published in time, handled too late: deliveries failed, the event was lost


def lateness(
    event_time: datetime,
    *,
    now: datetime,
    max_age: timedelta,
    publish_time: datetime | None = None,
    delivery_attempt: int | None = None,
) -> tuple[Lateness, str] | None:
    """Whether an event is too old to act on, and whether that is a replay (stale) or a loss (expired).

    Expired: Pub/Sub counted failed deliveries (attempt > 1), or the message was published while the
    event was young (the sink published it in time and its deliveries failed until it aged out, or a
    subscription was sought back). A message published when the event was already old is a replay."""
    too_old = event_too_old(event_time, now=now, max_age=max_age)
    if too_old is None:
        return None
    failed = delivery_attempt is not None and delivery_attempt > 1
    young_when_published = publish_time is not None and publish_time - event_time <= max_age
    if failed or young_when_published:
        how = f"delivery attempt {delivery_attempt}" if failed else "published while it was young"
        return Lateness.EXPIRED, f"{too_old}; it was lost to failed deliveries ({how})"
    return Lateness.STALE, too_old


def stale_event(node: Node, *, event_id: str, event_time: datetime, vm: VmInstance | None = None) -> str | None:
    """Invariant 4: why the node or VM is another incarnation than the event's, or None.

    A new Node object (registered after the event), a new boot against the one recorded at our
    cordon for this very event, or (when Compute Engine answered) an instance started after the
    event. A Ready flap (API-server outage, kubelet restart, network blip) is not a new incarnation:
    a redelivery of the event whose cordon we hold continues its drain."""
    if node.created_at is not None and node.created_at > event_time:
        return f"the Node was registered at {format_time(node.created_at)}, after the event (a new Node)"
    if cordoned_by_us(node) and node.annotations.get(CORDON_EVENT_ID) == event_id:
        boot = node.annotations.get(CORDON_BOOT_ID, "")
        if boot and node.boot_id and node.boot_id != boot:
            return f"the node has booted again since our cordon for this event (boot {boot}, now {node.boot_id})"
    if vm is not None and vm.last_start is not None and vm.last_start > event_time:
        return f"the instance was started at {format_time(vm.last_start)}, after the event"
    return None


class RecoveryAction(StrEnum):
    NONE = "none"  # not ours
    WAIT = "wait"  # cordoned by us, node not back yet and not verified down
    UNCORDON = "uncordon"  # back: uncordon and remove our annotations
    RELEASE = "release"  # back, but the cordon is not ours to lift: remove our annotations only
    FORCE_CLEANUP = "force_cleanup"  # verified down: finish the fenced force-cleanup


@dataclass(frozen=True, kw_only=True)
class RecoveryDecision:
    action: RecoveryAction
    reason: str
    untaint: bool = False  # also remove our out-of-service taint (the node is back and nothing is left)
    held: bool = False  # WAIT although the node is back: our taint holds it (what an operator must hear of)
    vetoed: bool = False  # the Node rule alone said down; Compute Engine says the VM is not off


@dataclass(frozen=True, kw_only=True)
class NodeFacts:
    """What recovery learns beyond the Node, for a node that carries our out-of-service taint or
    when Compute Engine is asked."""

    vm_known: bool = False  # Compute Engine answered (then ``vm`` is its answer: None means 404)
    vm: VmInstance | None = None
    terminating_pods: tuple[str, ...] = ()  # pods on the node with a deletionTimestamp
    attached_volumes: tuple[str, ...] = ()  # PVs recorded at taint time still attached to the node


def cordoned_by_us(node: Node) -> bool:
    return node.annotations.get(CORDONED_BY) == COMPONENT


def cordon_event_time(node: Node) -> datetime | None:
    """The event behind our cordon (its time, or the cordon time for older annotations)."""
    return parse_time(node.annotations.get(CORDON_EVENT_TIME)) or parse_time(node.annotations.get(CORDONED_AT))


def lift_decision(node: Node) -> RecoveryDecision:
    """Whether our cordon may be lifted, once the node is known to be back (or an operator says so)."""
    if node.annotations.get(WAS_UNSCHEDULABLE) == "true":
        return RecoveryDecision(
            action=RecoveryAction.RELEASE, reason="the node was unschedulable before we cordoned it: left cordoned"
        )
    if not node.unschedulable:
        return RecoveryDecision(action=RecoveryAction.RELEASE, reason="already schedulable: someone uncordoned it")
    if node.unschedulable_manager not in (None, FIELD_MANAGER):
        return RecoveryDecision(
            action=RecoveryAction.RELEASE,
            reason=f"cordoned again by {node.unschedulable_manager} after us: left cordoned",
        )
    return RecoveryDecision(action=RecoveryAction.UNCORDON, reason="our cordon")


def pending_detach(node: Node) -> frozenset[str]:
    """The PVs that were attached to the node when we tainted it."""
    return frozenset(v for v in node.annotations.get(DETACH_PENDING, "").split(",") if v)


def _taint_waits(node: Node, facts: NodeFacts) -> list[str]:
    """What keeps our out-of-service taint on a node that is back."""
    waits = []
    if facts.vm_known:
        current = node.annotations.get(GKE_INSTANCE_ID)
        if facts.vm is None or facts.vm.status != "RUNNING":
            waits.append(f"the instance is {facts.vm.status if facts.vm else 'gone'}, not RUNNING")
        elif current and facts.vm.id and facts.vm.id != current:
            waits.append(f"the instance {facts.vm.id} is not the node's current instance {current}")
    if facts.terminating_pods:
        waits.append(f"{len(facts.terminating_pods)} pod(s) still terminating on the node")
    if facts.attached_volumes:
        waits.append(f"volume(s) {', '.join(facts.attached_volumes)} still attached to the node")
    return waits


def recovery_decision(node: Node, facts: NodeFacts | None = None) -> RecoveryDecision:
    """What the scheduled recovery does with a node (pure)."""
    facts = facts or NodeFacts()
    cordon_ours, taint_ours = cordoned_by_us(node), tainted_by_us(node)
    if not cordon_ours and not taint_ours:
        return RecoveryDecision(action=RecoveryAction.NONE, reason="not cordoned by us")
    boot_then = node.annotations.get(CORDON_BOOT_ID, "")
    back = node.ready.status == "True" and bool(node.boot_id) and node.boot_id != boot_then
    if back:
        boot = f"back with a new boot ({node.boot_id})"
        if taint_ours:
            waits = _taint_waits(node, facts)
            if waits:
                return RecoveryDecision(
                    action=RecoveryAction.WAIT,
                    reason=f"{boot}; out-of-service taint kept: {'; '.join(waits)}",
                    held=True,
                )
        lift = lift_decision(node) if cordon_ours else RecoveryDecision(action=RecoveryAction.RELEASE, reason="")
        untaint = "; our out-of-service taint removed" if taint_ours else ""
        return RecoveryDecision(
            action=lift.action, reason=f"{boot}{untaint}; {lift.reason}".rstrip("; "), untaint=taint_ours
        )
    held = "; out-of-service taint kept until the node is back" if taint_ours else ""
    if not node_force_reason(node):
        reason = node.annotations.get(CORDON_REASON) or "unknown"
        return RecoveryDecision(
            action=RecoveryAction.WAIT,
            reason=f"cordoned for a {reason} drain, which never forces: waiting for the node to come back{held}",
        )
    event_time = cordon_event_time(node)
    vm = VmFacts(answer=VmAnswer.ANSWERED, vm=facts.vm) if facts.vm_known else VM_UNAVAILABLE
    if event_time is None and not facts.vm_known:
        return RecoveryDecision(
            action=RecoveryAction.WAIT, reason=f"no event time recorded and Compute Engine not asked{held}"
        )
    verdict = fence_verdict(
        node=node,
        vm=vm,
        event_time=event_time or datetime.min.replace(tzinfo=UTC),  # the Node rule needs the event's time
        instance_id=node.annotations.get(CORDON_INSTANCE_ID),
        boot_id=node.annotations.get(CORDON_BOOT_ID),
    )
    if verdict.down:
        return RecoveryDecision(action=RecoveryAction.FORCE_CLEANUP, reason=f"verified down: {verdict.reason}{held}")
    if node.ready.status == "True" and not facts.vm_known:
        return RecoveryDecision(
            action=RecoveryAction.WAIT, reason=f"Ready, but still the same boot: not back yet{held}"
        )
    return RecoveryDecision(action=RecoveryAction.WAIT, reason=f"{verdict.reason}{held}", vetoed=verdict.vetoed)


class UncordonRefused(StrEnum):
    NOT_OURS = "not_ours"
    TAINTED = "tainted"  # our out-of-service taint is there: lifted only with the taint (untaint)
    NOT_OUR_CORDON = "not_our_cordon"  # the cordon is not ours to lift: force


def uncordon_decision(node: Node, *, force: bool, untaint: bool) -> RecoveryDecision | UncordonRefused:
    """An operator's uncordon (pure). Invariant 6: our records never go while our taint stays, so a
    node with our taint is lifted only with ``untaint`` (taint and cordon together)."""
    cordon_ours, tainted = cordoned_by_us(node), tainted_by_us(node)
    if not cordon_ours and not tainted:
        return UncordonRefused.NOT_OURS
    if tainted and not untaint:
        return UncordonRefused.TAINTED
    decision = (
        lift_decision(node)
        if cordon_ours
        else RecoveryDecision(action=RecoveryAction.RELEASE, reason="the cordon is not ours: kept")
    )
    if decision.action is not RecoveryAction.UNCORDON and node.unschedulable and cordon_ours:
        if not force:
            return UncordonRefused.NOT_OUR_CORDON
        decision = RecoveryDecision(
            action=RecoveryAction.UNCORDON, reason=f"forced by the operator ({decision.reason})"
        )
    if tainted:
        decision = RecoveryDecision(
            action=decision.action,
            reason=f"{decision.reason}; our out-of-service taint removed by the operator",
            untaint=True,
        )
    return decision


def same_for_lift(before: Node, after: Node) -> bool:
    """Whether a node that changed since it was read (a conflict on our guarded patch) changed only in
    what a lift does not depend on (status heartbeats, other annotations), so the lift may be retried."""
    ours = set(OUR_NODE_ANNOTATIONS)
    return (
        before.boot_id == after.boot_id
        and before.unschedulable == after.unschedulable
        and before.unschedulable_manager == after.unschedulable_manager
        and before.ready.status == after.ready.status
        and {k: v for k, v in before.annotations.items() if k in ours}
        == {k: v for k, v in after.annotations.items() if k in ours}
        and has_out_of_service_taint(before) == has_out_of_service_taint(after)
    )


def release_annotations() -> dict[str, str | None]:
    """A merge patch that removes all our annotations."""
    return dict.fromkeys(OUR_NODE_ANNOTATIONS)
