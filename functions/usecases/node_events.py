"""The node-event use case: a Pub/Sub delivery of a Compute Engine LogEntry becomes a decision
(ignored, malformed, stale, or a drain), each audited. The outcome is signalled by return value
or by raising :class:`~functions.errors.PermanentError` (acknowledge: bad input, already audited)
or :class:`~functions.errors.TransientError` (retry); only the entry points map them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.decisions import envelope, logentry, policy
from functions.decisions.actions import Action, Severity
from functions.decisions.model import VmInstance
from functions.decisions.times import parse_time
from functions.engines.drain import DrainReport
from functions.errors import DrainerError, MalformedEvent, TransientError
from functions.gateways.audit import Audit
from functions.gateways.compute import ComputeError
from functions.usecases.drain import Target, drain_node
from functions.usecases.runtime import Runtime, record_cluster_failure


class NodeNotFound(DrainerError):
    """No configured cluster has the instance as a node (acknowledge: nothing to do)."""


class NodeEvents:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings

    def handle_delivery(self, data: Any, *, trigger: str, delivery_id: str | None) -> DrainReport | None:
        """One Pub/Sub delivery of a log-sink entry. Returns the drain report, or None when ignored."""
        try:
            return self._handle_delivery(data, trigger=trigger, delivery_id=delivery_id)
        finally:
            self.runtime.finish()

    def _handle_delivery(self, data: Any, *, trigger: str, delivery_id: str | None) -> DrainReport | None:
        audit = self.runtime.audit.bind(trigger=trigger, delivery_id=delivery_id)
        try:
            message = envelope.unwrap(data)
            parsed = logentry.parse_log_entry(logentry.log_entry_from_message(message), now=datetime.now(UTC))
        except MalformedEvent as exc:
            audit.record(
                Action.EVENT_MALFORMED,
                f"acknowledged a malformed event: {exc}",
                severity=Severity.WARNING,
                error=str(exc),
            )
            raise
        if isinstance(parsed, logentry.IgnoredEvent):
            audit.record(
                Action.EVENT_IGNORED,
                f"ignored: {parsed.reason}",
                reason=parsed.reason,
                method=parsed.method,
                instance=parsed.instance,
                insert_id=parsed.insert_id,
            )
            return None
        return self.handle(
            parsed,
            audit=audit,
            publish_time=parse_time(message.publish_time),
            delivery_attempt=message.delivery_attempt,
        )

    def handle(
        self,
        event: logentry.NodeEvent,
        *,
        audit: Audit,
        publish_time: datetime | None = None,
        delivery_attempt: int | None = None,
    ) -> DrainReport | None:
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
        age = (datetime.now(UTC) - event.event_time).total_seconds()
        audit.record(
            Action.EVENT_RECEIVED,
            f"{event.kind.value} event for instance {event.instance}",
            method=event.method,
            event_time=event.event_time,
            event_age_seconds=round(age, 3),
        )
        late = policy.lateness(
            event.event_time,
            now=datetime.now(UTC),
            max_age=timedelta(seconds=self.settings.max_event_age),
            publish_time=publish_time,
            delivery_attempt=delivery_attempt,
        )
        if late is not None:
            kind, why = late
            if kind is policy.Lateness.EXPIRED:
                audit.record(
                    Action.EVENT_EXPIRED,
                    f"LOST: {why}; the node was not touched",
                    severity=Severity.ERROR,
                    reason=why,
                    event_age_seconds=round(age, 3),
                    delivery_attempt=delivery_attempt,
                    publish_time=publish_time,
                )
            else:
                audit.record(Action.EVENT_STALE, f"acknowledged without action: {why}", reason=why)
            return None
        try:
            target = self.resolve(project=event.project, zone=event.zone, instance=event.instance, audit=audit)
        except NodeNotFound as exc:
            audit.record(Action.EVENT_IGNORED, f"ignored: {exc}", reason=str(exc))
            return None
        node_audit = audit.bind(cluster=target.cluster.name, node=target.node.name)
        if policy.stale_instance(target.node, event.instance_id):
            reason = (
                f"node {target.node.name} now runs instance {target.node.annotations.get(policy.GKE_INSTANCE_ID)}, "
                f"not the event's {event.instance_id}: the event is about a VM that was already replaced"
            )
            node_audit.record(Action.EVENT_IGNORED, f"ignored: {reason}", reason=reason)
            return None
        stale = policy.stale_event(
            target.node, event_id=event.event_id, event_time=event.event_time, vm=self._vm(target, node_audit)
        )
        if stale:
            node_audit.record(
                Action.EVENT_STALE,
                f"acknowledged without action: {target.node.name} has come back since the event ({stale})",
                reason=stale,
            )
            return None
        plan = policy.plan_for_event(
            kind=event.kind,
            event_id=event.event_id,
            event_time=event.event_time,
            instance_id=event.instance_id,
            deadlines=self.settings.deadlines,
            force_cleanup=self.settings.force_cleanup,
            out_of_service_taint=self.settings.out_of_service_taint,
        )
        return drain_node(self.runtime, target, plan, audit=node_audit, dry_run=self.settings.dry_run)

    def _vm(self, target: Target, audit: Audit) -> VmInstance | None:
        """The node's VM as Compute Engine describes it, when the fence is on and it answers."""
        compute, location = self.runtime.compute, target.node.location
        if compute is None or location is None:
            return None
        project, zone, name = location
        try:
            return compute.get_instance(project=project, zone=zone, name=name)
        except ComputeError as exc:  # staleness is then judged on the Node alone
            audit.record(
                Action.FENCE_UNAVAILABLE,
                f"Compute Engine could not describe {name} ({exc}); staleness judged on the Node",
                severity=Severity.WARNING,
                error=str(exc),
                status=exc.code,
                during="staleness",
            )
            return None

    def resolve(self, *, project: str, zone: str, instance: str, audit: Audit) -> Target:
        """The node named ``instance`` whose providerID is gce://project/zone/instance."""
        candidates = [c for c in self.settings.clusters if c.may_own(project=project, zone=zone)]
        if not candidates:
            raise NodeNotFound(f"no configured cluster can own an instance in project {project}, zone {zone}")
        provider_id = f"gce://{project}/{zone}/{instance}"
        unreachable: list[str] = []
        for cluster in candidates:
            try:
                client = self.runtime.client(cluster)
                node = client.get_node(instance)
            except TransientError as exc:  # unreachable, denied (401/403) or not set up: the others still count
                unreachable.append(cluster.name)
                record_cluster_failure(audit, cluster, exc, doing=f"asking about {instance}")
                continue
            if node is not None and node.provider_id == provider_id:
                return Target(cluster=cluster, client=client, node=node)
        if unreachable:
            raise TransientError(f"instance {instance} not found in reachable clusters; unreachable: {unreachable}")
        names = ", ".join(c.name for c in candidates)
        raise NodeNotFound(f"instance {instance} is no node of the configured clusters that could own it ({names})")
