"""Snapshots of Kubernetes objects as the drainer sees them: frozen, typed, built from API JSON.

No kubernetes import here: pure decision code works on these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class ReadyCondition:
    status: str  # "True", "False", "Unknown" ("Unknown" too when the condition is missing)
    last_heartbeat: datetime | None
    last_transition: datetime | None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class Node:
    name: str
    uid: str
    resource_version: str
    provider_id: str
    unschedulable: bool
    annotations: Mapping[str, str]
    labels: Mapping[str, str]
    boot_id: str
    ready: ReadyCondition

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
            labels=dict(meta.get("labels") or {}),
            boot_id=(status.get("nodeInfo") or {}).get("bootID", ""),
            ready=ReadyCondition(
                status=ready.get("status", "Unknown") if ready else "Unknown",
                last_heartbeat=parse_time(ready.get("lastHeartbeatTime")) if ready else None,
                last_transition=parse_time(ready.get("lastTransitionTime")) if ready else None,
                reason=ready.get("reason", "") if ready else "",
            ),
        )


@dataclass(frozen=True, kw_only=True)
class Owner:
    kind: str
    name: str


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

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_mirror(self) -> bool:
        return MIRROR_ANNOTATION in self.annotations

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Pod:
        meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
        controller = next(
            (
                Owner(kind=o.get("kind", ""), name=o.get("name", ""))
                for o in meta.get("ownerReferences") or []
                if o.get("controller")
            ),
            None,
        )
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
        )
