"""Kubernetes Events (``events.k8s.io/v1``) the drainer writes where it acts: what they say (pure).

Each Event is about one Node or Pod (``regarding``), with a CamelCase ``reason`` (what happened) and
``action`` (what we did or tried), a human ``note`` with the why, and a ``type`` (Normal/Warning).
Repeats of the same Event are aggregated as Kubernetes does: one object per
:class:`EventKey` (regarding + type + reason + action + note, like client-go's EventCorrelator),
whose ``series`` (count, lastObservedTime) grows; the object's name is derived from the key.

The writing (a bounded queue, a background thread, create then merge-patch the series) is the
gateway's: :mod:`functions.gateways.kube.events`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from functions.decisions.model import Node, Pod
from functions.decisions.names import COMPONENT

API_VERSION = "events.k8s.io/v1"
REPORTING_CONTROLLER = COMPONENT
CLUSTER_SCOPED_NAMESPACE = "default"  # where Events about cluster-scoped objects (Nodes) live, as kubectl looks
NOTE_MAX_BYTES = 1024  # the API server's limit on ``note``
FIELD_MAX = 128  # the API server's limit on reason, action and reportingInstance
NAME_MAX = 253  # a DNS subdomain
DIGEST_CHARS = 16
LIST_MAX = 10  # pods or PDBs named in one note before "and N more"

# The signals that verify a node down (DESIGN "Fencing"): a parameter of VerifiedDown.
SIGNAL_NODE_READY_UNKNOWN = "the Node's Ready condition is Unknown with a heartbeat older than the event"
SIGNAL_NODE_DELETED = "the Node object was deleted"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class Reason(StrEnum):
    """What happened (``reason``); CamelCase like the reasons of Kubernetes' own controllers."""

    # on the Node
    CORDONED = "Cordoned"
    DRAIN_COMPLETED = "DrainCompleted"
    DRAIN_INCOMPLETE = "DrainIncomplete"
    VERIFIED_DOWN = "VerifiedDown"
    OUT_OF_SERVICE_TAINT_ADDED = "OutOfServiceTaintAdded"
    OUT_OF_SERVICE_TAINT_REMOVED = "OutOfServiceTaintRemoved"
    FORCE_CLEANUP = "ForceCleanup"
    UNCORDONED = "Uncordoned"
    RELEASED = "Released"
    # on a Pod
    EVICTED = "Evicted"
    EVICTION_BLOCKED = "EvictionBlocked"
    FORCE_DELETED = "ForceDeleted"
    SKIPPED = "Skipped"


class EventAction(StrEnum):
    """What the drainer did or tried (``action``)."""

    CORDON = "Cordon"
    DRAIN = "Drain"
    FENCE = "Fence"
    TAINT = "Taint"
    UNTAINT = "Untaint"
    FORCE_DELETE = "ForceDelete"
    UNCORDON = "Uncordon"
    RELEASE = "Release"
    EVICT = "Evict"
    SKIP = "Skip"


@dataclass(frozen=True, kw_only=True)
class ObjectRef:
    """A ``regarding`` reference: the Node or Pod, with uid and resourceVersion where known."""

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""
    api_version: str = "v1"

    @classmethod
    def node(cls, node: Node) -> ObjectRef:
        return cls(kind="Node", name=node.name, uid=node.uid, resource_version=node.resource_version)

    @classmethod
    def pod(cls, pod: Pod) -> ObjectRef:
        return cls(kind="Pod", name=pod.name, namespace=pod.namespace, uid=pod.uid)

    def as_json(self) -> dict[str, str]:
        ref = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        optional = {"namespace": self.namespace, "uid": self.uid, "resourceVersion": self.resource_version}
        return {**ref, **{k: v for k, v in optional.items() if v}}

    @property
    def event_namespace(self) -> str:
        """An Event lives in its object's namespace; Events about Nodes in ``default`` (as kubectl describe reads)."""
        return self.namespace or CLUSTER_SCOPED_NAMESPACE


@dataclass(frozen=True, kw_only=True)
class EventKey:
    """What makes two Events "the same" (aggregated into one object's series). The resourceVersion
    is left out: it changes with every write to the object, the Event it is about does not."""

    kind: str
    namespace: str
    name: str
    uid: str
    type: EventType
    reason: Reason
    action: EventAction
    note: str


