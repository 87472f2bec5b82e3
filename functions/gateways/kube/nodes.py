"""Nodes and the VolumeAttachments that point at them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from functions.decisions.model import Node, VolumeAttachment
from functions.decisions.names import FIELD_MANAGER
from functions.gateways.kube.api import ApiBase, seg
from functions.gateways.kube.errors import ApiRejected, ApiStatus, Conflict, NotFound
from functions.gateways.kube.watch import WatchEvent, WatchStop


class NodeApi(ApiBase):
    """Nodes: read, listed, watched and patched (pinned to the Node's UID)."""

    def get_node(self, name: str) -> Node | None:
        try:
            return Node.from_json(self._json("GET", f"/api/v1/nodes/{seg(name)}"))
        except NotFound:
            return None

    def patch_node(
        self,
        name: str,
        *,
        uid: str,
        resource_version: str | None = None,
        unschedulable: bool | None = None,
        annotations: Mapping[str, str | None] | None = None,
        taints: list[dict[str, object]] | None = None,
        dry_run: bool = False,
    ) -> Node:
        """JSON merge patch pinned to the Node's ``uid`` (a Node deleted and registered again under
        the same name never receives a write meant for its predecessor: Conflict) and, when given,
        guarded by ``resource_version``: raises Conflict when the node changed (so a new ``taints``
        list, which replaces the whole list, never loses a taint added meanwhile)."""
        patch: dict[str, Any] = {"metadata": {"uid": uid}}
        if resource_version is not None:
            patch["metadata"]["resourceVersion"] = resource_version
        if annotations:
            patch["metadata"]["annotations"] = dict(annotations)
        spec: dict[str, Any] = {}
        if unschedulable is not None:
            spec["unschedulable"] = unschedulable
        if taints is not None:
            spec["taints"] = taints or None  # null removes the field
        if spec:
            patch["spec"] = spec
        query = {**self._dry(dry_run), "fieldManager": FIELD_MANAGER}
        request = f"PATCH /api/v1/nodes/{seg(name)}"
        try:
            body = self._json(
                "PATCH",
                f"/api/v1/nodes/{seg(name)}",
                body=patch,
                content_type="application/merge-patch+json",
                query=query,
            )
        except ApiRejected as exc:
            if any(c.field == "metadata.uid" for c in exc.status.causes):  # "field is immutable": another Node
                raise Conflict(
                    ApiStatus(code=409, reason="Conflict", message=f"node {name} is no longer the Node {uid}"),
                    request=request,
                ) from None
            raise
        return Node.from_json(body)

    def list_volume_attachments(self, *, node: str) -> list[VolumeAttachment]:
        """The VolumeAttachments that point at ``node`` (filtered here: no field selector exists)."""
        body = self._json("GET", "/apis/storage.k8s.io/v1/volumeattachments")
        attachments = [VolumeAttachment.from_json(item) for item in body.get("items") or []]
        return [a for a in attachments if a.node_name == node]

    def list_nodes(self, *, label_selector: str | None = None) -> list[Node]:
        body = self._json("GET", "/api/v1/nodes", query={"labelSelector": label_selector})
        return [Node.from_json(item) for item in body.get("items") or []]

    def watch_node(
        self, name: str, *, resource_version: str, timeout: float, stop: WatchStop | None = None
    ) -> Iterator[tuple[WatchEvent, Node]]:
        query = {"fieldSelector": f"metadata.name={name}", "resourceVersion": resource_version}
        for kind, obj in self._watch("/api/v1/nodes", query, timeout, stop):
            yield kind, Node.from_json(obj)
