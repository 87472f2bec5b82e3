"""Use cases behind the entry points: one Service per function instance.

The service audits every decision and signals the outcome by return value or by raising
:class:`~functions.errors.PermanentError` (acknowledge: bad input, already audited) or
:class:`~functions.errors.TransientError` (retry: the API is unavailable). Only main.py maps them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from functions import audit as audit_log
from functions import config, events, policy
from functions.audit import Audit
from functions.config import ClusterConfig, Settings
from functions.drain import Drain, DrainReport, NodeGone
from functions.errors import DrainerError, MalformedEvent, PermanentError, TransientError
from functions.kube import ApiForbidden, ClusterClient
from functions.model import Node

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
            audit_log.flush()  # before the platform may freeze the instance

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
            audit.record(
                "drain.failed",
                f"drain of {found.node.name} failed: {exc}",
                severity="ERROR",
                error=str(exc),
                retry=isinstance(exc, TransientError),
                duration_seconds=round(time.monotonic() - started, 3),
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
        if report.transient_failures:
            raise TransientError(f"{report.transient_failures} pod(s) left because the API server failed; retrying")
        return report

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
