"""A stateful property test of the fence's pure decisions (issue: the fence holds on every path).

One node and its VM live through events of every kind and age, VM stops and starts, Ready flaps
(an API-server outage), network partitions (Ready Unknown while the VM runs), re-registrations,
operator drains and uncordons, and scheduled recovery runs, with Compute Engine answering or not.
The machine applies the decisions the way the use cases do (staleness, the plan, the fence, the
recovery decision, the operator's uncordon) to a model of the Node, and after every step checks:

1. a force (force-delete, out-of-service taint) had a reason that allows it and a VM verified off:
   Compute Engine said off, or it could not answer and the Node rule held;
2. Compute Engine outranks the Node rule: no force while it answers that the VM is not off;
4. a Ready flap never makes an event stale: a redelivery of the event whose cordon we hold, same
   boot, is acted on;
6. our out-of-service taint never stays without our records.

Fixed seed and a bounded number of examples in CI; ``FENCE_EXAMPLES=5000`` runs more on demand.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from functions.decisions import policy
from functions.decisions.logentry import EventKind
from functions.decisions.model import Node, ReadyCondition, VmInstance
from functions.decisions.settings import DEFAULT_DEADLINES

START = datetime(2026, 10, 2, 8, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=2)
NAME = "gke-pool-a-1234"
NODE_MONITOR_GRACE = timedelta(seconds=40)  # the node-lifecycle controller's grace period


@dataclass
class World:
    """The truth (does the VM run? does its kubelet reach the API server?) and what is observable."""

    now: datetime = START
    vm_running: bool = True
    instance_id: str = "1000"
    vm_last_start: datetime = START - timedelta(days=1)
    partitioned: bool = False  # the kubelet cannot reach the API server while the VM runs
    node: Node = field(default_factory=lambda: _new_node(START - timedelta(days=1), START - timedelta(days=1)))

    def vm_answer(self) -> VmInstance:
        return VmInstance(
            id=self.instance_id,
            name=NAME,
            status="RUNNING" if self.vm_running else "TERMINATED",
            last_start=self.vm_last_start,
        )


def _new_node(created: datetime, now: datetime) -> Node:
    return Node(
        name=NAME,
        uid=str(uuid.uuid4()),
        resource_version="1",
        provider_id=f"gce://acme-prod/europe-west4-b/{NAME}",
        unschedulable=False,
        annotations={policy.GKE_INSTANCE_ID: "1000"},
        boot_id=str(uuid.uuid4()),
        ready=ReadyCondition(status="True", last_heartbeat=now, last_transition=created),
        created_at=created,
    )


@dataclass(frozen=True)
class Force:
    """One force the decisions led to, with the facts at that moment."""

    reason: str
    operator_force: bool
    vm_running: bool
    compute_answered: bool
    node_rule: bool  # the Node rule held at that moment


KINDS = list(EventKind)


class FenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.forces: list[Force] = []
        # (event id, kind, event time, the event's instance id) of every event sent so far
        self.sent: list[tuple[str, EventKind, datetime, str | None]] = []
        self.acted_after_flap: list[str] = []
        self.stale_redeliveries: list[str] = []

    # ------------------------------------------------------------------ the world
    def _set_node(self, **changes: object) -> None:
        self.world.node = replace(self.world.node, **changes)

    def _ready(self, status: str, *, heartbeat: datetime | None = None, transition: bool = True) -> None:
        old = self.world.node.ready
        self._set_node(
            ready=ReadyCondition(
                status=status,
                last_heartbeat=heartbeat if heartbeat is not None else old.last_heartbeat,
                last_transition=self.world.now if transition and status != old.status else old.last_transition,
            )
        )

    @rule(seconds=st.integers(min_value=1, max_value=4000))
    def time_passes(self, seconds: int) -> None:
        world = self.world
        world.now += timedelta(seconds=seconds)
        alive = world.vm_running and not world.partitioned
        if alive:
            self._ready("True", heartbeat=world.now)
        elif (
            world.node.ready.last_heartbeat is None or world.now - world.node.ready.last_heartbeat > NODE_MONITOR_GRACE
        ):
            self._ready("Unknown")  # the node-lifecycle controller gives up on the kubelet

    @rule()
    def vm_stops(self) -> None:
        self.world.vm_running = False

    @rule()
    def vm_starts(self) -> None:
        """A new boot of the same VM (a preempted Spot VM restarted by its MIG)."""
        world = self.world
        if world.vm_running:
            return
        world.vm_running, world.vm_last_start = True, world.now
        self._set_node(boot_id=str(uuid.uuid4()))
        if not world.partitioned:
            self._ready("True", heartbeat=world.now)

    @rule()
    def vm_replaced(self) -> None:
        """The MIG recreated the VM under the same name: another id."""
        world = self.world
        world.instance_id = str(int(world.instance_id) + 1)
        world.vm_running, world.vm_last_start = True, world.now
        annotations = {**world.node.annotations, policy.GKE_INSTANCE_ID: world.instance_id}
        self._set_node(boot_id=str(uuid.uuid4()), annotations=annotations)

    @rule(partitioned=st.booleans())
    def network(self, partitioned: bool) -> None:
        self.world.partitioned = partitioned

    @rule()
    def ready_flaps(self) -> None:
        """An API-server outage: the node-lifecycle controller flips Ready, the kubelet sets it back;
        the same boot, the same VM."""
        if self.world.vm_running and not self.world.partitioned:
            self._ready("Unknown")
            self.world.now += timedelta(seconds=5)
            self._ready("True", heartbeat=self.world.now)

    @rule()
    def node_registers_again(self) -> None:
        """The Node object deleted and registered again: a new UID, none of our records."""
        if self.world.vm_running:
            self.world.node = replace(_new_node(self.world.now, self.world.now), boot_id=self.world.node.boot_id)
            annotations = {policy.GKE_INSTANCE_ID: self.world.instance_id}
            self._set_node(annotations=annotations)

    # ------------------------------------------------------------------ the fence as the drain applies it
    def _vm_facts(self, compute: bool) -> policy.VmFacts:
        if not compute:
            return policy.VM_UNAVAILABLE
        return policy.VmFacts(answer=policy.VmAnswer.ANSWERED, vm=self.world.vm_answer())

    def _drain(self, plan: policy.DrainPlan, *, compute: bool) -> None:
        """What the drain engine decides once: cordon, then force only on a verified-down verdict."""
        node = self.world.node
        update = policy.cordon_annotations(node, plan, now=self.world.now)
        annotations = {k: v for k, v in {**node.annotations, **update}.items() if v is not None}
        self._set_node(unschedulable=True, annotations=annotations)
        if not plan.force_when_down:
            return
        verdict = policy.fence_verdict(
            node=self.world.node,
            vm=self._vm_facts(compute),
            event_time=plan.event_time,
            instance_id=plan.instance_id,
        )
        if verdict.down:
            self._force(
                plan.reason, operator_force=plan.operator_force, compute=compute, taint=plan.out_of_service_taint
            )

    def _force(self, reason: str, *, operator_force: bool, compute: bool, taint: bool) -> None:
        node = self.world.node
        self.forces.append(
            Force(
                reason=reason,
                operator_force=operator_force,
                vm_running=self.world.vm_running,
                compute_answered=compute,
                node_rule=policy.node_down(node, event_time=policy.cordon_event_time(node) or START) is not None,
            )
        )
        if taint and not policy.has_out_of_service_taint(node):
            notes = policy.taint_annotations(now=self.world.now, attached_volumes=["pv-a"])
            annotations = {k: v for k, v in {**node.annotations, **notes}.items() if v is not None}
            self._set_node(
                annotations=annotations,
                taints=(*node.taints, policy.OUT_OF_SERVICE),
                raw_taints=(*node.raw_taints, policy.OUT_OF_SERVICE.as_json()),
            )

    # ------------------------------------------------------------------ events
    @rule(
        kind=st.sampled_from(KINDS),
        age=st.sampled_from([0, 5, 60, 3600, 7300, 86400 * 365 * 3]),
        compute=st.booleans(),
        attempt=st.sampled_from([None, 1, 2]),
        with_id=st.booleans(),  # an entry may lack resource.labels.instance_id
    )
    def event_arrives(self, kind: EventKind, age: int, compute: bool, attempt: int | None, with_id: bool) -> None:
        event_time = self.world.now - timedelta(seconds=age)
        event_id = f"ev-{len(self.sent)}"
        instance = self.world.instance_id if with_id else None
        self.sent.append((event_id, kind, event_time, instance))
        self._deliver(event_id, kind, event_time, compute=compute, attempt=attempt, instance=instance)

    @precondition(lambda self: bool(self.sent))
    @rule(index=st.integers(min_value=0), compute=st.booleans())
    def event_redelivered(self, index: int, compute: bool) -> None:
        event_id, kind, event_time, instance = self.sent[index % len(self.sent)]  # the same entry again
        node = self.world.node
        ours_same_boot = (
            policy.cordoned_by_us(node)
            and node.annotations.get(policy.CORDON_EVENT_ID) == event_id
            and node.annotations.get(policy.CORDON_BOOT_ID) == node.boot_id
            and (node.created_at is None or node.created_at <= event_time)
            and self.world.now - event_time <= MAX_AGE
            and self.world.vm_last_start <= event_time
            and not policy.stale_instance(node, instance)
        )
        acted = self._deliver(event_id, kind, event_time, compute=compute, attempt=2, instance=instance)
        if ours_same_boot and not acted:
            self.stale_redeliveries.append(event_id)

    def _deliver(
        self,
        event_id: str,
        kind: EventKind,
        event_time: datetime,
        *,
        compute: bool,
        attempt: int | None,
        instance: str | None,
    ) -> bool:
        """The node-event use case's decisions in its order; True when it drained."""
        late = policy.lateness(event_time, now=self.world.now, max_age=MAX_AGE, delivery_attempt=attempt)
        if late is not None:
            return False
        if policy.stale_instance(self.world.node, instance):
            return False
        vm = self.world.vm_answer() if compute else None
        if policy.stale_event(self.world.node, event_id=event_id, event_time=event_time, vm=vm):
            return False
        plan = policy.plan_for_event(
            kind=kind,
            event_id=event_id,
            event_time=event_time,
            instance_id=instance,
            deadlines=DEFAULT_DEADLINES,
            force_cleanup=True,
        )
        self._drain(plan, compute=compute)
        return True

    # ------------------------------------------------------------------ operators and recovery
    @rule(force=st.booleans(), compute=st.booleans())
    def operator_drains(self, force: bool, compute: bool) -> None:
        plan = policy.DrainPlan(
            reason=policy.MANUAL,
            event_id=f"manual-{uuid.uuid4()}",
            event_time=self.world.now,
            timeout=timedelta(seconds=60),
            force_when_down=force,
            instance_id=self.world.node.annotations.get(policy.GKE_INSTANCE_ID),
            out_of_service_taint=force,
            operator_force=force,
        )
        self._drain(plan, compute=compute)

    @rule(force=st.booleans(), untaint=st.booleans())
    def operator_uncordons(self, force: bool, untaint: bool) -> None:
        decision = policy.uncordon_decision(self.world.node, force=force, untaint=untaint)
        if isinstance(decision, policy.RecoveryDecision):
            self._lift(decision)

    def _lift(self, decision: policy.RecoveryDecision) -> None:
        node = self.world.node
        if policy.tainted_by_us(node) and not decision.untaint:
            return  # as the use case: our records stay with our taint
        annotations = {k: v for k, v in node.annotations.items() if k not in policy.OUR_NODE_ANNOTATIONS}
        changes: dict[str, object] = {"annotations": annotations}
        if decision.action is policy.RecoveryAction.UNCORDON:
            changes["unschedulable"] = False
        if decision.untaint:
            kept = tuple(t for t in node.taints if t.key != policy.OUT_OF_SERVICE.key)
            changes |= {"taints": kept, "raw_taints": tuple(t.as_json() for t in kept)}
        self._set_node(**changes)

    @rule(compute=st.booleans())
    def recovery_runs(self, compute: bool) -> None:
        node = self.world.node
        facts = policy.NodeFacts(vm_known=compute, vm=self.world.vm_answer() if compute else None)
        decision = policy.recovery_decision(node, facts)
        if decision.action is policy.RecoveryAction.FORCE_CLEANUP:
            # the recovery use case hands the drain engine a plan for the cordon's reason; the
            # engine's fence decides again
            reason = node.annotations.get(policy.CORDON_REASON, "")
            operator_force = node.annotations.get(policy.FORCE_REQUESTED) == "true"
            assert policy.force_reason(reason, operator_force=operator_force), decision
            plan = policy.DrainPlan(
                reason=reason,
                event_id=node.annotations.get(policy.CORDON_EVENT_ID, "recovery"),
                event_time=policy.cordon_event_time(node) or self.world.now,
                timeout=timedelta(seconds=60),
                force_when_down=True,
                instance_id=node.annotations.get(policy.CORDON_INSTANCE_ID),
                out_of_service_taint=True,
                operator_force=operator_force,
            )
            verdict = policy.fence_verdict(
                node=node, vm=self._vm_facts(compute), event_time=plan.event_time, instance_id=plan.instance_id
            )
            if verdict.down:
                self._force(reason, operator_force=operator_force, compute=compute, taint=True)
        elif decision.action in (policy.RecoveryAction.UNCORDON, policy.RecoveryAction.RELEASE):
            self._lift(decision)

    # ------------------------------------------------------------------ the invariants
    @invariant()
    def force_needs_a_reason_and_a_vm_verified_off(self) -> None:
        for force in self.forces:
            assert policy.force_reason(force.reason, operator_force=force.operator_force), force
            if force.compute_answered:
                # Compute Engine outranks the Node rule: it answered, so the VM was off
                assert not force.vm_running, force
            else:
                assert force.node_rule, force

    @invariant()
    def a_ready_flap_never_makes_our_event_stale(self) -> None:
        assert not self.stale_redeliveries

    @invariant()
    def our_taint_keeps_our_records(self) -> None:
        node = self.world.node
        if policy.has_out_of_service_taint(node):
            assert policy.TAINTED_AT in node.annotations, node.annotations


