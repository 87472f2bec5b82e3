"""The plumbing under every kind of object the cluster client reads or writes: one cluster's
connection, JSON requests, DELETEs whose answer is not needed, and watches.

Requests go through the kubernetes client's connection pool and auth machinery
(:mod:`functions.gateways.kube.connection`), but bodies are read as JSON into the project's own
frozen dataclasses (no generated models on the hot path). Every name put into a path is escaped
(:func:`seg`). Every write takes ``dry_run`` and sends ``dryRun=All`` when it is set, so a dry run
still exercises admission and RBAC but changes nothing. Failures raise the errors of
:mod:`functions.gateways.kube.errors`, which keep the server's Status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTResponse

from functions.decisions.settings import DEFAULT_CONTAINER_API, ClusterConfig
from functions.gateways.kube.connection import connect
from functions.gateways.kube.errors import ApiStatus, ApiUnavailable, error_for, raise_for, unreachable
from functions.gateways.kube.watch import WatchEvent, WatchStop, read_events


def seg(name: str) -> str:
    """One path segment: escaped, so that '/', '%', '..' or '?' in a name can never change the path."""
    return quote(name, safe="")


def scoped(group_version: str, namespace: str | None, resource: str) -> str:
    """The path of ``resource`` in ``namespace``, or in all namespaces when None."""
    return f"{group_version}/namespaces/{seg(namespace)}/{resource}" if namespace else f"{group_version}/{resource}"


def continue_token(body: Mapping[str, Any]) -> str:
    """A list page's continue token; "" on the last page."""
    return str((body.get("metadata") or {}).get("continue") or "")


class ApiBase:
    """One cluster's connection and the requests every object kind uses (see :mod:`.client`)."""

    def __init__(
        self, cluster: ClusterConfig, *, timeout: float, container_api: str = DEFAULT_CONTAINER_API, pool_size: int = 64
    ) -> None:
        self.cluster = cluster
        self.timeout = timeout
        self._api = connect(cluster, timeout=timeout, container_api=container_api, pool_size=pool_size)

    def close(self) -> None:
        self._api.close()

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
        if stop is not None and not stop.track(raw):  # stopped while it opened
            raw.close()
            raw.release_conn()
            return
        try:
            if response.status != 200:
                raise_for(response.status, raw.read(), request=f"watch {path}")
            yield from read_events(raw, request=f"watch {path}")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(f"watch {path}", exc) from None
        finally:  # also when the consumer stops early: the stream never outlives its watch
            if stop is not None:
                stop.untrack(raw)
            raw.close()
            raw.release_conn()
