"""Unit tests for the recovery rules in functions.policy and the node's spec.unschedulable manager (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.decisions.model import Node, ReadyCondition
from functions.decisions.names import COMPONENT, FIELD_MANAGER
from functions.decisions.policy import (
    CORDON_BOOT_ID,
    CORDON_EVENT_ID,
    CORDON_EVENT_TIME,
    CORDON_INSTANCE_ID,
    CORDON_REASON,
    CORDONED_AT,
    CORDONED_BY,
    GKE_INSTANCE_ID,
    OUR_NODE_ANNOTATIONS,
    WAS_UNSCHEDULABLE,
    RecoveryAction,
    RecoveryDecision,
    cordon_event_time,
    cordoned_by_us,
    lift_decision,
    recovery_decision,
    release_annotations,
)

EVENT_TIME = datetime(2026, 10, 2, 8, 14, 7, tzinfo=UTC)
CORDON_TIME = datetime(2026, 10, 2, 8, 14, 9, tzinfo=UTC)
OLD_BOOT = "0f6c1f7e-8a3b-4d2c-9e5f-1a2b3c4d5e6f"
NEW_BOOT = "7d2e9a41-5c6b-4f80-a1d3-e2f4b6c8d0a9"
NODE_NAME = "gke-payments-spot-pool-3f1c2a9e-x7k2"
INSTANCE_ID = "7310455628112203391"
SECOND = timedelta(seconds=1)

OURS: dict[str, str] = {
    GKE_INSTANCE_ID: INSTANCE_ID,
    CORDONED_BY: COMPONENT,
    CORDON_REASON: "preempted",
    CORDON_EVENT_ID: "systemevent-1759392840201-6400a1b2c3d4e-5f6a7b8c-9d0e1f2a",
    CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
    CORDONED_AT: "2026-10-02T08:14:09Z",
    CORDON_BOOT_ID: OLD_BOOT,
    WAS_UNSCHEDULABLE: "false",
    CORDON_INSTANCE_ID: INSTANCE_ID,
}


KEYS = {
    "cordoned_by": CORDONED_BY,
    "event_time": CORDON_EVENT_TIME,
    "cordoned_at": CORDONED_AT,
    "boot_id": CORDON_BOOT_ID,
    "was_unschedulable": WAS_UNSCHEDULABLE,
}


def ours(**changes: str | None) -> dict[str, str]:
    """OURS with annotations replaced (str) or removed (None); keyword names map through KEYS."""
    result = dict(OURS)
    for key, value in changes.items():
        name = KEYS[key]
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def make_node(
    *,
    unschedulable: bool = True,
    annotations: Mapping[str, str] | None = None,
    ready: str = "True",
    heartbeat: datetime | None = EVENT_TIME + timedelta(minutes=3),
    boot_id: str = NEW_BOOT,
    manager: str | None = FIELD_MANAGER,
) -> Node:
    """A node we cordoned, back Ready with a new boot, spec.unschedulable owned by us, unless told otherwise."""
    return Node(
        name=NODE_NAME,
        uid="node-uid-1",
        resource_version="48213",
        provider_id=f"gce://acme-prod/europe-west4-b/{NODE_NAME}",
        unschedulable=unschedulable,
        annotations=dict(OURS if annotations is None else annotations),
        boot_id=boot_id,
        ready=ReadyCondition(
            status=ready,
            last_heartbeat=heartbeat,
            last_transition=heartbeat,
        ),
        unschedulable_manager=manager,
    )


def decision(action: RecoveryAction, reason: str) -> RecoveryDecision:
    return RecoveryDecision(action=action, reason=reason)


# --- recovery_decision ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({}, id="no-annotations"),
        pytest.param({GKE_INSTANCE_ID: INSTANCE_ID}, id="gke-only"),
        pytest.param(ours(cordoned_by="cluster-autoscaler"), id="someone-else-named-in-our-key"),
        pytest.param(ours(cordoned_by=None), id="our-other-keys-without-cordoned-by"),
        pytest.param(ours(cordoned_by="GKE-Node-Drainer"), id="case-sensitive"),
    ],
)
def test_not_ours_is_none(annotations: dict[str, str]) -> None:
    for ready, heartbeat in (("True", EVENT_TIME + SECOND), ("Unknown", EVENT_TIME - timedelta(minutes=5))):
        node = make_node(annotations=annotations, ready=ready, heartbeat=heartbeat)
        assert recovery_decision(node) == decision(RecoveryAction.NONE, "not cordoned by us")
        assert cordoned_by_us(node) is False


def test_ours_same_boot_ready_waits() -> None:
    node = make_node(boot_id=OLD_BOOT)
    assert recovery_decision(node) == decision(RecoveryAction.WAIT, "Ready, but still the same boot: not back yet")


def test_ours_ready_without_boot_id_waits() -> None:
    node = make_node(boot_id="")
    assert recovery_decision(node) == decision(RecoveryAction.WAIT, "Ready, but still the same boot: not back yet")


@pytest.mark.parametrize(
    "manager",
    [pytest.param("gke-node-drainer", id="our-manager"), pytest.param(None, id="no-manager")],
)
def test_ours_new_boot_ready_uncordons(manager: str | None) -> None:
    node = make_node(manager=manager)
    assert cordoned_by_us(node) is True
    assert recovery_decision(node) == decision(
        RecoveryAction.UNCORDON, f"back with a new boot ({NEW_BOOT}); our cordon"
    )


def test_ours_new_boot_ready_even_with_old_heartbeat_uncordons() -> None:
    # Ready True is the kubelet's own word: a stale heartbeat does not make a Ready node "down".
    node = make_node(heartbeat=EVENT_TIME - timedelta(minutes=10))
    assert recovery_decision(node).action is RecoveryAction.UNCORDON


def test_new_boot_was_unschedulable_releases() -> None:
    node = make_node(annotations=ours(was_unschedulable="true"))
    result = recovery_decision(node)
    assert result == decision(
        RecoveryAction.RELEASE,
        f"back with a new boot ({NEW_BOOT}); the node was unschedulable before we cordoned it: left cordoned",
    )
    assert "before" in result.reason


def test_new_boot_already_schedulable_releases() -> None:
    node = make_node(unschedulable=False)
    assert recovery_decision(node) == decision(
        RecoveryAction.RELEASE, f"back with a new boot ({NEW_BOOT}); already schedulable: someone uncordoned it"
    )


@pytest.mark.parametrize("manager", ["kubectl-cordon", "kubectl", "cluster-autoscaler"])
def test_new_boot_cordoned_by_other_manager_releases(manager: str) -> None:
    node = make_node(manager=manager)
    result = recovery_decision(node)
    assert result == decision(
        RecoveryAction.RELEASE,
        f"back with a new boot ({NEW_BOOT}); cordoned again by {manager} after us: left cordoned",
    )
    assert manager in result.reason


BOOTED_AGAIN = "the node has booted again since the event"


@pytest.mark.parametrize(
    ("heartbeat", "action", "reason"),
    [
        pytest.param(EVENT_TIME + timedelta(minutes=3), RecoveryAction.WAIT, BOOTED_AGAIN, id="heartbeat-after-event"),
        # a new kubelet registered since the event: it may run the pods bound to the node, never forced
        pytest.param(EVENT_TIME - timedelta(minutes=3), RecoveryAction.WAIT, BOOTED_AGAIN, id="heartbeat-before-event"),
    ],
)
def test_new_boot_ready_unknown_is_not_uncordon(heartbeat: datetime, action: RecoveryAction, reason: str) -> None:
    node = make_node(ready="Unknown", heartbeat=heartbeat)
    result = recovery_decision(node)
    assert result.action is not RecoveryAction.UNCORDON
    assert result.action is action
    assert result.reason.startswith(reason), result


@pytest.mark.parametrize("ready", ["False", "Unknown"])
def test_new_boot_not_ready_schedulable_is_not_released(ready: str) -> None:
    node = make_node(ready=ready, unschedulable=False)
    result = recovery_decision(node)
    assert result.action is RecoveryAction.WAIT
    assert result.reason.startswith(BOOTED_AGAIN)


@pytest.mark.parametrize(
    ("ready", "heartbeat", "action", "reason"),
    [
        pytest.param(
            "Unknown",
            EVENT_TIME - SECOND,
            RecoveryAction.FORCE_CLEANUP,
            "verified down: Ready is Unknown, last heartbeat",
            id="unknown-heartbeat-1s-before",
        ),
        pytest.param(
            "Unknown",
            EVENT_TIME - timedelta(minutes=5),
            RecoveryAction.FORCE_CLEANUP,
            "verified down: Ready is Unknown, last heartbeat",
            id="unknown-heartbeat-long-before",
        ),
        pytest.param(
            "Unknown",
            None,
            RecoveryAction.FORCE_CLEANUP,
            "verified down: Ready is Unknown, last heartbeat",
            id="unknown-no-heartbeat",
        ),
        pytest.param(
            "Unknown",
            EVENT_TIME - timedelta(milliseconds=999),
            RecoveryAction.WAIT,
            "Ready is Unknown: not verified down yet",
            id="unknown-heartbeat-under-1s-before",
        ),
        pytest.param(
            "Unknown",
            EVENT_TIME,
            RecoveryAction.WAIT,
            "Ready is Unknown: not verified down yet",
            id="unknown-heartbeat-at-event",
        ),
        pytest.param(
            "Unknown",
            EVENT_TIME + SECOND,
            RecoveryAction.WAIT,
            "Ready is Unknown: not verified down yet",
            id="unknown-heartbeat-after-event",
        ),
        pytest.param(
            "False",
            EVENT_TIME - timedelta(minutes=5),
            RecoveryAction.WAIT,
            "Ready is False: not verified down yet",
            id="false-old-heartbeat-is-a-living-kubelet",
        ),
        pytest.param(
            "False",
            None,
            RecoveryAction.WAIT,
            "Ready is False: not verified down yet",
            id="false-no-heartbeat",
        ),
        pytest.param(
            "True",
            EVENT_TIME - timedelta(minutes=5),
            RecoveryAction.WAIT,
            "Ready, but still the same boot: not back yet",
            id="true-old-heartbeat",
        ),
    ],
)
def test_same_boot_fencing(ready: str, heartbeat: datetime | None, action: RecoveryAction, reason: str) -> None:
    node = make_node(boot_id=OLD_BOOT, ready=ready, heartbeat=heartbeat)
    result = recovery_decision(node)
    assert result.action is action
    assert result.reason.startswith(reason), result


def test_force_cleanup_regardless_of_lift_state() -> None:
    node = make_node(
        boot_id=OLD_BOOT,
        ready="Unknown",
        heartbeat=EVENT_TIME - timedelta(minutes=1),
        unschedulable=False,
        manager="kubectl-cordon",
        annotations=ours(was_unschedulable="true"),
    )
    assert recovery_decision(node).action is RecoveryAction.FORCE_CLEANUP


# Heartbeat at the event second: not down by the event, down by the cordon time (two seconds later).
HEARTBEAT_AT_EVENT = EVENT_TIME


@pytest.mark.parametrize(
    ("annotations", "action"),
    [
        pytest.param(OURS, RecoveryAction.WAIT, id="event-time-wins-over-cordoned-at"),
        pytest.param(ours(event_time=None), RecoveryAction.FORCE_CLEANUP, id="missing-event-time-uses-cordoned-at"),
        pytest.param(ours(event_time=""), RecoveryAction.FORCE_CLEANUP, id="empty-event-time-uses-cordoned-at"),
        pytest.param(ours(event_time=None, cordoned_at=None), RecoveryAction.WAIT, id="neither"),
        pytest.param(ours(event_time="", cordoned_at=""), RecoveryAction.WAIT, id="both-empty"),
        pytest.param(
            ours(event_time="2026-10-02T08:14:08Z", cordoned_at=None), RecoveryAction.FORCE_CLEANUP, id="later-event"
        ),
    ],
)
def test_event_time_falls_back_to_cordoned_at(annotations: dict[str, str], action: RecoveryAction) -> None:
    node = make_node(boot_id=OLD_BOOT, ready="Unknown", heartbeat=HEARTBEAT_AT_EVENT, annotations=annotations)
    assert recovery_decision(node).action is action


def test_neither_time_annotation_waits_even_without_heartbeat() -> None:
    node = make_node(
        boot_id=OLD_BOOT, ready="Unknown", heartbeat=None, annotations=ours(event_time=None, cordoned_at=None)
    )
    assert recovery_decision(node) == decision(
        RecoveryAction.WAIT, "no event time recorded and Compute Engine not asked"
    )


def test_missing_boot_annotation_counts_as_new_boot() -> None:
    node = make_node(boot_id=OLD_BOOT, annotations=ours(boot_id=None))
    assert recovery_decision(node) == decision(
        RecoveryAction.UNCORDON, f"back with a new boot ({OLD_BOOT}); our cordon"
    )


# --- cordoned_by_us and cordon_event_time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({CORDONED_BY: "gke-node-drainer"}, True, id="ours"),
        pytest.param({CORDONED_BY: "gke-node-drainer "}, False, id="trailing-space"),
        pytest.param({CORDONED_BY: ""}, False, id="empty"),
        pytest.param({CORDON_REASON: "preempted"}, False, id="missing"),
    ],
)
def test_cordoned_by_us(annotations: dict[str, str], expected: bool) -> None:
    assert cordoned_by_us(make_node(annotations=annotations)) is expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param(OURS, EVENT_TIME, id="event-time"),
        pytest.param(ours(event_time=None), CORDON_TIME, id="cordoned-at"),
        pytest.param(ours(event_time=""), CORDON_TIME, id="empty-event-time"),
        pytest.param(ours(cordoned_at=None), EVENT_TIME, id="event-time-only"),
        pytest.param(ours(event_time=None, cordoned_at=None), None, id="neither"),
        pytest.param({}, None, id="no-annotations"),
    ],
)
def test_cordon_event_time(annotations: dict[str, str], expected: datetime | None) -> None:
    assert cordon_event_time(make_node(annotations=annotations)) == expected


# --- lift_decision --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "action", "reason"),
    [
        pytest.param(make_node(), RecoveryAction.UNCORDON, "our cordon", id="ours"),
        pytest.param(make_node(manager=None), RecoveryAction.UNCORDON, "our cordon", id="no-manager"),
        pytest.param(
            make_node(annotations=ours(was_unschedulable=None)), RecoveryAction.UNCORDON, "our cordon", id="no-was-flag"
        ),
        pytest.param(
            make_node(annotations=ours(was_unschedulable="true")),
            RecoveryAction.RELEASE,
            "the node was unschedulable before we cordoned it: left cordoned",
            id="was-unschedulable",
        ),
        pytest.param(
            make_node(unschedulable=False),
            RecoveryAction.RELEASE,
            "already schedulable: someone uncordoned it",
            id="schedulable",
        ),
        pytest.param(
            make_node(manager="kubectl-cordon"),
            RecoveryAction.RELEASE,
            "cordoned again by kubectl-cordon after us: left cordoned",
            id="other-manager",
        ),
        pytest.param(
            make_node(annotations=ours(was_unschedulable="true"), unschedulable=False, manager="kubectl-cordon"),
            RecoveryAction.RELEASE,
            "the node was unschedulable before we cordoned it: left cordoned",
            id="was-unschedulable-first",
        ),
        pytest.param(
            make_node(unschedulable=False, manager="kubectl-cordon"),
            RecoveryAction.RELEASE,
            "already schedulable: someone uncordoned it",
            id="schedulable-before-manager",
        ),
    ],
)
def test_lift_decision(node: Node, action: RecoveryAction, reason: str) -> None:
    assert lift_decision(node) == decision(action, reason)


@pytest.mark.parametrize(
    ("ready", "boot_id"),
    [
        pytest.param("Unknown", OLD_BOOT, id="unknown-same-boot"),
        pytest.param("False", NEW_BOOT, id="false-new-boot"),
        pytest.param("True", OLD_BOOT, id="ready-same-boot"),
    ],
)
def test_lift_decision_ignores_readiness_and_boot(ready: str, boot_id: str) -> None:
    node = make_node(ready=ready, boot_id=boot_id)
    assert lift_decision(node) == decision(RecoveryAction.UNCORDON, "our cordon")


def test_recovery_action_values() -> None:
    assert [a.value for a in RecoveryAction] == ["none", "wait", "uncordon", "release", "force_cleanup"]


# --- release_annotations --------------------------------------------------------------------------------------------


def test_release_annotations_removes_all_of_ours() -> None:
    patch = release_annotations()
    assert patch == {
        "node-drainer.io/event-time": None,
        "node-drainer.io/cordoned-by": None,
        "node-drainer.io/reason": None,
        "node-drainer.io/event-id": None,
        "node-drainer.io/cordoned-at": None,
        "node-drainer.io/boot-id": None,
        "node-drainer.io/was-unschedulable": None,
        "node-drainer.io/instance-id": None,
        "node-drainer.io/out-of-service-at": None,
        "node-drainer.io/detach-pending": None,
        "node-drainer.io/force": None,
        "node-drainer.io/fenced-at": None,
    }
    assert list(patch) == list(OUR_NODE_ANNOTATIONS)
    assert set(OURS) - set(patch) == {GKE_INSTANCE_ID}


def test_release_annotations_is_a_fresh_dict() -> None:
    first = release_annotations()
    first["extra"] = "x"
    assert "extra" not in release_annotations()
    assert len(release_annotations()) == 12


# --- Node.from_json: unschedulable_manager --------------------------------------------------------------------------

UNSCHEDULABLE_FIELDS: dict[str, Any] = {"f:spec": {"f:unschedulable": {}}}
PROVIDER_FIELDS: dict[str, Any] = {"f:spec": {"f:podCIDR": {}, "f:providerID": {}}}
TAINT_FIELDS: dict[str, Any] = {"f:spec": {"f:taints": {}}}
ANNOTATION_FIELDS: dict[str, Any] = {"f:metadata": {"f:annotations": {"f:node-drainer.io/cordoned-by": {}}}}


def entry(
    manager: str, fields: Any, *, operation: str = "Update", time: str = "2026-10-02T08:14:09Z"
) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


def node_json(managed_fields: list[dict[str, Any]] | None, *, unschedulable: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": NODE_NAME, "uid": "node-uid-1", "resourceVersion": "48213"}
    if managed_fields is not None:
        meta["managedFields"] = managed_fields
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": meta,
        "spec": {"providerID": f"gce://acme-prod/europe-west4-b/{NODE_NAME}", "unschedulable": unschedulable},
        "status": {"nodeInfo": {"bootID": NEW_BOOT}},
    }


@pytest.mark.parametrize(
    ("managed_fields", "manager"),
    [
        pytest.param(None, None, id="no-managed-fields"),
        pytest.param([], None, id="empty"),
        pytest.param(
            [entry("kubelet", PROVIDER_FIELDS), entry("gke-node-drainer", ANNOTATION_FIELDS)],
            None,
            id="no-entry-has-it",
        ),
        pytest.param(
            [entry("kubelet", PROVIDER_FIELDS), entry("gke-node-drainer", UNSCHEDULABLE_FIELDS)],
            "gke-node-drainer",
            id="ours",
        ),
        pytest.param(
            [
                entry("kubelet", PROVIDER_FIELDS),
                entry("kubectl-cordon", {"f:spec": {"f:unschedulable": {}, "f:taints": {}}}),
                entry("node-controller", TAINT_FIELDS),
            ],
            "kubectl-cordon",
            id="among-other-spec-fields",
        ),
        pytest.param(
            [
                entry("gke-node-drainer", UNSCHEDULABLE_FIELDS, time="2026-10-02T08:14:09Z"),
                entry("kubectl-cordon", UNSCHEDULABLE_FIELDS, time="2026-10-02T08:20:00Z"),
            ],
            "kubectl-cordon",
            id="later-entry-wins",
        ),
        pytest.param(
            [
                entry("kubectl-cordon", UNSCHEDULABLE_FIELDS),
                entry("kubelet", PROVIDER_FIELDS),
                entry("gke-node-drainer", UNSCHEDULABLE_FIELDS),
                entry("node-controller", TAINT_FIELDS),
            ],
            "gke-node-drainer",
            id="later-entry-wins-with-others-between",
        ),
        pytest.param(
            [entry("gke-node-drainer", {"f:metadata": {"f:unschedulable": {}}})],
            None,
            id="unschedulable-outside-spec",
        ),
        pytest.param([entry("gke-node-drainer", {"f:unschedulable": {}})], None, id="top-level-unschedulable"),
        pytest.param([entry("gke-node-drainer", {"f:spec": "."})], None, id="spec-not-a-mapping"),
        pytest.param([entry("gke-node-drainer", None)], None, id="null-fields"),
        pytest.param([{"manager": "gke-node-drainer", "operation": "Update"}], None, id="no-fields"),
    ],
)
def test_node_from_json_unschedulable_manager(managed_fields: list[dict[str, Any]] | None, manager: str | None) -> None:
    assert Node.from_json(node_json(managed_fields)).unschedulable_manager == manager


def test_node_from_json_drives_lift_decision() -> None:
    ours_json = node_json([entry("kubelet", PROVIDER_FIELDS), entry("gke-node-drainer", UNSCHEDULABLE_FIELDS)])
    ours_json["metadata"]["annotations"] = dict(OURS)
    node = Node.from_json(ours_json)
    assert node.unschedulable is True
    assert node.boot_id == NEW_BOOT
    assert node.ready == ReadyCondition(status="Unknown", last_heartbeat=None, last_transition=None)
    assert lift_decision(node) == decision(RecoveryAction.UNCORDON, "our cordon")

    recordoned = node_json(
        [entry("gke-node-drainer", UNSCHEDULABLE_FIELDS), entry("kubectl-cordon", UNSCHEDULABLE_FIELDS)]
    )
    recordoned["metadata"]["annotations"] = dict(OURS)
    assert lift_decision(Node.from_json(recordoned)) == decision(
        RecoveryAction.RELEASE, "cordoned again by kubectl-cordon after us: left cordoned"
    )


def test_node_from_json_ready_back_with_new_boot_uncordons() -> None:
    obj = node_json([entry("gke-node-drainer", UNSCHEDULABLE_FIELDS)])
    obj["metadata"]["annotations"] = dict(OURS)
    obj["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "lastHeartbeatTime": "2026-10-02T08:19:40Z",
            "lastTransitionTime": "2026-10-02T08:19:10Z",
        }
    ]
    node = Node.from_json(obj)
    assert node.ready == ReadyCondition(
        status="True",
        last_heartbeat=datetime(2026, 10, 2, 8, 19, 40, tzinfo=UTC),
        last_transition=datetime(2026, 10, 2, 8, 19, 10, tzinfo=UTC),
    )
    assert recovery_decision(node) == decision(
        RecoveryAction.UNCORDON, f"back with a new boot ({NEW_BOOT}); our cordon"
    )


def test_field_manager_is_component() -> None:
    assert FIELD_MANAGER == COMPONENT == "gke-node-drainer"