@dataclass(frozen=True, kw_only=True)
class KubeEvent:
    regarding: ObjectRef
    type: EventType
    reason: Reason
    action: EventAction
    note: str

    @property
    def key(self) -> EventKey:
        r = self.regarding
        return EventKey(
            kind=r.kind,
            namespace=r.namespace,
            name=r.name,
            uid=r.uid,
            type=self.type,
            reason=self.reason,
            action=self.action,
            note=self.note,
        )


# ------------------------------------------------------------------ objects
def bounded_note(text: str) -> str:
    """``text`` cut to the API server's limit (bytes of UTF-8, on a character boundary)."""
    data = text.encode("utf-8")
    if len(data) <= NOTE_MAX_BYTES:
        return text
    marker = "..."
    return data[: NOTE_MAX_BYTES - len(marker)].decode("utf-8", "ignore") + marker


def event_name(key: EventKey, *, instance: str) -> str:
    """A deterministic object name: the regarding object's name and a digest of the key and the
    reporting instance (so that two instances never write one object); a valid DNS subdomain."""
    material = "\x1f".join(
        (instance, key.kind, key.namespace, key.name, key.uid, key.type, key.reason, key.action, key.note)
    )
    digest = hashlib.sha256(material.encode("utf-8", "backslashreplace")).hexdigest()[:DIGEST_CHARS]
    prefix = key.name[: NAME_MAX - DIGEST_CHARS - 1].rstrip(".-") or "object"
    return f"{prefix}.{digest}"


