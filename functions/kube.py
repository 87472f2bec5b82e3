"""The only module that talks to the kubernetes client: connections, auth modes, typed results.

Requests go through the client's connection pool and auth machinery, but bodies are read as JSON
into the project's own frozen dataclasses (no generated models on the hot path). Every write takes
``dry_run`` and sends ``dryRun=All`` when it is set, so a dry run still exercises admission and
RBAC but changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, NoReturn

import google.auth
import google.auth.credentials
import google.auth.transport.requests
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.rest import RESTResponse

from functions.config import DEFAULT_CONTAINER_API, AuthMode, ClusterConfig
from functions.errors import DrainerError, PermanentError, TransientError
from functions.model import Job, Node, Pod
from functions.policy import FIELD_MANAGER

GOOGLE_SCOPES = (
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/cloud-platform",
)
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
USER_AGENT = "gke-node-drainer/0.1"


# ------------------------------------------------------------------ errors
class ApiUnavailable(TransientError):
    """The API server could not be reached, timed out or answered 5xx/429."""


class ApiForbidden(PermanentError):
    """RBAC denied a request: the deployment's ClusterRole lacks a verb (fix the manifest)."""


class ApiRejected(PermanentError):
    """The API server rejected a request as invalid (4xx)."""


class Conflict(DrainerError):
    """The object changed under us (409 on an optimistic update); read it again and retry."""


class NotFound(DrainerError):
    """The object does not exist."""


class ListExpired(TransientError):
    """410 Gone: a continue token or resourceVersion is too old; list again from the start."""


def _message(body: bytes | str | None) -> str:
    if not body:
        return ""
    try:
        decoded = json.loads(body)
    except (ValueError, TypeError):
        return body[:300] if isinstance(body, str) else body[:300].decode("utf-8", "replace")
    return str(decoded.get("message", "")) if isinstance(decoded, dict) else str(decoded)[:300]


def _raise_for(status: int, body: bytes | None, what: str) -> NoReturn:
    text = _message(body)
    if status == 404:
        raise NotFound(f"{what}: not found")
    if status == 409:
        raise Conflict(f"{what}: conflict: {text}")
    if status == 410:
        raise ListExpired(f"{what}: {text}")
    if status in (401, 403):
        raise ApiForbidden(f"{what}: {status} {text}")
    if status == 429 or status >= 500:
        raise ApiUnavailable(f"{what}: {status} {text}")
    raise ApiRejected(f"{what}: {status} {text}")


class WatchEvent(str, Enum):  # noqa: UP042 - plain str values
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


class EvictionOutcome(str, Enum):  # noqa: UP042 - plain str values
    EVICTED = "evicted"  # accepted: the pod is now terminating
    GONE = "gone"  # 404/409: the pod (with this UID) no longer exists
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget allows no disruption now
    MULTIPLE_PDBS = "multiple_pdbs"  # 500: more than one PDB selects the pod
    UNAVAILABLE = "unavailable"  # transient failure; retry


@dataclass(frozen=True, kw_only=True)
class EvictionResult:
    outcome: EvictionOutcome
    message: str = ""
    pdb: str | None = None


# ------------------------------------------------------------------- auth
class _GoogleTokenSource:
    """Application-default credentials shared by all clusters of one instance; refreshed early."""

    _lock = threading.Lock()
    _credentials: google.auth.credentials.Credentials | None = None

    @classmethod
    def credentials(cls) -> google.auth.credentials.Credentials:
        with cls._lock:
            if cls._credentials is None:
                creds, _ = google.auth.default(scopes=list(GOOGLE_SCOPES))
                cls._credentials = creds
            return cls._credentials

    @classmethod
    def token(cls) -> str:
        creds = cls.credentials()
        with cls._lock:
            expiry = creds.expiry.replace(tzinfo=UTC) if creds.expiry else None
            if creds.token is None or expiry is None or expiry - datetime.now(UTC) < TOKEN_REFRESH_MARGIN:
                try:
                    creds.refresh(google.auth.transport.requests.Request())
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise ApiUnavailable(f"could not get a Google access token: {type(exc).__name__}") from None
            if not creds.token:
                raise ApiUnavailable("google-auth returned no access token")
            return str(creds.token)

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls._credentials = None


