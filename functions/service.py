"""Use cases behind the entry points: one Service per function instance.

The service audits every decision and signals the outcome by return value or by raising
:class:`~functions.errors.PermanentError` (acknowledge: bad input, already audited) or
:class:`~functions.errors.TransientError` (retry: the API is unavailable). Only main.py maps them.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions import audit as audit_log
from functions import config, events, outcomes, policy
from functions.audit import Audit
from functions.config import ClusterConfig, Settings
from functions.drain import Drain, DrainReport, NodeGone
from functions.errors import DrainerError, MalformedEvent, PermanentError, TransientError
from functions.jobs import Cleanup
from functions.kube import ApiForbidden, ClusterClient, Conflict
from functions.model import Node
from functions.outcomes import OutcomePublisher

ClientFactory = Callable[[ClusterConfig], ClusterClient]


@dataclass(frozen=True, kw_only=True)
class Resolution:
    cluster: ClusterConfig
    client: ClusterClient
    node: Node


class NodeNotFound(DrainerError):
    """No configured cluster has the instance as a node (acknowledge: nothing to do)."""


class Service:
    def __init__(self, settings: Settings, *, client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self._client_factory = client_factory or (
            lambda c: ClusterClient(c, timeout=settings.api_timeout, container_api=settings.container_api)
        )
        self._clients: dict[str, ClusterClient] = {}
        self._clients_lock = threading.Lock()
        self.audit = Audit({"component": policy.COMPONENT})
        self.outcomes = OutcomePublisher(topic=settings.outcome_topic, type_prefix=settings.outcome_type_prefix)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Service:
        settings = config.load(env)
        audit_log.configure(log_name=settings.audit_log_name, api_endpoint=settings.logging_api)
        service = cls(settings)
        service.audit.record("service.started", "gke-node-drainer instance started", settings=settings.summary())
        return service

    def client(self, cluster: ClusterConfig) -> ClusterClient:
        with self._clients_lock:
            existing = self._clients.get(cluster.name)
            if existing is not None:
                return existing
        made = self._client_factory(cluster)  # may discover the endpoint: outside the lock
        with self._clients_lock:
            return self._clients.setdefault(cluster.name, made)

    # ------------------------------------------------------------ events
    def handle_pubsub(self, data: Any, *, trigger: str, delivery_id: str | None) -> DrainReport | None:
        """One Pub/Sub delivery of a log-sink entry. Returns the drain report, or None when ignored."""
        try:
            return self._handle_pubsub(data, trigger=trigger, delivery_id=delivery_id)
        finally:
            self.finish()

    def finish(self) -> None:
        """Before a handler returns (the platform may freeze the instance): outcomes, then audit."""
        self.outcomes.flush()
        audit_log.flush()

    def _handle_pubsub(self, data: Any, *, trigger: str, delivery_id: str | None) -> DrainReport | None:
        audit = self.audit.bind(trigger=trigger, delivery_id=delivery_id)
        try:
            message = events.pubsub_message_from_cloudevent_data(data)
            entry = events.log_entry_from_message(message)
            parsed = events.parse_log_entry(entry)
        except MalformedEvent as exc:
            audit.record(
                "event.malformed", f"acknowledged a malformed event: {exc}", severity="WARNING", error=str(exc)
            )
            raise
        if isinstance(parsed, events.IgnoredEvent):
            audit.record(
                "event.ignored",
                f"ignored: {parsed.reason}",
                reason=parsed.reason,
                method=parsed.method,
                instance=parsed.instance,
                insert_id=parsed.insert_id,
            )
            return None
        return self.handle_node_event(parsed, audit=audit)

    def handle_node_event(self, event: events.NodeEvent, *, audit: Audit) -> DrainReport | None:
        audit = audit.bind(
            event_id=event.event_id,
            event_kind=event.kind.value,
            instance=event.instance,
            instance_id=event.instance_id,
            zone=event.zone,
            project=event.project,
            principal=event.principal,
            insert_id=event.insert_id,
        )
        audit.record(
            "event.received",
            f"{event.kind.value} event for instance {event.instance}",
            method=event.method,
            event_time=event.event_time,
        )
        try:
            found = self.resolve(project=event.project, zone=event.zone, instance=event.instance, audit=audit)
        except NodeNotFound as exc:
            audit.record("event.ignored", f"ignored: {exc}", reason=str(exc))
            return None
        node_audit = audit.bind(cluster=found.cluster.name, node=found.node.name)
        if policy.stale_instance(found.node, event.instance_id):
            reason = (
                f"node {found.node.name} now runs instance {found.node.annotations.get(policy.GKE_INSTANCE_ID)}, "
                f"not the event's {event.instance_id}: the event is about a VM that was already replaced"
            )
            node_audit.record("event.ignored", f"ignored: {reason}", reason=reason)
            return None
        plan = policy.plan_for_event(
            kind=event.kind,
            event_id=event.event_id,
            event_time=event.event_time,
            instance_id=event.instance_id,
            deadlines=self.settings.deadlines,
            force_cleanup=self.settings.force_cleanup,
        )
        return self.drain(found, plan, audit=node_audit, dry_run=self.settings.dry_run)

    def drain(self, found: Resolution, plan: policy.DrainPlan, *, audit: Audit, dry_run: bool) -> DrainReport | None:
        started = time.monotonic()
        audit.record(
            "drain.started",
            f"draining {found.node.name} ({plan.reason}), deadline {plan.timeout.total_seconds():g} s",
            deadline_seconds=plan.timeout.total_seconds(),
            force_when_down=plan.force_when_down,
            dry_run=dry_run,
        )
        drain = Drain(
            kube=found.client,
            node_name=found.node.name,
            plan=plan,
            audit=audit,
            dry_run=dry_run,
            concurrency=self.settings.eviction_concurrency,
        )
        try:
            report = drain.run()
        except NodeGone as exc:
            audit.record("event.ignored", f"ignored: {exc}", reason=str(exc))
            return None
        except (TransientError, PermanentError) as exc:
            duration = round(time.monotonic() - started, 3)
            audit.record(
                "drain.failed",
                f"drain of {found.node.name} failed: {exc}",
                severity="ERROR",
                error=str(exc),
                retry=isinstance(exc, TransientError),
                duration_seconds=duration,
            )
            if not dry_run:
                self.outcomes.publish(
                    outcomes.DRAIN_FAILED,
                    cluster=found.cluster.name,
                    node=found.node.name,
                    audit=audit,
                    data={**self._context(audit, plan), "error": str(exc), "duration_seconds": duration},
                )
            raise
        severity = "INFO" if report.outcome.value != "incomplete" else "WARNING"
        audit.record(
            f"drain.{report.outcome.value}",
            f"drain of {found.node.name} {report.outcome.value} in {report.duration_seconds:.2f} s"
            + (f": {report.message}" if report.message else ""),
            severity=severity,
            **report.summary(),
        )
        if not dry_run:
            kind = outcomes.DRAINED if report.outcome.value == "completed" else outcomes.DRAIN_FAILED
            self.outcomes.publish(
                kind,
                cluster=found.cluster.name,
                node=found.node.name,
                audit=audit,
                data={**self._context(audit, plan), **report.summary()},
            )
        if report.transient_failures:
            raise TransientError(f"{report.transient_failures} pod(s) left because the API server failed; retrying")
        return report

    @staticmethod
    def _context(audit: Audit, plan: policy.DrainPlan) -> dict[str, Any]:
        return {
            "trigger": audit.fields.get("trigger"),
            "event_id": plan.event_id,
            "reason": plan.reason,
            "principal": audit.fields.get("principal"),
        }

    # ---------------------------------------------------------- resolution
    def resolve(self, *, project: str, zone: str, instance: str, audit: Audit) -> Resolution:
        """Find the node named ``instance`` whose providerID is gce://project/zone/instance."""
        candidates = [c for c in self.settings.clusters if c.may_own(project=project, zone=zone)]
        if not candidates:
            raise NodeNotFound(f"no configured cluster can own an instance in project {project}, zone {zone}")
        provider_id = f"gce://{project}/{zone}/{instance}"
        unreachable: list[str] = []
        for cluster in candidates:
            try:
                node = self.client(cluster).get_node(instance)
            except (TransientError, ApiForbidden) as exc:
                unreachable.append(cluster.name)
                audit.record(
                    "cluster.unreachable",
                    f"cluster {cluster.name} could not be asked about {instance}: {exc}",
                    severity="WARNING",
                    cluster=cluster.name,
                    error=str(exc),
                )
                continue
            if node is not None and node.provider_id == provider_id:
                return Resolution(cluster=cluster, client=self.client(cluster), node=node)
        if unreachable:
            raise TransientError(f"instance {instance} not found in reachable clusters; unreachable: {unreachable}")
        names = ", ".join(c.name for c in candidates)
        raise NodeNotFound(f"instance {instance} is no node of the configured clusters that could own it ({names})")


