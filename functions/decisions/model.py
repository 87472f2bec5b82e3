"""Snapshots of Kubernetes objects as the drainer sees them: frozen, typed, built from API JSON.

No kubernetes import here: pure decision code works on these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.decisions.times import parse_time

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


@dataclass(frozen=True, kw_only=True)
class ReadyCondition:
    status: str  # "True", "False", "Unknown" ("Unknown" too when the condition is missing)
    last_heartbeat: datetime | None
    last_transition: datetime | None


@dataclass(frozen=True, kw_only=True)
class Taint:
    key: str
    value: str = ""
    effect: str = ""  # NoSchedule, PreferNoSchedule, NoExecute

    def as_json(self) -> dict[str, str]:
        return (
            {"key": self.key, "value": self.value, "effect": self.effect}
            if self.value
            else {
                "key": self.key,
                "effect": self.effect,
            }
        )


@dataclass(frozen=True, kw_only=True)
class Node:
    name: str
    uid: str
    resource_version: str
    provider_id: str
    unschedulable: bool
    annotations: Mapping[str, str]
    boot_id: str
    ready: ReadyCondition
    unschedulable_manager: str | None = None  # the field manager that owns spec.unschedulable
    taints: tuple[Taint, ...] = ()
    created_at: datetime | None = None
    raw_taints: tuple[Mapping[str, Any], ...] = ()  # as the API server sent them (kept as they are on updates)

    @property
    def location(self) -> tuple[str, str, str] | None:
        """(project, zone, instance) from ``spec.providerID`` ``gce://PROJECT/ZONE/NAME``."""
        parts = self.provider_id.removeprefix("gce://").split("/")
        if not self.provider_id.startswith("gce://") or len(parts) != 3 or not all(parts):
            return None
        return parts[0], parts[1], parts[2]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Node:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        return cls(
            name=meta["name"],
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            provider_id=spec.get("providerID", ""),
            unschedulable=bool(spec.get("unschedulable", False)),
            annotations=dict(meta.get("annotations") or {}),
            boot_id=(status.get("nodeInfo") or {}).get("bootID", ""),
            ready=ReadyCondition(
                status=ready.get("status", "Unknown") if ready else "Unknown",
                last_heartbeat=parse_time(ready.get("lastHeartbeatTime")) if ready else None,
                last_transition=parse_time(ready.get("lastTransitionTime")) if ready else None,
            ),
            unschedulable_manager=_field_manager(meta, "f:spec", "f:unschedulable"),
            taints=tuple(
                Taint(key=str(t.get("key", "")), value=str(t.get("value") or ""), effect=str(t.get("effect", "")))
                for t in spec.get("taints") or []
                if isinstance(t, Mapping)
            ),
            raw_taints=tuple(dict(t) for t in spec.get("taints") or [] if isinstance(t, Mapping)),
            created_at=parse_time(meta.get("creationTimestamp")),
        )


@dataclass(frozen=True, kw_only=True)
class VmInstance:
    """A Compute Engine instance as ``instances.get`` describes it."""

    id: str
    name: str
    status: str  # RUNNING, STOPPING, TERMINATED, STOPPED, SUSPENDED, REPAIRING, PROVISIONING, STAGING, ...
    last_start: datetime | None


@dataclass(frozen=True, kw_only=True)
class VolumeAttachment:
    name: str
    node_name: str
    persistent_volume: str  # spec.source.persistentVolumeName ("" for inline volumes)
    attached: bool

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> VolumeAttachment:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
        return cls(
            name=meta["name"],
            node_name=spec.get("nodeName", ""),
            persistent_volume=(spec.get("source") or {}).get("persistentVolumeName") or "",
            attached=bool(status.get("attached", False)),
        )


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """One ``matchExpressions`` entry of a label selector."""

    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        return False  # an operator the API server would not have accepted: selects nothing


@dataclass(frozen=True, kw_only=True)
class Budget:
    """A policy/v1 PodDisruptionBudget: whom it covers and what its status allows now."""

    namespace: str
    name: str
    match_labels: Mapping[str, str]
    match_expressions: tuple[Requirement, ...]
    disruptions_allowed: int
    generation: int
    observed_generation: int
    disrupted_pods: frozenset[str] = frozenset()  # evictions allowed but not yet seen by the disruption controller
    resource_version: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def allows_eviction(self) -> bool:
        """What the eviction subresource checks first: a status computed for the current spec
        that allows at least one disruption."""
        return self.observed_generation >= self.generation and self.disruptions_allowed > 0

    def selects(self, pod: Pod) -> bool:
        """The eviction subresource's matching: same namespace, and a selector that is not empty
        (an empty or missing selector of a policy/v1 budget selects no pod)."""
        if pod.namespace != self.namespace or not (self.match_labels or self.match_expressions):
            return False
        return all(pod.labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(pod.labels) for r in self.match_expressions
        )

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Budget:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec") or {}, obj.get("status") or {}
        selector = spec.get("selector") or {}
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            match_labels=dict(selector.get("matchLabels") or {}),
            match_expressions=tuple(
                Requirement(
                    key=str(e.get("key", "")),
                    operator=str(e.get("operator", "")),
                    values=frozenset(str(v) for v in e.get("values") or []),
                )
                for e in selector.get("matchExpressions") or []
            ),
            disruptions_allowed=int(status.get("disruptionsAllowed") or 0),
            generation=int(meta.get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            disrupted_pods=frozenset(str(name) for name in status.get("disruptedPods") or {}),
            resource_version=str(meta.get("resourceVersion") or ""),
        )


