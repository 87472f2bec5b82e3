"""Scheduled and manual operations: Job cleanup, node recovery, status, manual drain and uncordon;
each audited, each working on one cluster."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.decisions import policy
from functions.decisions.actions import Action, Severity
from functions.decisions.model import Node
from functions.decisions.names import COMPONENT
from functions.decisions.settings import ClusterConfig
from functions.decisions.times import parse_time
from functions.engines.cleanup import Cleanup
from functions.engines.drain.report import DrainReport
from functions.errors import PermanentError, TransientError
from functions.gateways import outcomes
from functions.gateways.audit import Audit
from functions.gateways.google_api import GoogleApiError
from functions.gateways.kube.errors import Conflict, NotFound
from functions.usecases.drain import Target, drain_node
from functions.usecases.node_events import NodeNotFound
from functions.usecases.runtime import Runtime

LIFT_ATTEMPTS = 5  # guarded patches retried after a conflict that changed nothing the lift decided on


@dataclass(frozen=True, kw_only=True)
class NodeChange:
    node: str
    action: str
    reason: str
    result: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"node": self.node, "action": self.action, "reason": self.reason, "result": self.result}


class Operations:
    """Cleanup, recovery, status and manual drain/uncordon."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def cleanup(
        self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit, now: datetime, budget: float | None = None
    ) -> dict[str, Any]:
        """Clean one cluster within ``budget`` seconds (at most the configured cleanup budget)."""
        client = self.runtime.client(cluster)
        run = Cleanup(
            kube=client,
            policy=self.settings.cleanup,
            audit=audit.bind(cluster=cluster.name),
            dry_run=dry_run,
            budget_seconds=min(self.settings.cleanup_budget, budget or self.settings.cleanup_budget),
            concurrency=self.settings.cleanup_concurrency,
            page_size=self.settings.cleanup_page_size,
        )
        report = run.run(now=now).summary()
        audit.record(
            Action.CLEANUP_COMPLETED if report["complete"] else Action.CLEANUP_PARTIAL,
            f"cleanup of {cluster.name}: {report['deleted_jobs']} Jobs and {report['deleted_pods']} pods "
            f"{'would be ' if dry_run else ''}deleted in {report['duration_seconds']:.1f} s"
            + ("" if report["complete"] else "; the time budget ran out, the next run resumes"),
            **report,
        )
        if not dry_run:
            self.runtime.outcomes.publish(
                outcomes.JOBS_CLEANED,
                cluster=cluster.name,
                node=None,
                audit=audit,
                data={"trigger": audit.fields.get("trigger"), **report},
            )
        return report

    def _nodes(self, cluster: ClusterConfig) -> list[Node]:
        return [
            n for n in self.runtime.client(cluster).list_nodes() if policy.cordoned_by_us(n) or policy.tainted_by_us(n)
        ]

    def _facts(self, cluster: ClusterConfig, node: Node) -> policy.NodeFacts:
        """What recovery needs beyond the Node: the VM (when the fence is on) and, for a node that
        carries our out-of-service taint, what is still terminating or attached there."""
        vm_known, vm = False, None
        if self.runtime.compute is not None and node.location is not None:
            project, zone, name = node.location
            with contextlib.suppress(GoogleApiError):  # never "down" on an error: the Node rule decides
                vm, vm_known = self.runtime.compute.get_instance(project=project, zone=zone, name=name), True
        if not policy.tainted_by_us(node):
            return policy.NodeFacts(vm_known=vm_known, vm=vm)
        client = self.runtime.client(cluster)
        pods, _ = client.list_pods_on_node(node.name)
        recorded = policy.pending_detach(node)
        attached = [
            a.persistent_volume or a.name
            for a in client.list_volume_attachments(node=node.name)
            if not recorded or (a.persistent_volume or a.name) in recorded
        ]
        return policy.NodeFacts(
            vm_known=vm_known,
            vm=vm,
            terminating_pods=tuple(sorted(p.key for p in pods if p.deletion_timestamp is not None)),
            attached_volumes=tuple(sorted(attached)),
        )

    def status(self, cluster: ClusterConfig) -> list[dict[str, Any]]:
        rows = []
        for node in self._nodes(cluster):
            decision = policy.recovery_decision(node, self._facts(cluster, node))
            notes = node.annotations
            rows.append(
                {
                    "node": node.name,
                    "cluster": cluster.name,
                    "reason": notes.get(policy.CORDON_REASON),
                    "event_id": notes.get(policy.CORDON_EVENT_ID),
                    "event_time": notes.get(policy.CORDON_EVENT_TIME),
                    "cordoned_at": notes.get(policy.CORDONED_AT),
                    "was_unschedulable": notes.get(policy.WAS_UNSCHEDULABLE) == "true",
                    "unschedulable": node.unschedulable,
                    "ready": node.ready.status,
                    "rebooted": node.boot_id != notes.get(policy.CORDON_BOOT_ID),
                    "out_of_service_taint": policy.has_out_of_service_taint(node),
                    "tainted_by_us": policy.tainted_by_us(node),
                    "tainted_at": notes.get(policy.TAINTED_AT),
                    "next": decision.action.value,
                    "why": decision.reason,
                }
            )
        return rows

    def recover(
        self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit, deadline: float | None = None
    ) -> list[dict[str, str]]:
        """Recover the nodes we cordoned in ``cluster``; a node is left for the next run when less
        than a second remains before ``deadline`` (time.monotonic), and a force-cleanup ends by it."""
        changes = []
        now = datetime.now(UTC)
        for node in self._nodes(cluster):
            node_audit = audit.bind(cluster=cluster.name, node=node.name)
            try:
                decision = policy.recovery_decision(node, self._facts(cluster, node))
            except (TransientError, NotFound) as exc:  # held all the same: said on this run too
                decision = policy.RecoveryDecision(
                    action=policy.RecoveryAction.WAIT, reason=f"not known: the facts could not be read ({exc})"
                )
            if decision.action in (policy.RecoveryAction.WAIT, policy.RecoveryAction.FORCE_CLEANUP):
                self._held(node, decision, audit=node_audit, now=now)  # held until it is lifted
            if decision.action is policy.RecoveryAction.WAIT:
                continue
            left = self.settings.recovery_deadline if deadline is None else deadline - time.monotonic()
            if left < 1:
                result = "deferred"
            else:
                try:
                    if decision.action is policy.RecoveryAction.FORCE_CLEANUP:
                        result = self._finish_force_cleanup(
                            cluster,
                            node,
                            dry_run=dry_run,
                            audit=node_audit,
                            timeout=min(self.settings.recovery_deadline, left),
                        )
                    else:
                        result = self._lift(cluster, node, decision, dry_run=dry_run, audit=node_audit)
                except NotFound:  # deleted between the list and the write: nothing of ours is left there
                    result = "node gone"
                    node_audit.record(
                        Action.NODE_RECOVERY_FAILED,
                        f"{node.name} was deleted during recovery: skipped",
                        severity=Severity.WARNING,
                        error="node gone",
                    )
                except TransientError as exc:  # one node's trouble does not stop the others
                    node_audit.record(
                        Action.NODE_RECOVERY_FAILED,
                        f"recovery of {node.name} failed: {exc}",
                        severity=Severity.ERROR,
                        error=str(exc),
                    )
                    result = f"failed: {exc}"
            changes.append(
                NodeChange(
                    node=node.name, action=decision.action.value, reason=decision.reason, result=result
                ).as_dict()
            )
        return changes

    @staticmethod
    def _held(node: Node, decision: policy.RecoveryDecision, *, audit: Audit, now: datetime) -> None:
        """Invariant 6: every node we hold (our cordon or taint, waiting) is said, with its age, on
        each run: a node held too long alerts instead of being forgotten."""
        since = policy.cordon_event_time(node) or parse_time(node.annotations.get(policy.TAINTED_AT))
        held_seconds = round((now - since).total_seconds(), 1) if since is not None else None
        back = decision.held
        audit.record(
            Action.NODE_HELD,
            f"{node.name} is held by our {'out-of-service taint' if policy.tainted_by_us(node) else 'cordon'}"
            + (f" for {held_seconds:.0f} s" if held_seconds is not None else "")
            + f": {decision.reason}",
            severity=Severity.WARNING if back or decision.vetoed or held_seconds is None else Severity.INFO,
            reason=decision.reason,
            held_seconds=held_seconds,
            back=back,
            back_since=node.ready.last_transition if back else None,
            vetoed=decision.vetoed,
        )

    def _lift(
        self, cluster: ClusterConfig, node: Node, decision: policy.RecoveryDecision, *, dry_run: bool, audit: Audit
    ) -> str:
        """Uncordon (or only release) a node, and remove our out-of-service taint when the decision
        says so, in one patch guarded by its resourceVersion."""
        client = self.runtime.client(cluster)
        uncordon = decision.action is policy.RecoveryAction.UNCORDON
        if policy.tainted_by_us(node) and not decision.untaint:
            return "kept: our out-of-service taint stays, and our records with it"
        for _ in range(LIFT_ATTEMPTS):
            try:
                lifted = client.patch_node(
                    node.name,
                    uid=node.uid,
                    resource_version=node.resource_version,
                    unschedulable=False if uncordon else None,
                    annotations=policy.release_annotations(),
                    taints=policy.taints_without_out_of_service(node) if decision.untaint else None,
                    dry_run=dry_run,
                )
                break
            except Conflict:  # a heartbeat or another writer: retry only if what the lift decided on holds
                fresh = client.get_node(node.name)
                if fresh is None or fresh.uid != node.uid:  # deleted, or registered again: not ours to lift
                    return "node gone"
                if not policy.same_for_lift(node, fresh):
                    return "changed meanwhile: left for the next run"
                node = fresh
        else:
            return "changed meanwhile: left for the next run"
        if decision.untaint:
            audit.record(
                Action.NODE_UNTAINTED,
                f"{'would remove' if dry_run else 'removed'} our out-of-service taint from {node.name}: "
                f"{decision.reason}",
                reason=decision.reason,
                dry_run=dry_run,
            )
        verb = "uncordoned" if uncordon else "released"
        audit.record(
            Action.NODE_UNCORDONED if uncordon else Action.NODE_RELEASED,
            f"{'would have ' if dry_run else ''}{verb} {node.name}: {decision.reason}",
            reason=decision.reason,
            event_id=node.annotations.get(policy.CORDON_EVENT_ID),
            dry_run=dry_run,
        )
        if not dry_run:
            events = self.runtime.events(cluster)
            if decision.untaint:
                events.out_of_service_taint_removed(lifted, why=decision.reason)
            if uncordon:
                events.uncordoned(lifted, why=decision.reason)
            else:
                events.released(lifted, why=decision.reason)
        if uncordon and not dry_run:
            self.runtime.outcomes.publish(
                outcomes.UNCORDONED,
                cluster=cluster.name,
                node=node.name,
                audit=audit,
                data={
                    "node": node.name,
                    "cluster": cluster.name,
                    "trigger": audit.fields.get("trigger"),
                    "event_id": node.annotations.get(policy.CORDON_EVENT_ID),
                    "reason": decision.reason,
                },
            )
        return verb

    def _finish_force_cleanup(
        self, cluster: ClusterConfig, node: Node, *, dry_run: bool, audit: Audit, timeout: float
    ) -> str:
        client = self.runtime.client(cluster)
        pods, _ = client.list_pods_on_node(node.name)
        reason = node.annotations.get(policy.CORDON_REASON, "recovery")
        operator_force = node.annotations.get(policy.FORCE_REQUESTED) == "true"
        force = self.settings.force_cleanup and policy.force_reason(reason, operator_force=operator_force)
        if not force:  # invariant 1: never reached through recovery_decision; said, not forced, if it were
            return f"not forced: a {reason} drain never forces"
        taint = self.settings.out_of_service_taint
        untainted_volumes = (
            taint and not policy.has_out_of_service_taint(node) and client.list_volume_attachments(node=node.name)
        )
        if not any(policy.classify_pod(p).target for p in pods) and not untainted_volumes:
            return "nothing left on the node"
        event_time = policy.cordon_event_time(node) or datetime.now(UTC)
        plan = policy.DrainPlan(
            reason=reason,
            event_id=node.annotations.get(policy.CORDON_EVENT_ID, "recovery"),
            event_time=event_time,
            timeout=timedelta(seconds=timeout),
            force_when_down=True,
            instance_id=node.annotations.get(policy.CORDON_INSTANCE_ID),
            out_of_service_taint=taint,
            operator_force=operator_force,
        )
        target = Target(cluster=cluster, client=client, node=node)
        report = drain_node(
            self.runtime, target, plan, audit=audit.bind(event_id=plan.event_id, event_kind=reason), dry_run=dry_run
        )
        return report.outcome.value if report else "node gone"

    # -------------------------------------------------------------- manual
    def drain(
        self,
        cluster: ClusterConfig,
        node_name: str,
        *,
        dry_run: bool,
        timeout: float,
        audit: Audit,
        force: bool = False,
    ) -> DrainReport:
        """An operator's drain: graceful; with ``force``, what is left once the VM is verified off
        (the same fence as an event's: Compute Engine first, the storm-capped Node rule when it
        cannot answer) is force-deleted, after the out-of-service taint."""
        client = self.runtime.client(cluster)
        node = client.get_node(node_name)
        if node is None:
            raise NodeNotFound(f"node {node_name} does not exist in cluster {cluster.name}")
        forced = force and self.settings.force_cleanup
        plan = policy.DrainPlan(
            reason=policy.MANUAL,
            event_id=f"manual-{uuid.uuid4()}",
            event_time=datetime.now(UTC),
            timeout=timedelta(seconds=timeout),
            force_when_down=forced,
            instance_id=node.annotations.get(policy.GKE_INSTANCE_ID),
            out_of_service_taint=forced and self.settings.out_of_service_taint,
            operator_force=forced,
        )
        target = Target(cluster=cluster, client=client, node=node)
        report = drain_node(
            self.runtime,
            target,
            plan,
            audit=audit.bind(cluster=cluster.name, node=node_name, event_id=plan.event_id),
            dry_run=dry_run,
        )
        if report is None:
            raise NodeNotFound(f"node {node_name} disappeared during the drain")
        return report

    def uncordon(
        self,
        cluster: ClusterConfig,
        node_name: str,
        *,
        dry_run: bool,
        force: bool,
        audit: Audit,
        untaint: bool = False,
    ) -> dict[str, str]:
        client = self.runtime.client(cluster)
        node = client.get_node(node_name)
        if node is None:
            raise NodeNotFound(f"node {node_name} does not exist in cluster {cluster.name}")
        decision = policy.uncordon_decision(node, force=force, untaint=untaint)
        if decision is policy.UncordonRefused.NOT_OURS:
            raise NotOurs(f"node {node_name} was not cordoned by {COMPONENT}; use kubectl uncordon")
        if decision is policy.UncordonRefused.TAINTED:
            since = node.annotations.get(policy.TAINTED_AT, "")
            raise NotOurs(
                f"node {node_name} carries our out-of-service taint (since {since}): Kubernetes treats its VM as off "
                "and has detached its volumes. Check that the VM is running again (gke-node-drainer status), then "
                "send untaint=true (CLI: --untaint) to remove the taint and the cordon together"
            )
        if decision is policy.UncordonRefused.NOT_OUR_CORDON:
            reason = policy.lift_decision(node).reason
            raise NotOurs(f"node {node_name}: {reason}; send force=true to uncordon anyway")
        result = self._lift(
            cluster, node, decision, dry_run=dry_run, audit=audit.bind(cluster=cluster.name, node=node_name)
        )
        return NodeChange(node=node_name, action=decision.action.value, reason=decision.reason, result=result).as_dict()


class NotOurs(PermanentError):
    """The request would undo a cordon that is not ours to lift."""
