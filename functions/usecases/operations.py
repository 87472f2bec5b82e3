"""Scheduled and manual operations: Job cleanup, node recovery, status, manual drain and uncordon;
each audited, each working on one cluster."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.decisions import policy
from functions.decisions.actions import Action, Severity
from functions.decisions.model import Node
from functions.decisions.names import COMPONENT
from functions.decisions.settings import ClusterConfig
from functions.engines.cleanup import Cleanup
from functions.engines.drain import DrainReport
from functions.errors import PermanentError, TransientError
from functions.gateways import outcomes
from functions.gateways.audit import Audit
from functions.gateways.kube.errors import Conflict
from functions.usecases.drain import Target, drain_node
from functions.usecases.node_events import NodeNotFound
from functions.usecases.runtime import Runtime


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

    def cleanup(self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit, now: datetime) -> dict[str, Any]:
        client = self.runtime.client(cluster)
        run = Cleanup(
            kube=client,
            policy=self.settings.cleanup,
            audit=audit.bind(cluster=cluster.name),
            dry_run=dry_run,
            budget_seconds=self.settings.cleanup_budget,
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
        return [n for n in self.runtime.client(cluster).list_nodes() if policy.cordoned_by_us(n)]

    def status(self, cluster: ClusterConfig) -> list[dict[str, Any]]:
        rows = []
        for node in self._nodes(cluster):
            decision = policy.recovery_decision(node)
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
                    "next": decision.action.value,
                    "why": decision.reason,
                }
            )
        return rows

    def recover(self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit) -> list[dict[str, str]]:
        changes = []
        for node in self._nodes(cluster):
            decision = policy.recovery_decision(node)
            node_audit = audit.bind(cluster=cluster.name, node=node.name)
            if decision.action is policy.RecoveryAction.WAIT:
                continue
            try:
                if decision.action is policy.RecoveryAction.FORCE_CLEANUP:
                    result = self._finish_force_cleanup(cluster, node, dry_run=dry_run, audit=node_audit)
                else:
                    result = self._lift(cluster, node, decision, dry_run=dry_run, audit=node_audit)
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

    def _lift(
        self, cluster: ClusterConfig, node: Node, decision: policy.RecoveryDecision, *, dry_run: bool, audit: Audit
    ) -> str:
        """Uncordon (or only release) a node, guarded by its resourceVersion."""
        client = self.runtime.client(cluster)
        uncordon = decision.action is policy.RecoveryAction.UNCORDON
        try:
            lifted = client.patch_node(
                node.name,
                resource_version=node.resource_version,
                unschedulable=False if uncordon else None,
                annotations=policy.release_annotations(),
                dry_run=dry_run,
            )
        except Conflict:
            return "changed meanwhile: left for the next run"
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

    def _finish_force_cleanup(self, cluster: ClusterConfig, node: Node, *, dry_run: bool, audit: Audit) -> str:
        client = self.runtime.client(cluster)
        pods, _ = client.list_pods_on_node(node.name)
        if not any(policy.classify_pod(p).target for p in pods):
            return "nothing left on the node"
        event_time = policy.cordon_event_time(node) or datetime.now(UTC)
        plan = policy.DrainPlan(
            reason=node.annotations.get(policy.CORDON_REASON, "recovery"),
            event_id=node.annotations.get(policy.CORDON_EVENT_ID, "recovery"),
            event_time=event_time,
            timeout=timedelta(seconds=self.settings.recovery_deadline),
            force_when_down=self.settings.force_cleanup,
        )
        target = Target(cluster=cluster, client=client, node=node)
        report = drain_node(self.runtime, target, plan, audit=audit.bind(event_id=plan.event_id), dry_run=dry_run)
        return report.outcome.value if report else "node gone"

    # -------------------------------------------------------------- manual
    def drain(
        self, cluster: ClusterConfig, node_name: str, *, dry_run: bool, timeout: float, audit: Audit
    ) -> DrainReport:
        client = self.runtime.client(cluster)
        node = client.get_node(node_name)
        if node is None:
            raise NodeNotFound(f"node {node_name} does not exist in cluster {cluster.name}")
        plan = policy.DrainPlan(
            reason="manual",
            event_id=f"manual-{uuid.uuid4()}",
            event_time=datetime.now(UTC),
            timeout=timedelta(seconds=timeout),
            force_when_down=False,
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
        self, cluster: ClusterConfig, node_name: str, *, dry_run: bool, force: bool, audit: Audit
    ) -> dict[str, str]:
        client = self.runtime.client(cluster)
        node = client.get_node(node_name)
        if node is None:
            raise NodeNotFound(f"node {node_name} does not exist in cluster {cluster.name}")
        if not policy.cordoned_by_us(node):
            raise NotOurs(f"node {node_name} was not cordoned by {COMPONENT}; use kubectl uncordon")
        decision = policy.lift_decision(node)
        if decision.action is not policy.RecoveryAction.UNCORDON and node.unschedulable and force:
            decision = policy.RecoveryDecision(
                action=policy.RecoveryAction.UNCORDON, reason=f"forced by the operator ({decision.reason})"
            )
        elif decision.action is not policy.RecoveryAction.UNCORDON and node.unschedulable:
            raise NotOurs(f"node {node_name}: {decision.reason}; send force=true to uncordon anyway")
        result = self._lift(
            cluster, node, decision, dry_run=dry_run, audit=audit.bind(cluster=cluster.name, node=node_name)
        )
        return NodeChange(node=node_name, action=decision.action.value, reason=decision.reason, result=result).as_dict()


class NotOurs(PermanentError):
    """The request would undo a cordon that is not ours to lift."""
