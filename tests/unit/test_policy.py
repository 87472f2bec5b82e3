"""Unit tests for functions.policy: pod classification, fencing, drain plans and cordon annotations (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from functions.decisions.logentry import EventKind
from functions.decisions.model import MIRROR_ANNOTATION, Node, Owner, Pod, ReadyCondition
from functions.decisions.names import COMPONENT
from functions.decisions.policy import (
    CORDON_BOOT_ID,
    CORDON_EVENT_ID,
    CORDON_EVENT_TIME,
    CORDON_INSTANCE_ID,
    CORDON_REASON,
    CORDONED_AT,
    CORDONED_BY,
    DETACH_PENDING,
    FENCED_AT,
    FORCE_KINDS,
    FORCE_REQUESTED,
    GKE_INSTANCE_ID,
    OUR_NODE_ANNOTATIONS,
    POD_OPT_OUT,
    SAFE_TO_EVICT,
    TAINTED_AT,
    WAS_UNSCHEDULABLE,
    DrainPlan,
    PodAction,
    PodDecision,
    classify_pod,
    cordon_annotations,
    cordon_needed,
    plan_for_event,
    stale_instance,
    verified_down,
)

EVENT_TIME = datetime(2026, 10, 2, 8, 14, 7, tzinfo=UTC)
NOW = datetime(2026, 10, 2, 8, 14, 9, tzinfo=UTC)
EVENT_ID = "systemevent-1759392840201-6400a1b2c3d4e-5f6a7b8c-9d0e1f2a"
OTHER_EVENT_ID = "operation-1759397411090-64011d2e3f4a5-6b7c8d9e-0f1a2b3c"
INSTANCE_ID = "7310455628112203391"
OTHER_INSTANCE_ID = "5521908431777125013"
BOOT_ID = "0f6c1f7e-8a3b-4d2c-9e5f-1a2b3c4d5e6f"
NODE_NAME = "gke-payments-spot-pool-3f1c2a9e-x7k2"

REPLICA_SET = Owner(kind="ReplicaSet", name="checkout-7d9f8c6b5")
DAEMON_SET = Owner(kind="DaemonSet", name="fluentbit-gke")
STATEFUL_SET = Owner(kind="StatefulSet", name="ledger")
JOB = Owner(kind="Job", name="nightly-report-29321")
NODE_OWNER = Owner(kind="Node", name=NODE_NAME)


def make_pod(
    *,
    name: str = "checkout-7d9f8c6b5-abcde",
    namespace: str = "payments",
    phase: str = "Running",
    controller: Owner | None = REPLICA_SET,
    annotations: Mapping[str, str] | None = None,
    deletion_timestamp: datetime | None = None,
    local_storage: bool = False,
    priority: int = 0,
    priority_class: str = "",
) -> Pod:
    """A running, ReplicaSet-owned pod on NODE_NAME unless told otherwise."""
    return Pod(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        node_name=NODE_NAME,
        phase=phase,
        controller=controller,
        annotations=dict(annotations or {}),
        labels={"app": name.split("-", maxsplit=1)[0]},
        deletion_timestamp=deletion_timestamp,
        local_storage=local_storage,
        priority=priority,
        priority_class=priority_class,
    )


def make_node(
    *,
    unschedulable: bool = False,
    annotations: Mapping[str, str] | None = None,
    ready: str = "True",
    heartbeat: datetime | None = EVENT_TIME - timedelta(seconds=10),
    boot_id: str = BOOT_ID,
) -> Node:
    """A Ready, schedulable node with the GKE instance-id annotation unless told otherwise."""
    return Node(
        name=NODE_NAME,
        uid="node-uid-1",
        resource_version="48213",
        provider_id=f"gce://acme-prod/europe-west4-b/{NODE_NAME}",
        unschedulable=unschedulable,
        annotations=dict({GKE_INSTANCE_ID: INSTANCE_ID} if annotations is None else annotations),
        boot_id=boot_id,
        ready=ReadyCondition(
            status=ready,
            last_heartbeat=heartbeat,
            last_transition=heartbeat,
        ),
    )


def make_plan(
    *,
    kind: EventKind = EventKind.PREEMPTED,
    event_id: str = EVENT_ID,
    instance_id: str | None = INSTANCE_ID,
) -> DrainPlan:
    return DrainPlan(
        reason=kind.value,
        event_id=event_id,
        event_time=EVENT_TIME,
        timeout=timedelta(seconds=120),
        force_when_down=kind in FORCE_KINDS,
        instance_id=instance_id,
    )


# --- classify_pod ---------------------------------------------------------------------------------------------------

TERMINATING_AT = datetime(2026, 10, 2, 8, 14, 8, tzinfo=UTC)

CLASSIFY_CASES = [
    pytest.param(
        make_pod(deletion_timestamp=TERMINATING_AT),
        PodAction.WAIT,
        "already terminating",
        id="terminating",
    ),
    pytest.param(
        make_pod(deletion_timestamp=TERMINATING_AT, controller=DAEMON_SET),
        PodAction.WAIT,
        "already terminating",
        id="terminating-beats-daemonset",
    ),
    pytest.param(
        make_pod(deletion_timestamp=TERMINATING_AT, phase="Succeeded", annotations={POD_OPT_OUT: "true"}),
        PodAction.WAIT,
        "already terminating",
        id="terminating-beats-terminal-and-opt-out",
    ),
    pytest.param(make_pod(controller=DAEMON_SET), PodAction.SKIP, "managed by a DaemonSet", id="daemonset"),
    pytest.param(
        make_pod(controller=DAEMON_SET, phase="Failed", annotations={MIRROR_ANNOTATION: "abc"}),
        PodAction.SKIP,
        "managed by a DaemonSet",
        id="daemonset-beats-mirror-and-terminal",
    ),
    pytest.param(
        make_pod(controller=NODE_OWNER, annotations={MIRROR_ANNOTATION: "8c1f0e2d"}),
        PodAction.SKIP,
        "mirror (static) pod",
        id="mirror",
    ),
    pytest.param(
        make_pod(controller=None, annotations={MIRROR_ANNOTATION: ""}, phase="Succeeded"),
        PodAction.SKIP,
        "mirror (static) pod",
        id="mirror-empty-value-beats-terminal",
    ),
    pytest.param(make_pod(phase="Succeeded"), PodAction.DELETE, "terminal pod (Succeeded)", id="succeeded"),
    pytest.param(make_pod(phase="Failed", controller=JOB), PodAction.DELETE, "terminal pod (Failed)", id="failed"),
    pytest.param(
        make_pod(phase="Failed", annotations={POD_OPT_OUT: "true", SAFE_TO_EVICT: "false"}),
        PodAction.DELETE,
        "terminal pod (Failed)",
        id="terminal-beats-opt-out",
    ),
    pytest.param(
        make_pod(annotations={POD_OPT_OUT: "true"}),
        PodAction.SKIP,
        "opt-out annotation node-drainer.io/skip-eviction=true",
        id="opt-out",
    ),
    pytest.param(
        make_pod(annotations={POD_OPT_OUT: "TRUE"}),
        PodAction.SKIP,
        "opt-out annotation node-drainer.io/skip-eviction=true",
        id="opt-out-upper-case",
    ),
    pytest.param(
        make_pod(annotations={POD_OPT_OUT: "  True \n"}),
        PodAction.SKIP,
        "opt-out annotation node-drainer.io/skip-eviction=true",
        id="opt-out-padded",
    ),
    pytest.param(
        make_pod(annotations={POD_OPT_OUT: "true", SAFE_TO_EVICT: "false"}),
        PodAction.SKIP,
        "opt-out annotation node-drainer.io/skip-eviction=true",
        id="opt-out-named-before-safe-to-evict",
    ),
    pytest.param(make_pod(annotations={POD_OPT_OUT: "false"}), PodAction.EVICT, "", id="opt-out-false"),
    pytest.param(make_pod(annotations={POD_OPT_OUT: "yes"}), PodAction.EVICT, "", id="opt-out-yes-is-not-true"),
    pytest.param(
        make_pod(annotations={SAFE_TO_EVICT: "false"}),
        PodAction.SKIP,
        "cluster-autoscaler.kubernetes.io/safe-to-evict=false",
        id="safe-to-evict-false",
    ),
    pytest.param(
        make_pod(annotations={SAFE_TO_EVICT: " False "}),
        PodAction.SKIP,
        "cluster-autoscaler.kubernetes.io/safe-to-evict=false",
        id="safe-to-evict-false-padded",
    ),
    pytest.param(make_pod(annotations={SAFE_TO_EVICT: "true"}), PodAction.EVICT, "", id="safe-to-evict-true"),
    pytest.param(make_pod(), PodAction.EVICT, "", id="plain-replicaset"),
    pytest.param(make_pod(controller=STATEFUL_SET), PodAction.EVICT, "", id="statefulset"),
    pytest.param(make_pod(phase="Pending"), PodAction.EVICT, "", id="pending"),
    pytest.param(
        make_pod(local_storage=True),
        PodAction.EVICT,
        "emptyDir data is lost",
        id="emptydir",
    ),
    pytest.param(
        make_pod(controller=None),
        PodAction.EVICT,
        "unreplicated: no controller recreates it",
        id="unreplicated",
    ),
    pytest.param(
        make_pod(controller=None, local_storage=True),
        PodAction.EVICT,
        "emptyDir data is lost; unreplicated: no controller recreates it",
        id="emptydir-and-unreplicated",
    ),
    pytest.param(
        make_pod(local_storage=True, annotations={SAFE_TO_EVICT: "true"}),
        PodAction.EVICT,
        "emptyDir data is lost",
        id="emptydir-safe-to-evict-true",
    ),
    pytest.param(make_pod(priority_class="system-cluster-critical"), PodAction.EVICT, "", id="critical-class"),
]


@pytest.mark.parametrize(("pod", "action", "reason"), CLASSIFY_CASES)
def test_classify_pod_action_and_reason(pod: Pod, action: PodAction, reason: str) -> None:
    decision = classify_pod(pod)
    assert decision.action is action
    assert decision.reason == reason
    assert decision.pod is pod


@pytest.mark.parametrize(
    ("pod", "local_storage", "unreplicated"),
    [
        pytest.param(make_pod(), False, False, id="replicated"),
        pytest.param(make_pod(local_storage=True), True, False, id="emptydir"),
        pytest.param(make_pod(controller=None), False, True, id="no-controller"),
        pytest.param(make_pod(controller=None, local_storage=True), True, True, id="both"),
        pytest.param(
            make_pod(controller=None, local_storage=True, deletion_timestamp=TERMINATING_AT),
            True,
            True,
            id="flags-kept-when-terminating",
        ),
        pytest.param(make_pod(controller=DAEMON_SET, local_storage=True), True, False, id="flags-kept-when-skipped"),
        pytest.param(make_pod(controller=None, phase="Succeeded"), False, True, id="flags-kept-when-terminal"),
    ],
)
def test_classify_pod_storage_and_replication_flags(pod: Pod, local_storage: bool, unreplicated: bool) -> None:
    decision = classify_pod(pod)
    assert decision.local_storage is local_storage
    assert decision.unreplicated is unreplicated
    assert decision.critical is False


@pytest.mark.parametrize(
    ("priority_class", "priority", "critical"),
    [
        pytest.param("system-cluster-critical", 0, True, id="cluster-critical-class"),
        pytest.param("system-node-critical", 0, True, id="node-critical-class"),
        pytest.param("", 2_000_000_000, True, id="priority-at-threshold"),
        pytest.param("", 2_000_001_000, True, id="priority-node-critical-value"),
        pytest.param("", 1_999_999_999, False, id="priority-just-below"),
        pytest.param("high-priority", 1_000_000, False, id="user-class"),
        pytest.param("System-Cluster-Critical", 0, False, id="class-is-case-sensitive"),
        pytest.param("", 0, False, id="default"),
    ],
)
def test_classify_pod_critical(priority_class: str, priority: int, critical: bool) -> None:
    decision = classify_pod(make_pod(priority_class=priority_class, priority=priority))
    assert decision.critical is critical
    assert decision.action is PodAction.EVICT


def test_classify_critical_daemonset_pod_is_skipped_and_flagged() -> None:
    decision = classify_pod(make_pod(controller=DAEMON_SET, priority_class="system-node-critical"))
    assert decision.action is PodAction.SKIP
    assert decision.reason == "managed by a DaemonSet"
    assert decision.critical is True


# --- PodDecision.target ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "target"),
    [
        pytest.param(PodAction.EVICT, True, id="evict"),
        pytest.param(PodAction.DELETE, True, id="delete"),
        pytest.param(PodAction.WAIT, True, id="wait"),
        pytest.param(PodAction.SKIP, False, id="skip"),
    ],
)
def test_pod_decision_target(action: PodAction, target: bool) -> None:
    assert PodDecision(pod=make_pod(), action=action).target is target


def test_pod_decision_defaults() -> None:
    decision = PodDecision(pod=make_pod(), action=PodAction.EVICT)
    assert decision.reason == ""
    assert decision.critical is False
    assert decision.local_storage is False
    assert decision.unreplicated is False


def test_pod_action_values() -> None:
    assert [a.value for a in PodAction] == ["evict", "delete", "wait", "skip"]


# --- verified_down --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "heartbeat", "down"),
    [
        pytest.param("True", EVENT_TIME - timedelta(minutes=5), False, id="ready-old-heartbeat"),
        pytest.param("True", None, False, id="ready-no-heartbeat"),
        pytest.param("True", EVENT_TIME + timedelta(seconds=5), False, id="ready-fresh-heartbeat"),
        pytest.param("Unknown", EVENT_TIME - timedelta(seconds=1), True, id="unknown-heartbeat-before"),
        pytest.param("False", EVENT_TIME - timedelta(seconds=30), False, id="false-is-a-living-kubelet"),
        pytest.param("Unknown", EVENT_TIME - timedelta(milliseconds=500), False, id="unknown-heartbeat-same-second"),
        pytest.param("Unknown", EVENT_TIME, False, id="unknown-heartbeat-equal"),
        pytest.param("False", EVENT_TIME, False, id="false-heartbeat-equal"),
        pytest.param("Unknown", EVENT_TIME + timedelta(seconds=1), False, id="unknown-heartbeat-after"),
        pytest.param("False", EVENT_TIME + timedelta(seconds=40), False, id="false-heartbeat-after"),
        pytest.param("Unknown", None, True, id="unknown-no-heartbeat"),
        pytest.param("False", None, False, id="false-no-heartbeat"),
    ],
)
def test_verified_down(status: str, heartbeat: datetime | None, down: bool) -> None:
    node = make_node(ready=status, heartbeat=heartbeat)
    assert verified_down(node, event_time=EVENT_TIME) is down


# --- stale_instance -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node_annotations", "instance_id", "stale"),
    [
        pytest.param({GKE_INSTANCE_ID: INSTANCE_ID}, INSTANCE_ID, False, id="same-vm"),
        pytest.param({GKE_INSTANCE_ID: OTHER_INSTANCE_ID}, INSTANCE_ID, True, id="recreated-vm"),
        pytest.param({GKE_INSTANCE_ID: INSTANCE_ID}, None, False, id="event-without-id"),
        pytest.param({GKE_INSTANCE_ID: INSTANCE_ID}, "", False, id="event-with-empty-id"),
        pytest.param({}, INSTANCE_ID, False, id="node-without-annotation"),
        pytest.param({GKE_INSTANCE_ID: ""}, INSTANCE_ID, False, id="node-with-empty-annotation"),
        pytest.param({}, None, False, id="neither"),
    ],
)
def test_stale_instance(node_annotations: dict[str, str], instance_id: str | None, stale: bool) -> None:
    assert stale_instance(make_node(annotations=node_annotations), instance_id) is stale


# --- plan_for_event -------------------------------------------------------------------------------------------------

DEADLINES = {
    EventKind.PREEMPTED: 90.0,
    EventKind.RECREATE: 100.0,
    EventKind.DELETE: 300.0,
    EventKind.HOST_ERROR: 110.0,
    EventKind.GUEST_TERMINATE: 75.5,
    EventKind.AUTOMATIC_RESTART: 60.0,
    EventKind.TERMINATE_ON_HOST_MAINTENANCE: 45.0,
}


def test_force_kinds_are_every_kind_but_delete() -> None:
    assert frozenset(EventKind) - FORCE_KINDS == {EventKind.DELETE}


@pytest.mark.parametrize(
    ("kind", "force_when_down"),
    [
        pytest.param(EventKind.PREEMPTED, True, id="preempted"),
        pytest.param(EventKind.RECREATE, True, id="recreate"),
        pytest.param(EventKind.DELETE, False, id="delete"),
        pytest.param(EventKind.HOST_ERROR, True, id="host_error"),
        pytest.param(EventKind.GUEST_TERMINATE, True, id="guest_terminate"),
        pytest.param(EventKind.AUTOMATIC_RESTART, True, id="automatic_restart"),
        pytest.param(EventKind.TERMINATE_ON_HOST_MAINTENANCE, True, id="terminate_on_host_maintenance"),
    ],
)
def test_plan_for_event_with_force_cleanup(kind: EventKind, force_when_down: bool) -> None:
    plan = plan_for_event(
        kind=kind,
        event_id=EVENT_ID,
        event_time=EVENT_TIME,
        instance_id=INSTANCE_ID,
        deadlines=DEADLINES,
        force_cleanup=True,
    )
    assert plan == DrainPlan(
        reason=kind.value,
        event_id=EVENT_ID,
        event_time=EVENT_TIME,
        timeout=timedelta(seconds=DEADLINES[kind]),
        force_when_down=force_when_down,
        instance_id=INSTANCE_ID,
        out_of_service_taint=force_when_down,  # the taint goes with the force, never on a graceful delete
    )


@pytest.mark.parametrize("kind", list(EventKind), ids=[k.value for k in EventKind])
def test_plan_for_event_without_the_taint_keeps_the_force(kind: EventKind) -> None:
    plan = plan_for_event(
        kind=kind,
        event_id=EVENT_ID,
        event_time=EVENT_TIME,
        instance_id=INSTANCE_ID,
        deadlines=DEADLINES,
        force_cleanup=True,
        out_of_service_taint=False,
    )
    assert plan.out_of_service_taint is False
    assert plan.force_when_down is (kind is not EventKind.DELETE)


@pytest.mark.parametrize("kind", list(EventKind), ids=[k.value for k in EventKind])
def test_plan_for_event_without_force_cleanup(kind: EventKind) -> None:
    plan = plan_for_event(
        kind=kind,
        event_id=EVENT_ID,
        event_time=EVENT_TIME,
        instance_id=None,
        deadlines=DEADLINES,
        force_cleanup=False,
    )
    assert plan.force_when_down is False
    assert plan.timeout == timedelta(seconds=DEADLINES[kind])
    assert plan.reason == kind.value
    assert plan.instance_id is None


def test_plan_for_event_timeout_values() -> None:
    preempted = plan_for_event(
        kind=EventKind.PREEMPTED,
        event_id=EVENT_ID,
        event_time=EVENT_TIME,
        instance_id=None,
        deadlines=DEADLINES,
        force_cleanup=True,
    )
    guest = plan_for_event(
        kind=EventKind.GUEST_TERMINATE,
        event_id=EVENT_ID,
        event_time=EVENT_TIME,
        instance_id=None,
        deadlines=DEADLINES,
        force_cleanup=True,
    )
    assert preempted.timeout == timedelta(minutes=1, seconds=30)
    assert guest.timeout == timedelta(seconds=75, milliseconds=500)
    assert preempted.event_time == EVENT_TIME
    assert preempted.event_id == EVENT_ID


# --- cordon_annotations ---------------------------------------------------------------------------------------------


def test_first_cordon_of_schedulable_node() -> None:
    node = make_node(unschedulable=False)
    update = cordon_annotations(node, make_plan(), now=NOW)
    assert update == {
        CORDONED_BY: "gke-node-drainer",
        CORDON_REASON: "preempted",
        CORDON_EVENT_ID: EVENT_ID,
        CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
        CORDONED_AT: "2026-10-02T08:14:09Z",
        CORDON_BOOT_ID: BOOT_ID,
        WAS_UNSCHEDULABLE: "false",
        CORDON_INSTANCE_ID: INSTANCE_ID,
    }
    # the taint's come with the taint, the operator's force with a forced manual drain, fenced-at with the storm cap
    assert set(update) == set(OUR_NODE_ANNOTATIONS) - {TAINTED_AT, DETACH_PENDING, FORCE_REQUESTED, FENCED_AT}


def test_first_cordon_of_node_cordoned_by_someone_else() -> None:
    node = make_node(unschedulable=True, annotations={GKE_INSTANCE_ID: INSTANCE_ID, "ops.acme.io/cordoned": "yes"})
    update = cordon_annotations(node, make_plan(kind=EventKind.DELETE, event_id=OTHER_EVENT_ID), now=NOW)
    assert update == {
        CORDONED_BY: "gke-node-drainer",
        CORDON_REASON: "delete",
        CORDON_EVENT_ID: OTHER_EVENT_ID,
        CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
        CORDONED_AT: "2026-10-02T08:14:09Z",
        CORDON_BOOT_ID: BOOT_ID,
        WAS_UNSCHEDULABLE: "true",
        CORDON_INSTANCE_ID: INSTANCE_ID,
    }


def test_first_cordon_without_instance_id_omits_it() -> None:
    update = cordon_annotations(make_node(), make_plan(instance_id=None), now=NOW)
    assert CORDON_INSTANCE_ID not in update
    assert update[CORDONED_AT] == "2026-10-02T08:14:09Z"
    assert update[WAS_UNSCHEDULABLE] == "false"
    assert update[CORDON_BOOT_ID] == BOOT_ID


def test_cordoned_at_drops_microseconds() -> None:
    now = datetime(2026, 10, 2, 8, 14, 9, 987654, tzinfo=UTC)
    update = cordon_annotations(make_node(), make_plan(), now=now)
    assert update[CORDONED_AT] == "2026-10-02T08:14:09Z"


def test_annotation_by_someone_else_named_like_us_is_not_ours() -> None:
    node = make_node(unschedulable=True, annotations={CORDONED_BY: "cluster-autoscaler", CORDONED_AT: "old"})
    update = cordon_annotations(node, make_plan(), now=NOW)
    assert update[CORDONED_AT] == "2026-10-02T08:14:09Z"
    assert update[WAS_UNSCHEDULABLE] == "true"


def test_recordon_by_us_keeps_first_cordon_fields() -> None:
    earlier = {
        GKE_INSTANCE_ID: INSTANCE_ID,
        CORDONED_BY: COMPONENT,
        CORDON_REASON: "preempted",
        CORDON_EVENT_ID: EVENT_ID,
        CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
        CORDONED_AT: "2026-10-02T08:14:08Z",
        CORDON_BOOT_ID: "old-boot-id",
        WAS_UNSCHEDULABLE: "false",
        CORDON_INSTANCE_ID: OTHER_INSTANCE_ID,
    }
    node = make_node(unschedulable=True, annotations=earlier, boot_id="new-boot-id")
    later = datetime(2026, 10, 2, 9, 30, 11, tzinfo=UTC)
    update = cordon_annotations(node, make_plan(kind=EventKind.DELETE, event_id=OTHER_EVENT_ID), now=later)
    assert update == {
        CORDONED_BY: "gke-node-drainer",
        CORDON_REASON: "delete",
        CORDON_EVENT_ID: OTHER_EVENT_ID,
        CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
        CORDON_BOOT_ID: "new-boot-id",  # a new event is about the incarnation running now...
        CORDON_INSTANCE_ID: INSTANCE_ID,  # ...and the event's VM
    }


def test_redelivery_of_same_event_writes_same_three_fields() -> None:
    annotations = {
        CORDONED_BY: COMPONENT,
        CORDON_REASON: "preempted",
        CORDON_EVENT_ID: EVENT_ID,
        CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
    }
    node = make_node(unschedulable=True, annotations=annotations)
    assert cordon_annotations(node, make_plan(), now=NOW) == annotations


# --- cordon_needed --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unschedulable", "annotations", "needed"),
    [
        pytest.param(False, {}, True, id="schedulable"),
        pytest.param(
            False,
            {CORDONED_BY: COMPONENT, CORDON_EVENT_ID: EVENT_ID},
            True,
            id="our-annotations-but-uncordoned",
        ),
        pytest.param(True, {CORDONED_BY: COMPONENT, CORDON_EVENT_ID: EVENT_ID}, False, id="our-cordon-same-event"),
        pytest.param(
            True,
            {CORDONED_BY: COMPONENT, CORDON_EVENT_ID: OTHER_EVENT_ID},
            True,
            id="our-cordon-other-event",
        ),
        pytest.param(True, {CORDONED_BY: COMPONENT}, True, id="our-cordon-no-event-id"),
        pytest.param(True, {}, True, id="someone-elses-cordon"),
        pytest.param(
            True,
            {CORDONED_BY: "ops-team", CORDON_EVENT_ID: EVENT_ID},
            True,
            id="someone-elses-cordon-same-event-id",
        ),
    ],
)
def test_cordon_needed(unschedulable: bool, annotations: dict[str, str], needed: bool) -> None:
    node = make_node(unschedulable=unschedulable, annotations=annotations)
    assert cordon_needed(node, make_plan()) is needed
