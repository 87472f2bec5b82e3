"""Pods: the pods of a node and their watch, pages of pods for the cleanup, graceful and forced
deletes pinned to the pod's UID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from functions.decisions.model import Pod
from functions.gateways.kube.api import ApiBase, continue_token, scoped, seg
from functions.gateways.kube.errors import Conflict, error_for
from functions.gateways.kube.watch import WatchEvent, WatchStop

DELETE_ATTEMPTS = 3  # graceful deletes refused because the pod changed since it was read, before deleting by UID


def preconditions(pod: Pod) -> dict[str, str]:
    """The pod as it was read: its UID and, when known, its resourceVersion."""
    if pod.resource_version:
        return {"uid": pod.uid, "resourceVersion": pod.resource_version}
    return {"uid": pod.uid}


class PodApi(ApiBase):
    """Pods: those of a node (listed and watched), pages of pods, and deletes by UID."""

    def list_pods_on_node(self, node: str) -> tuple[list[Pod], str]:
        body = self._json("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node}"})
        pods = [Pod.from_json(item) for item in body.get("items") or []]
        return pods, str((body.get("metadata") or {}).get("resourceVersion", ""))

    def watch_pods_on_node(
        self, node: str, *, resource_version: str, timeout: float, stop: WatchStop | None = None
    ) -> Iterator[tuple[WatchEvent, Pod]]:
        query = {"fieldSelector": f"spec.nodeName={node}", "resourceVersion": resource_version}
        for kind, obj in self._watch("/api/v1/pods", query, timeout, stop):
            yield kind, Pod.from_json(obj)

    def list_pods(
        self, field_selector: str, *, limit: int, token: str | None, namespace: str | None = None
    ) -> tuple[list[Pod], str]:
        """One page of pods in ``namespace`` (all namespaces when None); returns (pods, continue token or "")."""
        body = self._json(
            "GET",
            scoped("/api/v1", namespace, "pods"),
            query={"fieldSelector": field_selector, "limit": str(limit), "continue": token},
        )
        return [Pod.from_json(item) for item in body.get("items") or []], continue_token(body)

    def _current(self, pod: Pod) -> Pod | None:
        """The pod now, None when it is gone. A list by name: the drainer may list pods, not get them."""
        path = f"/api/v1/namespaces/{seg(pod.namespace)}/pods"
        body = self._json("GET", path, query={"fieldSelector": f"metadata.name={pod.name}"})
        found = [Pod.from_json(item) for item in body.get("items") or []]
        return found[0] if found else None

    def delete_pod(self, pod: Pod, *, grace_seconds: int | None = None, dry_run: bool = False) -> bool:
        """Delete with a UID precondition; False when that pod is already gone. A graceful delete is
        also for the pod as it was read (resourceVersion): when it has changed since, it is deleted as
        it is now, unless someone (another delivery of the event) is deleting it already: False, so
        that concurrent drains count it once."""
        path = f"/api/v1/namespaces/{seg(pod.namespace)}/pods/{seg(pod.name)}"
        extra: dict[str, Any] = {}
        if grace_seconds is not None:
            extra["gracePeriodSeconds"] = grace_seconds
        if dry_run:
            extra["dryRun"] = ["All"]
        if grace_seconds is None and pod.resource_version:
            current = pod
            for _ in range(DELETE_ATTEMPTS):
                try:
                    return self._delete(path, {"preconditions": preconditions(current), **extra}, raise_conflict=True)
                except Conflict:
                    fresh = self._current(pod)
                if fresh is None or fresh.uid != pod.uid or fresh.deletion_timestamp is not None:
                    return False  # gone, or being deleted by someone else: not ours to count
                current = fresh
        return self._delete(path, {"preconditions": {"uid": pod.uid}, **extra})

    def force_delete_pod(self, pod: Pod, *, dry_run: bool = False) -> tuple[str, ...] | None:
        """Delete at once (grace 0) with a UID precondition. None when that pod was already gone;
        else the finalizers that still hold it, as the API server answered: a pod with finalizers
        stays (deletionTimestamp set) until they are removed. Empty: it is gone."""
        path = f"/api/v1/namespaces/{seg(pod.namespace)}/pods/{seg(pod.name)}"
        options: dict[str, Any] = {"gracePeriodSeconds": 0, "preconditions": {"uid": pod.uid}}
        if dry_run:
            options["dryRun"] = ["All"]
        response = self._request("DELETE", path, body=options)
        if response.status in (404, 409):
            return None
        if not 200 <= response.status < 300:
            raise error_for(response.status, response.data, request=f"DELETE {path}")
        try:
            left = json.loads(response.data or b"{}")
        except (ValueError, RecursionError):
            return pod.finalizers  # no answer to read: those it had when it was listed
        if not isinstance(left, dict) or left.get("kind") != "Pod":
            return ()  # a Status: deleted
        return tuple(str(f) for f in (left.get("metadata") or {}).get("finalizers") or [])
