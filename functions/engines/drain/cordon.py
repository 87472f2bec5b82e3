"""The cordon: mark the node unschedulable (pinned to its UID and resourceVersion), remembering a
cordon that was there before us, so that we uncordon only what we cordoned."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from functions.decisions import policy
from functions.decisions.actions import Action
from functions.decisions.model import Node
from functions.decisions.policy import DrainPlan
from functions.errors import DrainerError
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ApiStatus, ApiUnavailable, Conflict
from functions.gateways.kube.events import EventRecorder

CORDON_ATTEMPTS = 5


class NodeGone(DrainerError):
    """The Node object disappeared (or was registered again) before the drain could act on it."""

    def __init__(self, node: str, *, why: str = "no longer exists") -> None:
        super().__init__(f"node {node} {why}")


@dataclass(frozen=True, kw_only=True)
class Cordoned:
    node: Node  # as the cordon left it
    changed: bool  # this drain changed the node to unschedulable
    was_unschedulable: bool  # it was unschedulable before us


def cordon(
    kube: ClusterClient,
    node_name: str,
    plan: DrainPlan,
    *,
    node_uid: str | None,
    audit: Audit,
    events: EventRecorder | None,
    wall: Callable[[], datetime],
    dry_run: bool,
) -> Cordoned:
    """Cordon ``node_name`` for ``plan``; raises NodeGone when it is gone, or is another Node than
    ``node_uid`` (the one the plan was made for)."""
    for _ in range(CORDON_ATTEMPTS):
        node = kube.get_node(node_name)
        if node is None:
            raise NodeGone(node_name)
        if node_uid is not None and node.uid != node_uid:  # not the Node the plan was made for
            raise NodeGone(node_name, why="was registered again since the decision (a new UID)")
        if policy.cordoned_by_us(node):
            was_before = node.annotations.get(policy.WAS_UNSCHEDULABLE) == "true"
        else:
            was_before = node.unschedulable
        if not policy.cordon_needed(node, plan):
            return Cordoned(node=node, changed=False, was_unschedulable=was_before)
        try:
            patched = kube.patch_node(
                node_name,
                uid=node.uid,
                resource_version=node.resource_version,
                unschedulable=True,
                annotations=policy.cordon_annotations(node, plan, now=wall()),
                dry_run=dry_run,
            )
        except Conflict:
            continue
        audit.record(
            Action.NODE_CORDONED,
            f"{'would cordon' if dry_run else 'cordoned'} {node_name}"
            + (" (already unschedulable before us: kept as it was)" if was_before else ""),
            was_unschedulable=was_before,
            boot_id=node.boot_id,
            dry_run=dry_run,
        )
        if events is not None:
            events.cordoned(patched, event_kind=plan.reason, event_id=plan.event_id, was_unschedulable=was_before)
        return Cordoned(node=patched, changed=not node.unschedulable, was_unschedulable=was_before)
    gave_up = f"the node kept changing; gave up after {CORDON_ATTEMPTS} tries"
    raise ApiUnavailable(ApiStatus(code=409, reason="Conflict", message=gave_up), request=f"PATCH node {node_name}")
