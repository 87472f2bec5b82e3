"""Pure decisions: what a node event means, which pods to evict, when force is allowed.

Nothing here does I/O or reads the clock: ``now`` and snapshots come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from functions.decisions.logentry import EventKind
from functions.decisions.model import Node, Pod
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
OUR_NODE_ANNOTATIONS = (
    CORDON_EVENT_TIME,
    CORDONED_BY,
    CORDON_REASON,
    CORDON_EVENT_ID,
    CORDONED_AT,
    CORDON_BOOT_ID,
    WAS_UNSCHEDULABLE,
    CORDON_INSTANCE_ID,
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


@dataclass(frozen=True, kw_only=True)
class DrainPlan:
    """What one drain may do, fixed before it starts."""

    reason: str  # event kind or "manual"
    event_id: str
    event_time: datetime
    timeout: timedelta
    force_when_down: bool  # fenced force-cleanup of what is left once the VM is verified down
    instance_id: str | None = None


def plan_for_event(
    *,
    kind: EventKind,
    event_id: str,
    event_time: datetime,
    instance_id: str | None,
    deadlines: Mapping[EventKind, float],
    force_cleanup: bool,
) -> DrainPlan:
    return DrainPlan(
        reason=kind.value,
        event_id=event_id,
        event_time=event_time,
        timeout=timedelta(seconds=deadlines[kind]),
        force_when_down=force_cleanup and kind in FORCE_KINDS,
        instance_id=instance_id,
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


def recovery_decision(node: Node) -> RecoveryDecision:
    """What the scheduled recovery does with a node (pure)."""
    if not cordoned_by_us(node):
        return RecoveryDecision(action=RecoveryAction.NONE, reason="not cordoned by us")
    boot_then = node.annotations.get(CORDON_BOOT_ID, "")
    back = node.ready.status == "True" and bool(node.boot_id) and node.boot_id != boot_then
    if back:
        lift = lift_decision(node)
        return RecoveryDecision(action=lift.action, reason=f"back with a new boot ({node.boot_id}); {lift.reason}")
    event_time = cordon_event_time(node)
    if event_time is not None and verified_down(node, event_time=event_time):
        return RecoveryDecision(action=RecoveryAction.FORCE_CLEANUP, reason="verified down since the event")
    if node.ready.status == "True":
        return RecoveryDecision(action=RecoveryAction.WAIT, reason="Ready, but still the same boot: not back yet")
    return RecoveryDecision(action=RecoveryAction.WAIT, reason=f"Ready is {node.ready.status}: not verified down yet")


def release_annotations() -> dict[str, str | None]:
    """A merge patch that removes all our annotations."""
    return dict.fromkeys(OUR_NODE_ANNOTATIONS)