@dataclass(frozen=True, kw_only=True)
class Owner:
    kind: str
    name: str
    uid: str = ""
    api_version: str = ""  # as in the reference: "batch/v1", "jobset.x-k8s.io/v1alpha2", "v1", ...

    @property
    def group(self) -> str:
        """The API group of the owner's kind ("" for the core group)."""
        return self.api_version.rpartition("/")[0]

    @classmethod
    def controller_of(cls, meta: Mapping[str, Any]) -> Owner | None:
        """The owner reference marked ``controller``, if any."""
        return next(
            (
                cls(
                    kind=o.get("kind", ""),
                    name=o.get("name", ""),
                    uid=o.get("uid", ""),
                    api_version=str(o.get("apiVersion") or ""),
                )
                for o in meta.get("ownerReferences") or []
                if o.get("controller")
            ),
            None,
        )


@dataclass(frozen=True, kw_only=True)
class Pod:
    namespace: str
    name: str
    uid: str
    node_name: str
    phase: str
    controller: Owner | None
    annotations: Mapping[str, str]
    labels: Mapping[str, str]
    deletion_timestamp: datetime | None
    local_storage: bool  # mounts an emptyDir
    priority: int
    priority_class: str
    finished_at: datetime | None = None  # when the last container terminated (terminal pods)
    resource_version: str = ""  # as read: an eviction is guarded by it (evicts the pod as it was seen)
    finalizers: tuple[str, ...] = ()  # a deleted pod stays (deletionTimestamp set) until they are removed

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_mirror(self) -> bool:
        return MIRROR_ANNOTATION in self.annotations

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Pod:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
        controller = Owner.controller_of(meta)
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            uid=meta.get("uid", ""),
            node_name=spec.get("nodeName", ""),
            phase=status.get("phase", "Pending"),
            controller=controller,
            annotations=dict(meta.get("annotations") or {}),
            labels=dict(meta.get("labels") or {}),
            deletion_timestamp=parse_time(meta.get("deletionTimestamp")),
            local_storage=any("emptyDir" in v for v in spec.get("volumes") or []),
            priority=int(spec.get("priority") or 0),
            priority_class=spec.get("priorityClassName", ""),
            finished_at=_finished_at(status),
            resource_version=str(meta.get("resourceVersion") or ""),
            finalizers=tuple(str(f) for f in meta.get("finalizers") or []),
        )


def _field_manager(meta: Mapping[str, Any], *path: str) -> str | None:
    """The manager whose managedFields entry holds ``path`` (the newest when several do)."""
    owner = None
    for entry in meta.get("managedFields") or []:
        fields: Any = entry.get("fieldsV1") or {}
        for key in path:
            fields = fields.get(key) if isinstance(fields, dict) else None
        if fields is not None:
            owner = entry.get("manager")
    return owner


def _finished_at(status: Mapping[str, Any]) -> datetime | None:
    times = [
        parse_time(((c.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        for c in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    ]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return parse_time(ready.get("lastTransitionTime")) if ready else None


@dataclass(frozen=True, kw_only=True)
class Job:
    namespace: str
    name: str
    uid: str
    finished: str | None  # "Complete" or "Failed" when the Job has finished
    finished_at: datetime | None  # lastTransitionTime of that condition
    ttl_after_finished: int | None
    annotations: Mapping[str, str]
    controller: Owner | None
    managed_by: str | None = None  # spec.managedBy: the controller that syncs the Job (None: the Job controller)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Job:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
        done = next(
            (
                c
                for c in status.get("conditions") or []
                if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            ),
            None,
        )
        controller = Owner.controller_of(meta)
        ttl = spec.get("ttlSecondsAfterFinished")
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            uid=meta.get("uid", ""),
            finished=done.get("type") if done else None,
            finished_at=parse_time(done.get("lastTransitionTime")) if done else None,
            ttl_after_finished=int(ttl) if ttl is not None else None,
            annotations=dict(meta.get("annotations") or {}),
            controller=controller,
            managed_by=str(spec.get("managedBy") or "") or None,
        )
