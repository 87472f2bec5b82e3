"""Typed access to one cluster's API server with the verbs the drainer uses.

Requests go through the kubernetes client's connection pool and auth machinery
(:mod:`functions.gateways.kube.connection`), but bodies are read as JSON into the project's own
frozen dataclasses (no generated models on the hot path). Every name put into a path is escaped.
Every write takes ``dry_run`` and sends ``dryRun=All`` when it is set, so a dry run still
exercises admission and RBAC but changes nothing. Failures raise the errors of
:mod:`functions.gateways.kube.errors`, which keep the server's Status.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse

from functions.decisions.lease import LeaseRecord
from functions.decisions.model import Budget, Job, Node, Pod, VolumeAttachment
from functions.decisions.names import FIELD_MANAGER
from functions.decisions.settings import DEFAULT_CONTAINER_API, ClusterConfig
from functions.gateways.kube.connection import connect
from functions.gateways.kube.errors import (
    ApiRejected,
    ApiStatus,
    ApiUnavailable,
    Conflict,
    NotFound,
    error_for,
    raise_for,
    unreachable,
)

DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
DELETE_ATTEMPTS = 3  # graceful deletes refused because the pod changed since it was read, before deleting by UID
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def _seg(name: str) -> str:
    """One path segment: escaped, so that '/', '%', '..' or '?' in a name can never change the path."""
    return quote(name, safe="")


class WatchEvent(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


class EvictionOutcome(StrEnum):
    EVICTED = "evicted"  # accepted: the pod is now terminating
    GONE = "gone"  # 404/409: the pod (with this UID) no longer exists
    TERMINATING = "terminating"  # 409: changed since it was read, and now terminating (someone evicted it first)
    STALE = "stale"  # 409: changed since it was read, still running: evict it again as it is now (``pod``)
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget allows no disruption now
    MULTIPLE_PDBS = "multiple_pdbs"  # 500: more than one PDB selects the pod
    NAMESPACE_TERMINATING = "namespace_terminating"  # 403: the namespace is going; its pods will be deleted
    UNAVAILABLE = "unavailable"  # transient failure; retry


@dataclass(frozen=True, kw_only=True)
class EvictionResult:
    outcome: EvictionOutcome
    message: str = ""
    pdb: str | None = None
    exhausted: bool = False  # BLOCKED: the budget needs more healthy pods (not a budget still being processed)
    status: ApiStatus | None = None
    pod: Pod | None = None  # STALE: the pod as it is now


class WatchStop:
    """Ends, from another thread, the watches it is given: ``close()`` shuts their connections down,
    so that a read blocked on a stream returns at once (the watcher gets an error or the stream's
    end), and no watch opens after it. One per drain: its streams never outlive it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._open: set[Any] = set()

    @property
    def closed(self) -> bool:
        return self._closed

    def _add(self, raw: Any) -> bool:
        """Track an open stream; False (the caller closes it) once closed."""
        with self._lock:
            if self._closed:
                return False
            self._open.add(raw)
            return True

    def _discard(self, raw: Any) -> None:
        with self._lock:
            self._open.discard(raw)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            streams = list(self._open)
        for raw in streams:
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    # the plain socket's shutdown (not SSLSocket's, which would drop the TLS state under
                    # the reading thread): its blocked read returns, the watcher ends its stream
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