class _TokenFile:
    """A bearer token read from a file, re-read when the file changes (rotation)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._token = ""
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            try:
                mtime = os.stat(self.path).st_mtime
                if mtime != self._mtime:
                    with open(self.path, encoding="utf-8") as handle:
                        self._token = handle.read().strip()
                    self._mtime = mtime
            except OSError as exc:
                raise PermanentError(f"cannot read the token file {self.path}: {exc.strerror}") from None
            if not self._token:
                raise PermanentError(f"the token file {self.path} is empty")
            return self._token


def _pem(ca_data: str) -> str:
    text = ca_data.strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    try:
        decoded = base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise PermanentError("the cluster CA is neither PEM nor base64-encoded PEM") from None
    if not decoded.lstrip().startswith("-----BEGIN"):
        raise PermanentError("the cluster CA does not decode to a PEM certificate")
    return decoded


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    url: str
    ca_pem: str


def discover_endpoint(cluster: ClusterConfig, *, container_api: str, timeout: float) -> Endpoint:
    """Read the endpoint and CA of a GKE cluster from the Container API (clusters.get)."""
    session = google.auth.transport.requests.AuthorizedSession(_GoogleTokenSource.credentials())
    url = f"{container_api.rstrip('/')}/v1/{cluster.resource_name}"
    try:
        response = session.get(url, timeout=timeout)
    except Exception as exc:  # requests/google-auth transport errors
        raise ApiUnavailable(f"Container API unreachable for {cluster.name}: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise ApiForbidden(f"Container API denied clusters.get on {cluster.resource_name}: {response.status_code}")
    if response.status_code == 404:
        raise PermanentError(f"cluster {cluster.resource_name} does not exist (Container API 404)")
    if response.status_code != 200:
        raise ApiUnavailable(f"Container API answered {response.status_code} for {cluster.resource_name}")
    body = response.json()
    endpoint = body.get("endpoint")
    ca = (body.get("masterAuth") or {}).get("clusterCaCertificate")
    if not endpoint or not ca:
        raise PermanentError(f"Container API returned no endpoint or CA for {cluster.resource_name}")
    return Endpoint(url=f"https://{endpoint}", ca_pem=_pem(ca))


# ------------------------------------------------------------------ client
class ClusterClient:
    """Typed access to one cluster's API server with the verbs the drainer uses."""

    def __init__(
        self, cluster: ClusterConfig, *, timeout: float, container_api: str = DEFAULT_CONTAINER_API, pool_size: int = 64
    ) -> None:
        self.cluster = cluster
        self.timeout = timeout
        self._api = self._build(cluster, container_api=container_api, pool_size=pool_size)

    def _build(self, cluster: ClusterConfig, *, container_api: str, pool_size: int) -> k8s.ApiClient:
        if cluster.auth is AuthMode.KUBECONFIG:
            api: k8s.ApiClient = k8s_config.new_client_from_config(
                config_file=cluster.kubeconfig, context=cluster.context
            )
            api.configuration.connection_pool_maxsize = pool_size
            api.rest_client = type(api.rest_client)(api.configuration)
            return api
        configuration = k8s.Configuration()
        if cluster.endpoint:
            configuration.host = cluster.endpoint
            if cluster.ca_data:
                configuration.ca_cert_data = _pem(cluster.ca_data)
            else:
                configuration.ssl_ca_cert = cluster.ca_file
        else:
            endpoint = discover_endpoint(cluster, container_api=container_api, timeout=self.timeout)
            configuration.host = endpoint.url
            configuration.ca_cert_data = endpoint.ca_pem
        configuration.connection_pool_maxsize = pool_size
        # One quick retry of a refused connection; reads are never replayed by urllib3.
        configuration.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.1)
        source = (
            _TokenFile(cluster.token_file).token
            if cluster.auth is AuthMode.TOKEN_FILE and cluster.token_file
            else _GoogleTokenSource.token
        )

        def refresh(conf: k8s.Configuration) -> None:
            conf.api_key["authorization"] = source()

        configuration.api_key = {"authorization": ""}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]
        api = k8s.ApiClient(configuration)
        api.user_agent = USER_AGENT
        return api

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
            m, url, hdrs, _, _ = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=params,
                header_params=headers,
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(
                m, url, header_params=hdrs, body=payload, _request_timeout=timeout or self.timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        except k8s.ApiException as exc:  # raised by the client for SSL and protocol failures
            raise ApiUnavailable(f"{method} {path}: {exc.reason}") from None
        if not stream:
            response.read()
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        data = response.data
        if not 200 <= response.status < 300:
            _raise_for(response.status, data, f"{method} {path}")
        return json.loads(data) if data else {}

    @staticmethod
    def _dry(dry_run: bool) -> dict[str, str]:
        return {"dryRun": "All"} if dry_run else {}

    # --------------------------------------------------------------- nodes
    def get_node(self, name: str) -> Node | None:
        try:
            return Node.from_json(self._json("GET", f"/api/v1/nodes/{name}"))
        except NotFound:
            return None

    def patch_node(
        self,
        name: str,
        *,
        resource_version: str,
        unschedulable: bool | None = None,
        annotations: Mapping[str, str | None] | None = None,
        dry_run: bool = False,
    ) -> Node:
        """JSON merge patch guarded by resourceVersion: raises Conflict when the node changed."""
        patch: dict[str, Any] = {"metadata": {"resourceVersion": resource_version}}
        if annotations:
            patch["metadata"]["annotations"] = dict(annotations)
        if unschedulable is not None:
            patch["spec"] = {"unschedulable": unschedulable}
        query = {**self._dry(dry_run), "fieldManager": FIELD_MANAGER}
        return Node.from_json(
            self._json(
                "PATCH", f"/api/v1/nodes/{name}", body=patch, content_type="application/merge-patch+json", query=query
            )
        )

    def list_nodes(self, *, label_selector: str | None = None) -> list[Node]:
        body = self._json("GET", "/api/v1/nodes", query={"labelSelector": label_selector})
        return [Node.from_json(item) for item in body.get("items") or []]

    def watch_node(self, name: str, *, resource_version: str, timeout: float) -> Iterator[tuple[WatchEvent, Node]]:
        query = {"fieldSelector": f"metadata.name={name}", "resourceVersion": resource_version}
        for kind, obj in self._watch("/api/v1/nodes", query, timeout):
            yield kind, Node.from_json(obj)

    # ---------------------------------------------------------------- pods
    def list_pods_on_node(self, node: str) -> tuple[list[Pod], str]:
        body = self._json("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node}"})
        pods = [Pod.from_json(item) for item in body.get("items") or []]
        return pods, str((body.get("metadata") or {}).get("resourceVersion", ""))

    def watch_pods_on_node(
        self, node: str, *, resource_version: str, timeout: float
    ) -> Iterator[tuple[WatchEvent, Pod]]:
        query = {"fieldSelector": f"spec.nodeName={node}", "resourceVersion": resource_version}
        for kind, obj in self._watch("/api/v1/pods", query, timeout):
            yield kind, Pod.from_json(obj)

    def _watch(
        self, path: str, query: Mapping[str, str], timeout: float
    ) -> Iterator[tuple[WatchEvent, Mapping[str, Any]]]:
        """Stream watch events until ``timeout``; ends quietly on expiry, a closed stream or 410 Gone."""
        seconds = max(1, int(timeout + 0.999))
        params = {**query, "watch": "true", "allowWatchBookmarks": "false", "timeoutSeconds": str(seconds)}
        response = self._request("GET", path, query=params, timeout=(self.timeout, seconds + 5), stream=True)
        raw = response.response
        try:
            if response.status != 200:
                _raise_for(response.status, raw.read(), f"watch {path}")
            buffer = b""
            for chunk in raw.stream(65536, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind = event.get("type")
                    if kind == "ERROR":  # e.g. 410 Gone: the caller relists
                        return
                    if kind in WatchEvent.__members__:
                        yield WatchEvent(kind), event.get("object") or {}
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiUnavailable(f"watch {path}: {type(exc).__name__}") from None
        finally:
            raw.release_conn()

    def evict(self, pod: Pod, *, dry_run: bool = False) -> EvictionResult:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            "deleteOptions": {"preconditions": {"uid": pod.uid}, **({"dryRun": ["All"]} if dry_run else {})},
        }
        try:
            response = self._request("POST", f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/eviction", body=body)
        except ApiUnavailable as exc:
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(exc))
        status, data = response.status, response.data
        if 200 <= status < 300:
            return EvictionResult(outcome=EvictionOutcome.EVICTED)
        message = _message(data)
        if status in (404, 409):
            return EvictionResult(outcome=EvictionOutcome.GONE, message=message)
        if status == 429:
            return EvictionResult(outcome=EvictionOutcome.BLOCKED, message=message, pdb=_blocking_pdb(data))
        if status == 500 and "more than one" in message.lower():
            return EvictionResult(outcome=EvictionOutcome.MULTIPLE_PDBS, message=message)
        if status in (401, 403):
            raise ApiForbidden(f"evict {pod.key}: {status} {message}")
        if status >= 500:
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=f"{status} {message}")
        raise ApiRejected(f"evict {pod.key}: {status} {message}")

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

    def delete_job(self, job: Job, *, dry_run: bool = False) -> bool:
        """Delete with its pods (Background propagation) and a UID precondition; False when already gone."""
        options: dict[str, Any] = {"propagationPolicy": "Background", "preconditions": {"uid": job.uid}}
        if dry_run:
            options["dryRun"] = ["All"]
        return self._delete(f"/apis/batch/v1/namespaces/{job.namespace}/jobs/{job.name}", options)

    def delete_pod(self, pod: Pod, *, grace_seconds: int | None = None, dry_run: bool = False) -> bool:
        """Delete with a UID precondition; False when that pod is already gone."""
        options: dict[str, Any] = {"preconditions": {"uid": pod.uid}}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if dry_run:
            options["dryRun"] = ["All"]
        return self._delete(f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}", options)

    def _delete(self, path: str, options: Mapping[str, Any]) -> bool:
        """A DELETE whose answer body is not needed: True when accepted, False when already gone
        (404, or 409 for a UID precondition that no longer matches)."""
        response = self._request("DELETE", path, body=dict(options))
        if 200 <= response.status < 300:
            return True
        if response.status in (404, 409):
            return False
        _raise_for(response.status, response.data, f"DELETE {path}")


def _scoped(group_version: str, namespace: str | None, resource: str) -> str:
    return f"{group_version}/namespaces/{namespace}/{resource}" if namespace else f"{group_version}/{resource}"


def _continue(body: Mapping[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("continue") or "")


def _blocking_pdb(body: bytes | None) -> str | None:
    """The PDB name from a 429 eviction answer ("The disruption budget NAME needs ...")."""
    try:
        causes = (json.loads(body or b"{}").get("details") or {}).get("causes") or []
    except ValueError:
        return None
    for cause in causes:
        text = str(cause.get("message", ""))
        prefix = "The disruption budget "
        if text.startswith(prefix):
            return text[len(prefix) :].split(" ", 1)[0]
    return None