FenceMachine.TestCase.settings = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=int(os.environ.get("FENCE_EXAMPLES", "600")),
    stateful_step_count=40,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFenceProperties = FenceMachine.TestCase


# The three failures of the issue, as fixed sequences of the same machine (each fails on the old rules).


def check(machine: FenceMachine) -> None:
    machine.force_needs_a_reason_and_a_vm_verified_off()
    machine.a_ready_flap_never_makes_our_event_stale()
    machine.our_taint_keeps_our_records()


def test_an_unforced_drain_of_a_partitioned_node_is_never_forced_by_recovery() -> None:
    machine = FenceMachine()
    machine.operator_drains(force=False, compute=True)
    machine.network(partitioned=True)
    machine.time_passes(seconds=120)  # Ready Unknown, heartbeat before the drain; the VM runs
    assert machine.world.node.ready.status == "Unknown"
    for compute in (True, False):
        machine.recovery_runs(compute=compute)
        check(machine)
    assert machine.forces == []


def test_a_graceful_delete_then_ready_unknown_with_the_vm_running_is_never_forced() -> None:
    machine = FenceMachine()
    machine.event_arrives(kind=EventKind.DELETE, age=0, compute=True, attempt=None, with_id=True)
    machine.network(partitioned=True)
    machine.time_passes(seconds=120)
    machine.recovery_runs(compute=True)
    machine.recovery_runs(compute=False)
    check(machine)
    assert machine.forces == []


def test_compute_engine_running_vetoes_the_node_rule_after_a_preemption() -> None:
    machine = FenceMachine()
    machine.event_arrives(kind=EventKind.PREEMPTED, age=0, compute=True, attempt=None, with_id=True)
    machine.network(partitioned=True)  # the VM was not actually stopped: a partition
    machine.time_passes(seconds=120)
    machine.recovery_runs(compute=True)
    check(machine)
    assert machine.forces == []
    machine.vm_stops()
    machine.recovery_runs(compute=True)
    check(machine)
    assert len(machine.forces) == 1


def test_a_redelivery_after_a_ready_flap_continues_the_drain() -> None:
    machine = FenceMachine()
    machine.event_arrives(kind=EventKind.DELETE, age=0, compute=True, attempt=None, with_id=True)
    machine.ready_flaps()
    machine.event_redelivered(index=0, compute=True)
    machine.event_redelivered(index=0, compute=False)
    check(machine)
