"""Unit tests for the fence (Compute Engine and the Node rule), the out-of-service taint, late
events and the recovery of a tainted node (pure, no cluster)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from functions.decisions.model import Node, ReadyCondition, Taint, VmInstance
from functions.decisions.policy import (
    CORDON_BOOT_ID,
    CORDON_EVENT_ID,
    CORDON_EVENT_TIME,
    CORDON_INSTANCE_ID,
    CORDON_REASON,
    CORDONED_BY,
    DETACH_PENDING,
    GKE_INSTANCE_ID,
    OUT_OF_SERVICE,
    TAINTED_AT,
    NodeFacts,
    RecoveryAction,
    event_too_old,
    node_down,
    pending_detach,
    recovery_decision,
    stale_event,
    taint_annotations,
    tainted_by_us,
    taints_with_out_of_service,
    taints_without_out_of_service,
    vm_down,
)

EVENT_TIME = datetime(2026, 10, 2, 8, 14, 7, 512331, tzinfo=UTC)
INSTANCE_ID = "7310455628112203391"
OLD_BOOT, NEW_BOOT = "boot-old", "boot-new"
OTHER_TAINT = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
OOS = {"key": OUT_OF_SERVICE.key, "value": OUT_OF_SERVICE.value, "effect": OUT_OF_SERVICE.effect}


def vm(status: str = "RUNNING", *, id_: str = INSTANCE_ID, started: datetime | None = None) -> VmInstance:
    return VmInstance(id=id_, name="gke-a", status=status, last_start=started or EVENT_TIME - timedelta(days=1))


def node(
    *,
    ready: str = "True",
    transition: datetime | None = EVENT_TIME - timedelta(days=1),
    heartbeat: datetime | None = EVENT_TIME - timedelta(seconds=5),
    boot: str = OLD_BOOT,
    created: datetime | None = EVENT_TIME - timedelta(days=2),
    taints: tuple[dict[str, str], ...] = (),
    annotations: dict[str, str] | None = None,
) -> Node:
    return Node(
        name="gke-a",
        uid="uid-1",
        resource_version="7",
        provider_id="gce://acme-prod/europe-west4-b/gke-a",
        unschedulable=True,
        annotations=annotations or {},
        boot_id=boot,
        ready=ReadyCondition(status=ready, last_heartbeat=heartbeat, last_transition=transition),
        unschedulable_manager="gke-node-drainer",
        taints=tuple(Taint(key=t["key"], value=t.get("value", ""), effect=t["effect"]) for t in taints),
        raw_taints=taints,
        created_at=created,
    )


# --- Compute Engine's answer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "down"),
    [
        pytest.param(None, True, id="404"),
        pytest.param(vm("TERMINATED"), True, id="terminated"),
        pytest.param(vm("STOPPED"), True, id="stopped"),
        pytest.param(vm("RUNNING", id_="999"), True, id="replaced"),
        pytest.param(vm("PROVISIONING", id_="999"), True, id="replaced-and-starting"),
        *(
            pytest.param(vm(status), False, id=status.lower())
            for status in (
                "RUNNING",
                "STOPPING",
                "PENDING_STOP",
                "SUSPENDING",
                "SUSPENDED",
                "REPAIRING",
                "PROVISIONING",
                "STAGING",
            )
        ),
    ],
)
def test_vm_down_follows_the_fencing_rule(answer: VmInstance | None, down: bool) -> None:
    assert (vm_down(answer, instance_id=INSTANCE_ID) is not None) is down


def test_without_the_events_instance_id_a_running_vm_is_never_down() -> None:
    assert vm_down(vm("RUNNING", id_="999"), instance_id=None) is None
    assert vm_down(vm("TERMINATED"), instance_id=None) is not None


def test_location_comes_from_the_provider_id() -> None:
    assert node().location == ("acme-prod", "europe-west4-b", "gke-a")
    assert replace(node(), provider_id="aws:///us-east-1a/i-1").location is None
    assert replace(node(), provider_id="gce://acme-prod/gke-a").location is None


@pytest.mark.parametrize(
    ("ready", "heartbeat", "down"),
    [
        pytest.param("Unknown", EVENT_TIME - timedelta(seconds=5), True, id="unknown-heartbeat-before"),
        pytest.param("Unknown", EVENT_TIME + timedelta(seconds=5), False, id="unknown-heartbeat-after"),
        pytest.param("False", EVENT_TIME - timedelta(seconds=5), False, id="false-is-a-living-kubelet"),
        pytest.param("True", EVENT_TIME - timedelta(seconds=5), False, id="ready"),
    ],
)
def test_node_rule(ready: str, heartbeat: datetime, down: bool) -> None:
    assert (node_down(node(ready=ready, heartbeat=heartbeat), event_time=EVENT_TIME) is not None) is down


# --- the taint ---------------------------------------------------------------------------------------------------


def test_the_taint_is_added_to_the_taints_there_and_removed_alone() -> None:
    before = node(taints=(OTHER_TAINT,))
    added = taints_with_out_of_service(before)
    assert added == [OTHER_TAINT, OOS]
    after = node(taints=(OTHER_TAINT, OOS), annotations={TAINTED_AT: "2026-10-02T08:15:00Z"})
    assert taints_without_out_of_service(after) == [OTHER_TAINT]


def test_someone_elses_taint_is_not_ours() -> None:
    assert not tainted_by_us(node(taints=(OOS,)))
    assert tainted_by_us(node(taints=(OOS,), annotations={TAINTED_AT: "2026-10-02T08:15:00Z"}))
    assert not tainted_by_us(node(annotations={TAINTED_AT: "2026-10-02T08:15:00Z"}))  # annotation alone


def test_taint_annotations_record_the_attached_volumes() -> None:
    notes = taint_annotations(now=EVENT_TIME, attached_volumes=["pv-b", "pv-a"])
    assert notes == {TAINTED_AT: "2026-10-02T08:14:07Z", DETACH_PENDING: "pv-a,pv-b"}
    assert pending_detach(node(annotations={DETACH_PENDING: "pv-a,pv-b"})) == {"pv-a", "pv-b"}
    assert taint_annotations(now=EVENT_TIME, attached_volumes=[])[DETACH_PENDING] is None


# --- late events -------------------------------------------------------------------------------------------------


THIS_EVENT = {CORDONED_BY: "gke-node-drainer", CORDON_EVENT_ID: "ev-1", CORDON_BOOT_ID: OLD_BOOT}


@pytest.mark.parametrize(
    ("the_node", "the_vm", "stale"),
    [
        pytest.param(node(), None, False, id="ready-since-before"),
        pytest.param(node(ready="Unknown"), None, False, id="down"),
        # a Ready flap (an API-server outage, a kubelet restart) is not a new incarnation
        pytest.param(node(transition=EVENT_TIME + timedelta(minutes=2)), None, False, id="ready-flap-after"),
        pytest.param(
            node(ready="False", transition=EVENT_TIME + timedelta(minutes=2)), None, False, id="not-ready-since-after"
        ),
        pytest.param(node(created=EVENT_TIME + timedelta(minutes=1)), None, True, id="registered-after"),
        pytest.param(node(annotations=THIS_EVENT), None, False, id="our-cordon-same-boot"),
        pytest.param(node(annotations=THIS_EVENT, boot=NEW_BOOT), None, True, id="our-cordon-new-boot"),
        pytest.param(
            node(annotations={**THIS_EVENT, CORDON_EVENT_ID: "ev-0"}, boot=NEW_BOOT),
            None,
            False,
            id="other-events-cordon-new-boot",
        ),
        pytest.param(node(), vm(started=EVENT_TIME + timedelta(minutes=1)), True, id="vm-started-after"),
        pytest.param(
            node(), vm("STOPPING", started=EVENT_TIME + timedelta(minutes=1)), True, id="vm-started-after-now-stopping"
        ),
        pytest.param(node(), vm(started=EVENT_TIME - timedelta(minutes=1)), False, id="vm-started-before"),
    ],
)
def test_stale_event(the_node: Node, the_vm: VmInstance | None, stale: bool) -> None:
    assert (stale_event(the_node, event_id="ev-1", event_time=EVENT_TIME, vm=the_vm) is not None) is stale


def test_event_too_old() -> None:
    now = EVENT_TIME + timedelta(hours=3)
    assert event_too_old(EVENT_TIME, now=now, max_age=timedelta(hours=2)) is not None
    assert event_too_old(EVENT_TIME, now=now, max_age=timedelta(hours=4)) is None


# --- recovery of a tainted node ----------------------------------------------------------------------------------

EVENT_ID = "systemevent-1759392840201-6400a1b2c3d4e-5f6a7b8c-9d0e1f2a"
OURS = {
    CORDONED_BY: "gke-node-drainer",
    CORDON_REASON: "preempted",
    CORDON_EVENT_ID: EVENT_ID,
    CORDON_BOOT_ID: OLD_BOOT,
    CORDON_EVENT_TIME: "2026-10-02T08:14:07Z",
    CORDON_INSTANCE_ID: INSTANCE_ID,
    GKE_INSTANCE_ID: INSTANCE_ID,
    TAINTED_AT: "2026-10-02T08:15:00Z",
    DETACH_PENDING: "pv-a",
}


def tainted(**changes: object) -> Node:
    defaults: dict[str, object] = {
        "boot": NEW_BOOT,
        "taints": (OOS,),
        "annotations": dict(OURS),
        "transition": EVENT_TIME + timedelta(minutes=3),
    }
    return node(**{**defaults, **changes})


def test_back_and_nothing_left_removes_our_taint_and_our_cordon() -> None:
    decided = recovery_decision(tainted(), NodeFacts(vm_known=True, vm=vm()))
    assert decided.action is RecoveryAction.UNCORDON
    assert decided.untaint is True


@pytest.mark.parametrize(
    ("facts", "waits_for"),
    [
        pytest.param(NodeFacts(terminating_pods=("db/db-0",)), "still terminating", id="terminating"),
        pytest.param(NodeFacts(attached_volumes=("pv-a",)), "still attached", id="attached"),
        pytest.param(NodeFacts(vm_known=True, vm=vm("STOPPING")), "not RUNNING", id="vm-stopping"),
        pytest.param(NodeFacts(vm_known=True, vm=None), "gone", id="vm-gone"),
        pytest.param(NodeFacts(vm_known=True, vm=vm(id_="999")), "not the node's current instance", id="other-vm"),
    ],
)
def test_back_but_not_clear_keeps_the_taint(facts: NodeFacts, waits_for: str) -> None:
    decided = recovery_decision(tainted(), facts)
    assert decided.action is RecoveryAction.WAIT
    assert decided.untaint is False
    assert waits_for in decided.reason


def test_a_node_that_never_comes_back_keeps_the_taint() -> None:
    decided = recovery_decision(tainted(boot=OLD_BOOT, ready="Unknown", heartbeat=EVENT_TIME + timedelta(seconds=1)))
    assert decided.action is RecoveryAction.WAIT
    assert "taint kept" in decided.reason


def test_someone_elses_taint_is_never_removed() -> None:
    notes = {k: v for k, v in OURS.items() if k not in (TAINTED_AT, DETACH_PENDING)}
    decided = recovery_decision(tainted(annotations=notes), NodeFacts())
    assert decided.action is RecoveryAction.UNCORDON
    assert decided.untaint is False


def test_compute_engine_verifies_a_cordoned_node_down_for_recovery() -> None:
    cordoned = node(ready="False", annotations={k: v for k, v in OURS.items() if k not in (TAINTED_AT,)})
    assert recovery_decision(cordoned, NodeFacts()).action is RecoveryAction.WAIT
    decided = recovery_decision(cordoned, NodeFacts(vm_known=True, vm=vm("TERMINATED")))
    assert decided.action is RecoveryAction.FORCE_CLEANUP
    assert "TERMINATED" in decided.reason


# --- retrying a lift after a conflict ----------------------------------------------------------------------------


def test_a_heartbeat_does_not_stop_a_lift_but_a_new_cordon_or_boot_does() -> None:
    from functions.decisions.policy import same_for_lift

    before = tainted()
    heartbeat = replace(before, resource_version="8", ready=replace(before.ready, last_heartbeat=EVENT_TIME))
    assert same_for_lift(before, heartbeat)
    assert not same_for_lift(before, replace(before, boot_id="another"))
    assert not same_for_lift(before, replace(before, unschedulable_manager="kubectl"))
    assert not same_for_lift(before, replace(before, unschedulable=False))
    assert not same_for_lift(before, replace(before, annotations={**before.annotations, CORDONED_BY: "someone"}))
    assert not same_for_lift(before, replace(before, taints=(), raw_taints=()))


@pytest.mark.parametrize(
    ("age_hours", "published_after", "attempt", "expected"),
    [
        pytest.param(1, None, None, None, id="young"),
        pytest.param(3, None, None, "stale", id="old-nothing-known"),
        pytest.param(3, timedelta(seconds=5), None, "expired", id="published-young-handled-old"),
        pytest.param(3, timedelta(hours=3), None, "stale", id="republished-old-a-replay"),
        pytest.param(3, timedelta(hours=3), 2, "expired", id="failed-deliveries"),
        pytest.param(3, None, 1, "stale", id="first-attempt"),
    ],
)
def test_lateness_tells_a_loss_from_a_replay(
    age_hours: int, published_after: timedelta | None, attempt: int | None, expected: str | None
) -> None:
    from functions.decisions.policy import lateness

    now = EVENT_TIME + timedelta(hours=age_hours)
    published = EVENT_TIME + published_after if published_after is not None else None
    late = lateness(EVENT_TIME, now=now, max_age=timedelta(hours=2), publish_time=published, delivery_attempt=attempt)
    assert (late[0].value if late else None) == expected


def test_the_fence_verdict_compute_engine_outranks_the_node_rule() -> None:
    from functions.decisions.policy import VM_PENDING, VM_UNAVAILABLE, VmAnswer, VmFacts, fence_verdict

    silent = node(ready="Unknown", heartbeat=EVENT_TIME - timedelta(minutes=1))
    answered = VmFacts(answer=VmAnswer.ANSWERED, vm=vm("RUNNING"))
    vetoed = fence_verdict(node=silent, vm=answered, event_time=EVENT_TIME, instance_id=INSTANCE_ID)
    assert not vetoed.down
    assert vetoed.vetoed
    off = VmFacts(answer=VmAnswer.ANSWERED, vm=vm("TERMINATED"))
    assert fence_verdict(node=node(), vm=off, event_time=EVENT_TIME, instance_id=INSTANCE_ID).down
    pending = fence_verdict(node=silent, vm=VM_PENDING, event_time=EVENT_TIME, instance_id=INSTANCE_ID)
    assert not pending.down
    alone = fence_verdict(node=silent, vm=VM_UNAVAILABLE, event_time=EVENT_TIME, instance_id=INSTANCE_ID)
    assert alone.down
    assert alone.node_rule_only
    rebooted = fence_verdict(node=silent, vm=off, event_time=EVENT_TIME, instance_id=INSTANCE_ID, boot_id="earlier")
    assert not rebooted.down


def test_the_storm_cap_counts_the_window_in_an_agreed_order() -> None:
    from functions.decisions.policy import FENCED_AT, fenced_by_node_rule, storm_cap, within_storm_cap

    assert storm_cap(10, share=0.1) == 1
    assert storm_cap(3, share=0.1) == 1
    assert storm_cap(50, share=0.1) == 5
    at = "2026-10-02T08:14:07Z"
    nodes = [
        replace(node(annotations={FENCED_AT: at}), name="b"),
        replace(node(annotations={FENCED_AT: at}), name="a"),
        replace(node(annotations={FENCED_AT: "2026-10-01T08:14:07Z"}), name="old"),
        replace(node(), name="c"),
    ]
    fenced = fenced_by_node_rule(nodes, now=EVENT_TIME, window=timedelta(minutes=10))
    assert [n for _, n in fenced] == ["a", "b"]
    assert within_storm_cap(fenced, name="a", cap=1)
    assert not within_storm_cap(fenced, name="b", cap=1)
