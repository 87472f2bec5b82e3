"""The node-event use case: a Pub/Sub delivery of a Compute Engine LogEntry becomes a decision
(malformed, ignored, expired, stale, or a drain: :func:`functions.decisions.verdict.judge_event`,
the one verdict ``explain`` gives too), each audited. The outcome is signalled by return value
or by raising :class:`~functions.errors.PermanentError` (acknowledge: bad input, already audited)
or :class:`~functions.errors.TransientError` (retry); only the entry points map them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.decisions import envelope, logentry, verdict
from functions.decisions.actions import Action, Severity
from functions.decisions.model import VmInstance
from functions.decisions.times import parse_time
from functions.engines.drain.report import DrainReport
from functions.errors import DrainerError, MalformedEvent, TransientError
from functions.gateways.audit import Audit
from functions.gateways.google_api import GoogleApiError
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
            entry = logentry.log_entry_from_message(message)
        except MalformedEvent as exc:
            self._malformed(audit, str(exc))
            raise
        delivery = verdict.Delivery(
            publish_time=parse_time(message.publish_time), delivery_attempt=message.delivery_attempt
        )
        first = self._judge(entry, delivery=delivery)
        if first.outcome is verdict.Outcome.MALFORMED:
            self._malformed(audit, first.reason)
            raise MalformedEvent(first.reason)
        if first.ignored is not None:
            ignored = first.ignored
            audit.record(
                Action.EVENT_IGNORED,
                f"ignored: {ignored.reason}",
                reason=ignored.reason,
                method=ignored.method,
                instance=ignored.instance,
                insert_id=ignored.insert_id,
            )
            return None
        event = first.event
        assert event is not None  # every other outcome carries the event
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
        if first.outcome is verdict.Outcome.EXPIRED:
            audit.record(
                Action.EVENT_EXPIRED,
                f"LOST: {first.reason}; the node was not touched",
                severity=Severity.ERROR,
                reason=first.reason,
                event_age_seconds=round(age, 3),
                delivery_attempt=delivery.delivery_attempt,
                publish_time=delivery.publish_time,
            )
            return None
        if first.outcome is verdict.Outcome.STALE:
            audit.record(Action.EVENT_STALE, f"acknowledged without action: {first.reason}", reason=first.reason)
            return None
        try:
            target = self.resolve(project=event.project, zone=event.zone, instance=event.instance, audit=audit)
        except NodeNotFound as exc:
            audit.record(Action.EVENT_IGNORED, f"ignored: {exc}", reason=str(exc))
            return None
        node_audit = audit.bind(cluster=target.cluster.name, node=target.node.name)
        facts = verdict.Facts(node=target.node, vm=self._vm(target, node_audit))
        judged = self._judge(entry, delivery=delivery, facts=facts)
        if judged.outcome is verdict.Outcome.IGNORED:
            node_audit.record(Action.EVENT_IGNORED, f"ignored: {judged.reason}", reason=judged.reason)
            return None
        if judged.outcome is not verdict.Outcome.ACT or judged.plan is None:
            node_audit.record(Action.EVENT_STALE, f"acknowledged without action: {judged.reason}", reason=judged.reason)
            return None
        return drain_node(self.runtime, target, judged.plan, audit=node_audit, dry_run=self.settings.dry_run)

    def _judge(
        self, entry: dict[str, Any], *, delivery: verdict.Delivery, facts: verdict.Facts | None = None
    ) -> verdict.EventVerdict:
        return verdict.judge_event(entry, now=datetime.now(UTC), settings=self.settings, delivery=delivery, facts=facts)

    @staticmethod
    def _malformed(audit: Audit, error: str) -> None:
        audit.record(
            Action.EVENT_MALFORMED, f"acknowledged a malformed event: {error}", severity=Severity.WARNING, error=error
        )

    def _vm(self, target: Target, audit: Audit) -> VmInstance | None:
        """The node's VM as Compute Engine describes it, when the fence is on and it answers."""
        compute, location = self.runtime.compute, target.node.location
        if compute is None or location is None:
            return None
        project, zone, name = location
        try:
            return compute.get_instance(project=project, zone=zone, name=name)
        except GoogleApiError as exc:  # staleness is then judged on the Node alone
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