# ------------------------------------------------------------ scheduled and manual operations
@dataclass(frozen=True, kw_only=True)
class NodeChange:
    node: str
    action: str
    reason: str
    result: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"node": self.node, "action": self.action, "reason": self.reason, "result": self.result}


class Operations:
    """Cleanup, recovery, status and manual drain/uncordon for one Service."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.settings = service.settings

    def cleanup(self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit, now: datetime) -> dict[str, Any]:
        client = self.service.client(cluster)
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
            "cleanup.completed" if report["complete"] else "cleanup.partial",
            f"cleanup of {cluster.name}: {report['deleted_jobs']} Jobs and {report['deleted_pods']} pods "
            f"{'would be ' if dry_run else ''}deleted in {report['duration_seconds']:.1f} s"
            + ("" if report["complete"] else "; the time budget ran out, the next run resumes"),
            **report,
        )
        if not dry_run:
            self.service.outcomes.publish(
                outcomes.JOBS_CLEANED,
                cluster=cluster.name,
                node=None,
                audit=audit,
                data={"trigger": audit.fields.get("trigger"), **report},
            )
        return report

    def _nodes(self, cluster: ClusterConfig) -> list[Node]:
        return [n for n in self.service.client(cluster).list_nodes() if policy.cordoned_by_us(n)]

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
                    "node.recovery_failed", f"recovery of {node.name} failed: {exc}", severity="ERROR", error=str(exc)
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
        client = self.service.client(cluster)
        uncordon = decision.action is policy.RecoveryAction.UNCORDON
        try:
            client.patch_node(
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
            f"node.{verb}",
            f"{'would have ' if dry_run else ''}{verb} {node.name}: {decision.reason}",
            reason=decision.reason,
            event_id=node.annotations.get(policy.CORDON_EVENT_ID),
            dry_run=dry_run,
        )
        if uncordon and not dry_run:
            self.service.outcomes.publish(
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
        client = self.service.client(cluster)
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
        found = Resolution(cluster=cluster, client=client, node=node)
        report = self.service.drain(found, plan, audit=audit.bind(event_id=plan.event_id), dry_run=dry_run)
        return report.outcome.value if report else "node gone"

    # -------------------------------------------------------------- manual
    def drain(
        self, cluster: ClusterConfig, node_name: str, *, dry_run: bool, timeout: float, audit: Audit
    ) -> DrainReport:
        client = self.service.client(cluster)
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
        found = Resolution(cluster=cluster, client=client, node=node)
        report = self.service.drain(
            found, plan, audit=audit.bind(cluster=cluster.name, node=node_name, event_id=plan.event_id), dry_run=dry_run
        )
        if report is None:
            raise NodeNotFound(f"node {node_name} disappeared during the drain")
        return report

    def uncordon(
        self, cluster: ClusterConfig, node_name: str, *, dry_run: bool, force: bool, audit: Audit
    ) -> dict[str, str]:
        client = self.service.client(cluster)
        node = client.get_node(node_name)
        if node is None:
            raise NodeNotFound(f"node {node_name} does not exist in cluster {cluster.name}")
        if not policy.cordoned_by_us(node):
            raise NotOurs(f"node {node_name} was not cordoned by {policy.COMPONENT}; use kubectl uncordon")
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
