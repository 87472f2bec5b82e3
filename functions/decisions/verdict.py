"""The one verdict on a node event (pure): malformed, ignored, expired, stale, or a drain plan.

The event function and ``explain`` both call :func:`judge_event`, so they cannot disagree. It takes
``now``, the settings, what came with the delivery (publish time, Pub/Sub's attempt count) and, once
the node has been found, the node and VM facts. Without them (``explain``, or the function before
it asks a cluster) it judges what the entry alone can tell: genuineness, kind, age and the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from functions.decisions import policy
from functions.decisions.logentry import IgnoredEvent, NodeEvent, parse_log_entry
from functions.decisions.model import Node, VmInstance
from functions.decisions.policy import DrainPlan
from functions.decisions.settings import Settings
from functions.errors import MalformedEvent


class Outcome(StrEnum):
    MALFORMED = "malformed"  # never parses: acknowledged, audited, never retried
    IGNORED = "ignored"  # not an event that drains a node, or about a VM the node no longer runs
    EXPIRED = "expired"  # too old after failed deliveries: lost, loud
    STALE = "stale"  # a replay, or about another incarnation of the node or VM
    ACT = "act"  # drain under ``plan``


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """What came with the event besides the entry."""

    publish_time: datetime | None = None
    delivery_attempt: int | None = None


@dataclass(frozen=True, kw_only=True)
class Facts:
    """The node the event names, as found in its cluster, and Compute Engine's answer about its VM
    (None when it was not asked or could not answer)."""

    node: Node
    vm: VmInstance | None = None


@dataclass(frozen=True, kw_only=True)
class EventVerdict:
    outcome: Outcome
    reason: str = ""
    event: NodeEvent | None = None  # for every outcome but MALFORMED and IGNORED by the parser
    ignored: IgnoredEvent | None = None  # IGNORED by the parser
    plan: DrainPlan | None = None  # ACT

    @property
    def acts(self) -> bool:
        return self.outcome is Outcome.ACT


def judge_event(
    entry: Mapping[str, Any],
    *,
    now: datetime,
    settings: Settings,
    delivery: Delivery | None = None,
    facts: Facts | None = None,
) -> EventVerdict:
    """The verdict on one LogEntry. Checks in the function's order: genuine and well-formed, an
    event that drains a node, not too old (expired or stale), then, with ``facts``, the same VM
    (another instance id: ignored) and the same incarnation (stale); then the plan."""
    try:
        parsed = parse_log_entry(entry, now=now)
    except MalformedEvent as exc:
        return EventVerdict(outcome=Outcome.MALFORMED, reason=str(exc))
    if isinstance(parsed, IgnoredEvent):
        return EventVerdict(outcome=Outcome.IGNORED, reason=parsed.reason, ignored=parsed)
    delivery = delivery or Delivery()
    late = policy.lateness(
        parsed.event_time,
        now=now,
        max_age=timedelta(seconds=settings.max_event_age),
        publish_time=delivery.publish_time,
        delivery_attempt=delivery.delivery_attempt,
    )
    if late is not None:
        kind, why = late
        outcome = Outcome.EXPIRED if kind is policy.Lateness.EXPIRED else Outcome.STALE
        return EventVerdict(outcome=outcome, reason=why, event=parsed)
    if facts is not None:
        node = facts.node
        if policy.stale_instance(node, parsed.instance_id):
            reason = (
                f"node {node.name} now runs instance {node.annotations.get(policy.GKE_INSTANCE_ID)}, "
                f"not the event's {parsed.instance_id}: the event is about a VM that was already replaced"
            )
            return EventVerdict(outcome=Outcome.IGNORED, reason=reason, event=parsed)
        stale = policy.stale_event(node, event_id=parsed.event_id, event_time=parsed.event_time, vm=facts.vm)
        if stale:
            return EventVerdict(
                outcome=Outcome.STALE,
                reason=f"{node.name} is another incarnation since the event ({stale})",
                event=parsed,
            )
    plan = policy.plan_for_event(
        kind=parsed.kind,
        event_id=parsed.event_id,
        event_time=parsed.event_time,
        instance_id=parsed.instance_id,
        deadlines=settings.deadlines,
        force_cleanup=settings.force_cleanup,
        out_of_service_taint=settings.out_of_service_taint,
    )
    return EventVerdict(outcome=Outcome.ACT, event=parsed, plan=plan)
