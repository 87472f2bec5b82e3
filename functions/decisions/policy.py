"""Pure decisions: what a node event means, which pods to evict, when force is allowed.

Nothing here does I/O or reads the clock: ``now`` and snapshots come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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


def cordon_annotations(node: Node, plan: DrainPlan, *, now: datetime) -> dict[str, str]:
    """The annotations a cordon writes. The first cordon of ours records what was there before us;
    later events (or redeliveries) only update the reason, never the pre-existing state."""
    update = {
        CORDONED_BY: COMPONENT,
        CORDON_REASON: plan.reason,
        CORDON_EVENT_ID: plan.event_id,
        CORDON_EVENT_TIME: format_time(plan.event_time),
    }
    if node.annotations.get(CORDONED_BY) != COMPONENT:
        update |= {
            CORDONED_AT: format_time(now),
            CORDON_BOOT_ID: node.boot_id,
            WAS_UNSCHEDULABLE: "true" if node.unschedulable else "false",
        }
        if plan.instance_id:
            update[CORDON_INSTANCE_ID] = plan.instance_id
    return update


def cordon_needed(node: Node, plan: DrainPlan) -> bool:
    return not node.unschedulable or any(
        node.annotations.get(k) != v for k, v in ((CORDONED_BY, COMPONENT), (CORDON_EVENT_ID, plan.event_id))
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


def stale_event(node: Node, *, event_time: datetime, vm: VmInstance | None = None) -> str | None:
    """Why the node has come back since the event (so the event must not touch it), or None.

    Back means: the Node object was created after the event, or its Ready condition turned True
    after the event, or (when Compute Engine was asked) the instance started after the event."""
    if node.created_at is not None and node.created_at > event_time:
        return f"the Node was registered at {node.created_at.isoformat()}, after the event"
    ready = node.ready
    if ready.status == "True" and ready.last_transition is not None and ready.last_transition > event_time:
        return f"the node has been Ready since {ready.last_transition.isoformat()}, after the event"
    if vm is not None and vm.status == "RUNNING" and vm.last_start is not None and vm.last_start > event_time:
        return f"the instance was started at {vm.last_start.isoformat()}, after the event"
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
    event_time = cordon_event_time(node)
    if event_time is not None and verified_down(node, event_time=event_time):
        return RecoveryDecision(action=RecoveryAction.FORCE_CLEANUP, reason=f"verified down since the event{held}")
    if facts.vm_known:
        why = vm_down(facts.vm, instance_id=node.annotations.get(CORDON_INSTANCE_ID))
        if why:
            return RecoveryDecision(action=RecoveryAction.FORCE_CLEANUP, reason=f"verified down: {why}{held}")
    if node.ready.status == "True":
        return RecoveryDecision(
            action=RecoveryAction.WAIT, reason=f"Ready, but still the same boot: not back yet{held}"
        )
    return RecoveryDecision(
        action=RecoveryAction.WAIT, reason=f"Ready is {node.ready.status}: not verified down yet{held}"
    )


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