def micro_time(moment: datetime) -> str:
    """A ``MicroTime`` as the API writes it: UTC, six fractional digits, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(
    event: KubeEvent,
    *,
    name: str,
    instance: str,
    event_time: datetime,
    count: int = 1,
    last_observed: datetime | None = None,
) -> dict[str, Any]:
    """The ``events.k8s.io/v1`` object to create; with a ``series`` when it already repeated."""
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Event",
        "metadata": {"name": name, "namespace": event.regarding.event_namespace},
        "eventTime": micro_time(event_time),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance[:FIELD_MAX],
        "action": event.action.value,
        "reason": event.reason.value,
        "regarding": event.regarding.as_json(),
        "note": bounded_note(event.note),
        "type": event.type.value,
    }
    if count > 1:
        body["series"] = series(count, last_observed or event_time)
    return body


def series(count: int, last_observed: datetime) -> dict[str, Any]:
    """The ``series`` of a repeated Event (the API requires a count of at least 2)."""
    return {"count": max(2, count), "lastObservedTime": micro_time(last_observed)}


def series_patch(count: int, last_observed: datetime) -> dict[str, Any]:
    """The JSON merge patch client-go sends for a repeat: only the series changes."""
    return {"series": series(count, last_observed)}


def _cause(event_kind: str, event_id: str) -> str:
    """Why we acted: the event kind (``preempted``, ``delete``, ... or ``manual``) and its id."""
    return f"{event_kind} event {event_id}"


def _listing(items: Iterable[str]) -> str:
    names = list(items)
    shown = ", ".join(names[:LIST_MAX])
    return shown + (f" and {len(names) - LIST_MAX} more" if len(names) > LIST_MAX else "")


# ------------------------------------------------------------- node events
def cordoned(node: Node, *, event_kind: str, event_id: str, was_unschedulable: bool) -> KubeEvent:
    note = f"cordoned by {COMPONENT}: {_cause(event_kind, event_id)}"
    if was_unschedulable:
        note += "; it was already unschedulable before us, and will stay so"
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.NORMAL,
        reason=Reason.CORDONED,
        action=EventAction.CORDON,
        note=note,
    )


def drain_completed(
    node: Node, *, event_kind: str, event_id: str, counts: Mapping[str, int], seconds: float
) -> KubeEvent:
    done = ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing to do"
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.NORMAL,
        reason=Reason.DRAIN_COMPLETED,
        action=EventAction.DRAIN,
        note=f"drain completed in {seconds:.1f} s ({_cause(event_kind, event_id)}): {done}",
    )


def drain_incomplete(
    node: Node,
    *,
    event_kind: str,
    event_id: str,
    blocked: Mapping[str, str | None],
    remaining: Iterable[str],
    why: str,
) -> KubeEvent:
    """``blocked``: pod -> the PDB that refused its eviction; ``remaining``: every pod left."""
    pdbs = sorted({p for p in blocked.values() if p})
    parts = [f"drain incomplete ({_cause(event_kind, event_id)}): {why}"]
    if blocked:
        parts.append(f"blocked by PodDisruptionBudget(s) {_listing(pdbs) or '(unnamed)'}: {_listing(sorted(blocked))}")
    others = sorted(set(remaining) - set(blocked))
    if others:
        parts.append(f"also left: {_listing(others)}")
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.WARNING,
        reason=Reason.DRAIN_INCOMPLETE,
        action=EventAction.DRAIN,
        note="; ".join(parts),
    )


def verified_down(node: Node, *, signal: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.WARNING,
        reason=Reason.VERIFIED_DOWN,
        action=EventAction.FENCE,
        note=f"node verified down: {signal}; what is left on it may now be force-deleted",
    )


def out_of_service_taint_added(node: Node, *, why: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.WARNING,
        reason=Reason.OUT_OF_SERVICE_TAINT_ADDED,
        action=EventAction.TAINT,
        note=f"added node.kubernetes.io/out-of-service=nodeshutdown:NoExecute: {why}",
    )


def out_of_service_taint_removed(node: Node, *, why: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.NORMAL,
        reason=Reason.OUT_OF_SERVICE_TAINT_REMOVED,
        action=EventAction.UNTAINT,
        note=f"removed our node.kubernetes.io/out-of-service taint: {why}",
    )


def force_cleanup(node: Node, *, pods: Iterable[str]) -> KubeEvent:
    names = sorted(pods)
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.WARNING,
        reason=Reason.FORCE_CLEANUP,
        action=EventAction.FORCE_DELETE,
        note=f"force-deleting {len(names)} pod(s) left on a node verified down: {_listing(names)}",
    )


def uncordoned(node: Node, *, why: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.NORMAL,
        reason=Reason.UNCORDONED,
        action=EventAction.UNCORDON,
        note=f"uncordoned by {COMPONENT}: {why}",
    )


def released(node: Node, *, why: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.node(node),
        type=EventType.NORMAL,
        reason=Reason.RELEASED,
        action=EventAction.RELEASE,
        note=f"released by {COMPONENT} (our annotations removed, a cordon that is not ours kept): {why}",
    )


# -------------------------------------------------------------- pod events
def evicted(pod: Pod, *, node: str, why: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.pod(pod),
        type=EventType.NORMAL,
        reason=Reason.EVICTED,
        action=EventAction.EVICT,
        note=f"evicted by {COMPONENT} to drain node {node}" + (f" ({why})" if why else ""),
    )


def eviction_blocked(pod: Pod, *, node: str, pdb: str | None, message: str) -> KubeEvent:
    budget = f"PodDisruptionBudget {pdb}" if pdb else "a PodDisruptionBudget"
    return KubeEvent(
        regarding=ObjectRef.pod(pod),
        type=EventType.WARNING,
        reason=Reason.EVICTION_BLOCKED,
        action=EventAction.EVICT,
        note=f"eviction to drain node {node} refused by {budget}; retrying until the deadline"
        + (f": {message}" if message else ""),
    )


def force_deleted(pod: Pod, *, node: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.pod(pod),
        type=EventType.WARNING,
        reason=Reason.FORCE_DELETED,
        action=EventAction.FORCE_DELETE,
        note=f"force-deleted (grace 0) by {COMPONENT}: node {node} is verified down, its controller recreates it",
    )


def skipped(pod: Pod, *, node: str, why: str) -> KubeEvent:
    return KubeEvent(
        regarding=ObjectRef.pod(pod),
        type=EventType.NORMAL,
        reason=Reason.SKIPPED,
        action=EventAction.SKIP,
        note=f"not evicted from node {node}: {why}",
    )
