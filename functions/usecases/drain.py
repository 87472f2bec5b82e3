"""The drain use case, shared by node events, recovery and the manual API: run the drain engine
on one node, audit its start and outcome, publish the outcome event."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from functions.decisions.actions import Action, Severity
from functions.decisions.model import Node
from functions.decisions.policy import DrainPlan
from functions.decisions.settings import ClusterConfig
from functions.engines.drain.cordon import NodeGone
from functions.engines.drain.pods import PodResult
from functions.engines.drain.report import DrainOutcome, DrainReport
from functions.engines.drain.run import Drain
from functions.errors import Denied, PermanentError, TransientError
from functions.gateways import outcomes
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.events import EventRecorder
from functions.usecases.runtime import Runtime


@dataclass(frozen=True, kw_only=True)
class Target:
    """A node to drain: its cluster, that cluster's client and the Node as last read."""

    cluster: ClusterConfig
    client: ClusterClient
    node: Node


def _context(audit: Audit, plan: DrainPlan) -> dict[str, Any]:
    return {
        "trigger": audit.fields.get("trigger"),
        "event_id": plan.event_id,
        "reason": plan.reason,
        "principal": audit.fields.get("principal"),
    }


def drain_node(runtime: Runtime, target: Target, plan: DrainPlan, *, audit: Audit, dry_run: bool) -> DrainReport | None:
    """Drain ``target`` under ``plan``; None when the node disappeared before the drain started.
    Raises TransientError (after auditing) when pods were left because the API server failed."""
    started = time.monotonic()
    node = target.node.name
    audit.record(
        Action.DRAIN_STARTED,
        f"draining {node} ({plan.reason}), deadline {plan.timeout.total_seconds():g} s",
        deadline_seconds=plan.timeout.total_seconds(),
        force_when_down=plan.force_when_down,
        dry_run=dry_run,
    )
    events = None if dry_run else runtime.events(target.cluster)
    drain = Drain(
        kube=target.client,
        node_name=node,
        plan=plan,
        audit=audit,
        dry_run=dry_run,
        concurrency=runtime.settings.eviction_concurrency,
        compute=runtime.compute,
        events=events,
        node_uid=target.node.uid or None,
        storm_share=runtime.settings.storm_share,
        storm_window=runtime.settings.storm_window,
    )
    try:
        report = drain.run()
    except NodeGone as exc:
        audit.record(Action.EVENT_IGNORED, f"ignored: {exc}", reason=str(exc))
        return None
    except (TransientError, PermanentError) as exc:
        duration = round(time.monotonic() - started, 3)
        denied = {"status": exc.answer(), "fix": exc.fix} if isinstance(exc, Denied) else {}
        audit.record(
            Action.DRAIN_FAILED,
            f"drain of {node} failed: {exc}",
            severity=Severity.ERROR,
            error=str(exc),
            retry=isinstance(exc, TransientError),
            duration_seconds=duration,
            **denied,
        )
        if not dry_run:
            runtime.outcomes.publish(
                outcomes.DRAIN_FAILED,
                cluster=target.cluster.name,
                node=node,
                audit=audit,
                data={**_context(audit, plan), "error": str(exc), "duration_seconds": duration},
            )
        raise
    audit.record(
        Action(f"drain.{report.outcome.value}"),
        f"drain of {node} {report.outcome.value} in {report.duration_seconds:.2f} s"
        + (f": {report.message}" if report.message else ""),
        severity=Severity.WARNING if report.outcome is DrainOutcome.INCOMPLETE else Severity.INFO,
        **report.summary(),
    )
    if events is not None:
        _outcome_event(events, target.node, plan, report)
    if not dry_run:
        kind = outcomes.DRAINED if report.outcome is DrainOutcome.COMPLETED else outcomes.DRAIN_FAILED
        runtime.outcomes.publish(
            kind,
            cluster=target.cluster.name,
            node=node,
            audit=audit,
            data={**_context(audit, plan), **report.summary()},
        )
    if report.transient_failures:
        raise TransientError(f"{report.transient_failures} pod(s) left because the API server failed; retrying")
    return report


def _outcome_event(events: EventRecorder, node: Node, plan: DrainPlan, report: DrainReport) -> None:
    """DrainCompleted or DrainIncomplete on the Node, naming what is left and the PDBs that block it."""
    if report.outcome is DrainOutcome.COMPLETED:
        counts: dict[str, int] = {}
        for p in report.pods:
            counts[p.result.value] = counts.get(p.result.value, 0) + 1
        events.drain_completed(
            node, event_kind=plan.reason, event_id=plan.event_id, counts=counts, seconds=report.duration_seconds
        )
    elif report.outcome is DrainOutcome.INCOMPLETE:
        events.drain_incomplete(
            node,
            event_kind=plan.reason,
            event_id=plan.event_id,
            blocked={p.pod: p.pdb for p in report.pods if p.result is PodResult.BLOCKED},
            remaining=[p.pod for p in report.pods if p.result in (PodResult.BLOCKED, PodResult.REMAINING)],
            why=report.message,
        )