# ------------------------------------------------------------------ client
class ClusterClient:
    """Typed access to one cluster's API server with the verbs the drainer uses."""

    def __init__(
        self, cluster: ClusterConfig, *, timeout: float, container_api: str = DEFAULT_CONTAINER_API, pool_size: int = 64
    ) -> None:
        self.cluster = cluster
        self.timeout = timeout
        self._api = connect(cluster, timeout=timeout, container_api=container_api, pool_size=pool_size)

    def close(self) -> None:
        self._api.close()

    # ------------------------------------------------------------ plumbing
    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
    ) -> RESTResponse:
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            payload = body  # the client serializes JSON bodies (merge-patch+json included)
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        try:
            response = self._api.request(
                method, path, query=params, headers=headers, body=payload, timeout=timeout or self.timeout
            )
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as exc:
            # ApiException: raised by the client itself for TLS and protocol failures
            raise unreachable(f"{method} {path}", exc) from None
        if not stream:
            response.read()
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        data = response.data
        if not 200 <= response.status < 300:
            raise_for(response.status, data, request=f"{method} {path}")
        if not data:
            return {}
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise ApiUnavailable(
                ApiStatus(code=response.status, message="the answer is not JSON"), request=f"{method} {path}"
            ) from None

    @staticmethod
    def _dry(dry_run: bool) -> dict[str, str]:
        return {"dryRun": "All"} if dry_run else {}

    # --------------------------------------------------------------- nodes
    def get_node(self, name: str) -> Node | None:
        try:
            return Node.from_json(self._json("GET", f"/api/v1/nodes/{_seg(name)}"))
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
        request = f"PATCH /api/v1/nodes/{_seg(name)}"
        try:
            body = self._json(
                "PATCH",
                f"/api/v1/nodes/{_seg(name)}",
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

    # ---------------------------------------------------------------- pods
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

    # ------------------------------------------------------------- budgets
    def list_budgets(self) -> tuple[list[Budget], str]:
        """Every PodDisruptionBudget of the cluster (policy/v1) and the list's resourceVersion."""
        body = self._json("GET", "/apis/policy/v1/poddisruptionbudgets")
        budgets = [Budget.from_json(item) for item in body.get("items") or []]
        return budgets, str((body.get("metadata") or {}).get("resourceVersion", ""))

    def watch_budgets(
        self, *, resource_version: str, timeout: float, stop: WatchStop | None = None
    ) -> Iterator[tuple[WatchEvent, Budget]]:
        query = {"resourceVersion": resource_version}
        for kind, obj in self._watch("/apis/policy/v1/poddisruptionbudgets", query, timeout, stop):
            yield kind, Budget.from_json(obj)

    def _watch(
        self, path: str, query: Mapping[str, str], timeout: float, stop: WatchStop | None = None
    ) -> Iterator[tuple[WatchEvent, Mapping[str, Any]]]:
        """Stream watch events until ``timeout`` or ``stop``; ends quietly on expiry, a closed stream or
        410 Gone."""
        if stop is not None and stop.closed:
            return
        seconds = max(1, int(timeout + 0.999))
        params = {**query, "watch": "true", "allowWatchBookmarks": "false", "timeoutSeconds": str(seconds)}
        response = self._request("GET", path, query=params, timeout=(self.timeout, seconds + 5), stream=True)
        raw = response.response
        if stop is not None and not stop._add(raw):  # stopped while it opened
            raw.close()
            raw.release_conn()
            return
        try:
            if response.status != 200:
                raise_for(response.status, raw.read(), request=f"watch {path}")
            buffer = b""
            for chunk in raw.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except (ValueError, RecursionError):
                        event = None
                    if not isinstance(event, dict):  # a torn or garbled line: end, the caller relists
                        raise ApiUnavailable(
                            ApiStatus(code=200, message="malformed watch event"), request=f"watch {path}"
                        )
                    kind = event.get("type")
                    if kind == "ERROR":  # e.g. 410 Gone: the caller relists
                        return
                    if isinstance(kind, str) and kind in WatchEvent.__members__:
                        yield WatchEvent(kind), event.get("object") or {}
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(f"watch {path}", exc) from None
        finally:  # also when the consumer stops early: the stream never outlives its watch
            if stop is not None:
                stop._discard(raw)
            raw.close()
            raw.release_conn()

    def evict(self, pod: Pod, *, dry_run: bool = False) -> EvictionResult:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            # the resourceVersion precondition makes evictions of one pod by concurrent drains (one event
            # delivered several times) exclusive: the first is accepted, the others get a 409 and find the
            # pod terminating, instead of deleting it again and each reporting it evicted
            "deleteOptions": {"preconditions": _preconditions(pod), **({"dryRun": ["All"]} if dry_run else {})},
        }
        path = f"/api/v1/namespaces/{_seg(pod.namespace)}/pods/{_seg(pod.name)}/eviction"
        try:
            response = self._request("POST", path, body=body)
        except ApiUnavailable as exc:
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(exc), status=exc.status)
        code = response.status
        if 200 <= code < 300:
            return EvictionResult(outcome=EvictionOutcome.EVICTED)
        error = error_for(code, response.data, request=f"POST {path}")
        status = error.status
        if code == 409 and pod.resource_version:
            return self._after_conflict(pod, status)
        if code in (404, 409):
            return EvictionResult(outcome=EvictionOutcome.GONE, message=status.message, status=status)
        if code == 429:
            return EvictionResult(
                outcome=EvictionOutcome.BLOCKED,
                message=status.message,
                pdb=_blocking_pdb(status),
                exhausted=_budget_exhausted(status),
                status=status,
            )
        if code == 403 and status.has_cause(NAMESPACE_TERMINATING_CAUSE):
            return EvictionResult(outcome=EvictionOutcome.NAMESPACE_TERMINATING, message=status.message, status=status)
        if code == 500 and "more than one poddisruptionbudget" in status.message.lower():
            # The API server sends no cause or reason of its own for this refusal (InternalError).
            return EvictionResult(outcome=EvictionOutcome.MULTIPLE_PDBS, message=status.message, status=status)
        if isinstance(error, ApiUnavailable):
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(error), status=status)
        raise error

    def _current(self, pod: Pod) -> Pod | None:
        """The pod now, None when it is gone. A list by name: the drainer may list pods, not get them."""
        path = f"/api/v1/namespaces/{_seg(pod.namespace)}/pods"
        body = self._json("GET", path, query={"fieldSelector": f"metadata.name={pod.name}"})
        found = [Pod.from_json(item) for item in body.get("items") or []]
        return found[0] if found else None

    def _after_conflict(self, pod: Pod, status: ApiStatus) -> EvictionResult:
        """An eviction refused by its preconditions: what became of the pod since it was read."""
        try:
            current = self._current(pod)
        except ApiUnavailable as exc:
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(exc), status=exc.status)
        if current is None or current.uid != pod.uid:
            return EvictionResult(outcome=EvictionOutcome.GONE, message=status.message, status=status)
        if current.deletion_timestamp is not None:
            return EvictionResult(outcome=EvictionOutcome.TERMINATING, message="already terminating", status=status)
        return EvictionResult(outcome=EvictionOutcome.STALE, message=status.message, status=status, pod=current)

    def list_pods(
        self, field_selector: str, *, limit: int, token: str | None, namespace: str | None = None
    ) -> tuple[list[Pod], str]:
        """One page of pods in ``namespace`` (all namespaces when None); returns (pods, continue token or "")."""
        body = self._json(
            "GET",
            _scoped("/api/v1", namespace, "pods"),
            query={"fieldSelector": field_selector, "limit": str(limit), "continue": token},
        )
        return [Pod.from_json(item) for item in body.get("items") or []], _continue(body)

    def list_jobs(self, *, limit: int, token: str | None, namespace: str | None = None) -> tuple[list[Job], str]:
        """One page of Jobs in ``namespace`` (all namespaces when None); returns (jobs, continue token or "")."""
        body = self._json(
            "GET", _scoped("/apis/batch/v1", namespace, "jobs"), query={"limit": str(limit), "continue": token}
        )
        return [Job.from_json(item) for item in body.get("items") or []], _continue(body)

    def find_job(self, *, namespace: str, name: str) -> Job | None:
        """The Job of that name as it is now, or None (read with the list verb the cleanup has)."""
        body = self._json(
            "GET", _scoped("/apis/batch/v1", namespace, "jobs"), query={"fieldSelector": f"metadata.name={name}"}
        )
        found = [Job.from_json(item) for item in body.get("items") or []]
        return found[0] if found else None

    def delete_job(self, job: Job, *, dry_run: bool = False) -> bool:
        """Delete with its pods (Background propagation) and a UID precondition; False when already gone."""
        options: dict[str, Any] = {"propagationPolicy": "Background", "preconditions": {"uid": job.uid}}
        if dry_run:
            options["dryRun"] = ["All"]
        return self._delete(f"/apis/batch/v1/namespaces/{_seg(job.namespace)}/jobs/{_seg(job.name)}", options)

    def delete_pod(self, pod: Pod, *, grace_seconds: int | None = None, dry_run: bool = False) -> bool:
        """Delete with a UID precondition; False when that pod is already gone. A graceful delete is
        also for the pod as it was read (resourceVersion): when it has changed since, it is deleted as
        it is now, unless someone (another delivery of the event) is deleting it already: False, so
        that concurrent drains count it once."""
        path = f"/api/v1/namespaces/{_seg(pod.namespace)}/pods/{_seg(pod.name)}"
        extra: dict[str, Any] = {}
        if grace_seconds is not None:
            extra["gracePeriodSeconds"] = grace_seconds
        if dry_run:
            extra["dryRun"] = ["All"]
        if grace_seconds is None and pod.resource_version:
            current = pod
            for _ in range(DELETE_ATTEMPTS):
                try:
                    return self._delete(path, {"preconditions": _preconditions(current), **extra}, raise_conflict=True)
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
        path = f"/api/v1/namespaces/{_seg(pod.namespace)}/pods/{_seg(pod.name)}"
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

    def _delete(self, path: str, options: Mapping[str, Any], *, raise_conflict: bool = False) -> bool:
        """A DELETE whose answer body is not needed: True when accepted, False when already gone
        (404, or 409 for a UID precondition that no longer matches; Conflict raised instead with
        ``raise_conflict``)."""
        response = self._request("DELETE", path, body=dict(options))
        if 200 <= response.status < 300:
            return True
        if response.status == 409 and raise_conflict:
            raise error_for(409, response.data, request=f"DELETE {path}")
        if response.status in (404, 409):
            return False
        raise error_for(response.status, response.data, request=f"DELETE {path}")

    # -------------------------------------------------------------- events
    def create_event(self, *, namespace: str, body: Mapping[str, Any], timeout: float | None = None) -> None:
        """Create an ``events.k8s.io/v1`` Event (raises Conflict when that name exists)."""
        path = f"/apis/events.k8s.io/v1/namespaces/{_seg(namespace)}/events"
        self._json("POST", path, body=dict(body), query={"fieldManager": FIELD_MANAGER}, timeout=timeout)

    def patch_event(self, *, namespace: str, name: str, patch: Mapping[str, Any], timeout: float | None = None) -> None:
        """JSON merge patch of an Event (its ``series`` on a repeat, as client-go does); NotFound when gone."""
        self._json(
            "PATCH",
            f"/apis/events.k8s.io/v1/namespaces/{_seg(namespace)}/events/{_seg(name)}",
            body=dict(patch),
            content_type="application/merge-patch+json",
            query={"fieldManager": FIELD_MANAGER},
            timeout=timeout,
        )

    # -------------------------------------------------------------- leases
    def get_lease(self, *, namespace: str, name: str) -> LeaseRecord | None:
        """The ``coordination.k8s.io/v1`` Lease; None when it does not exist."""
        try:
            return LeaseRecord.from_json(self._json("GET", _lease_path(namespace, name)))
        except NotFound:
            return None

    def create_lease(self, *, namespace: str, body: Mapping[str, Any]) -> LeaseRecord:
        """Create a Lease; Conflict (409 AlreadyExists) when someone else created it first."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/{_seg(namespace)}/leases"
        return LeaseRecord.from_json(self._json("POST", path, body=dict(body), query={"fieldManager": FIELD_MANAGER}))

    def update_lease(self, *, namespace: str, name: str, body: Mapping[str, Any]) -> LeaseRecord:
        """Replace a Lease (PUT) guarded by the resourceVersion in ``body``: Conflict when it changed
        since it was read, NotFound when it is gone."""
        return LeaseRecord.from_json(
            self._json("PUT", _lease_path(namespace, name), body=dict(body), query={"fieldManager": FIELD_MANAGER})
        )


def _lease_path(namespace: str, name: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{_seg(namespace)}/leases/{_seg(name)}"


def _preconditions(pod: Pod) -> dict[str, str]:
    if pod.resource_version:
        return {"uid": pod.uid, "resourceVersion": pod.resource_version}
    return {"uid": pod.uid}


def _scoped(group_version: str, namespace: str | None, resource: str) -> str:
    return f"{group_version}/namespaces/{_seg(namespace)}/{resource}" if namespace else f"{group_version}/{resource}"


def _continue(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("continue") or "")


def _budget_exhausted(status: ApiStatus) -> bool:
    """Whether a 429 says the budget has no disruption left ("... needs N healthy pods and has M
    currently"), as opposed to a budget the server is still processing (a status older than its
    spec, or a pod that changed under the eviction), which is worth a retry soon."""
    return any(
        cause.reason == DISRUPTION_BUDGET_CAUSE and " healthy pods and has " in cause.message for cause in status.causes
    )


def _blocking_pdb(status: ApiStatus) -> str | None:
    """The PDB that refused an eviction, from the Status's DisruptionBudget cause
    ("The disruption budget NAME needs ...": the name is only in the cause's message)."""
    prefix = "The disruption budget "
    for cause in status.causes:
        if cause.reason == DISRUPTION_BUDGET_CAUSE and cause.message.startswith(prefix):
            return cause.message[len(prefix) :].split(" ", 1)[0] or None
    return None
