"""How the function reaches one cluster's API server: endpoint, CA and credentials.

- ``google``: the function's Google identity (short-lived access token, refreshed early); the
  endpoint and CA come from the configuration or from the Container API (``clusters.get``, see
  :mod:`functions.gateways.container`).
- ``token_file``: a static bearer token in a file, re-read when the file changes (rotation).
- ``kubeconfig``: a kubeconfig file (local runs).
The CA stays in memory: no temporary files.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes.client import rest
from kubernetes.client.configuration import Configuration

from functions.decisions.settings import AuthMode, ClusterConfig
from functions.errors import TransientError
from functions.gateways import container
from functions.gateways.google_api import GoogleNotFound
from functions.gateways.google_identity import GoogleIdentity

USER_AGENT = "gke-node-drainer/0.1"


class ClusterSetupError(TransientError):
    """The cluster's client cannot be built from the configuration (bad CA, unreadable token file,
    a cluster the Container API does not know). A deployment fault, handled like an unreachable
    cluster: retried, and the client is not rebuilt on every event (see Runtime.client)."""


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
                raise ClusterSetupError(f"cannot read the token file {self.path}: {exc.strerror}") from None
            if not self._token:
                raise ClusterSetupError(f"the token file {self.path} is empty")
            return self._token


def _pem(ca_data: str) -> str:
    text = ca_data.strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    try:
        decoded = base64.b64decode(text, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise ClusterSetupError("the cluster CA is neither PEM nor base64-encoded PEM") from None
    if not decoded.lstrip().startswith("-----BEGIN"):
        raise ClusterSetupError("the cluster CA does not decode to a PEM certificate")
    return decoded


def discover_endpoint(cluster: ClusterConfig, *, container_api: str, timeout: float) -> tuple[str, str]:
    """The URL and CA (PEM) of a GKE cluster's API server, from the Container API (clusters.get).
    Google's refusals and failures raise as they are (the GoogleApiError family); a cluster the
    Container API does not know, or one without an endpoint or CA yet, cannot be set up."""
    try:
        access = container.get_cluster_access(cluster.resource_name, base_url=container_api, timeout=timeout)
    except GoogleNotFound:
        raise ClusterSetupError(f"cluster {cluster.resource_name} does not exist (Container API 404)") from None
    if not access.endpoint or not access.ca_certificate:
        raise ClusterSetupError(f"Container API returned no endpoint or CA for {cluster.resource_name}")
    return f"https://{access.endpoint}", _pem(access.ca_certificate)


def _query_value(value: Any) -> str:
    """A query parameter as the kubernetes ApiClient encodes it."""
    if isinstance(value, bool):
        value = str(value).lower()
    return quote(str(value))


class Transport:
    """The kubernetes client's REST layer (its urllib3 pool, TLS, proxy and retry settings from a
    ``Configuration``) with the Configuration's credentials (refreshed through its hook), for JSON
    bodies. The ``ApiClient`` above it exists to (de)serialize the generated models: it imports
    pydantic and dateutil, which the drainer never needs, so a cold start does without it."""

    def __init__(self, configuration: Configuration) -> None:
        self.configuration = configuration
        self.rest = rest.RESTClientObject(configuration)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]],
        headers: dict[str, str],
        body: Any,
        timeout: float | tuple[float, float],
    ) -> rest.RESTResponse:
        sent = {"User-Agent": USER_AGENT, **headers}
        settings: dict[str, Any] = dict(self.configuration.auth_settings())
        for setting in settings.values():
            if setting["in"] == "header" and setting["value"]:
                sent[setting["key"]] = setting["value"]
        url = self.configuration.host + path
        if query:
            url += "?" + "&".join(f"{key}={_query_value(value)}" for key, value in query)
        response: rest.RESTResponse = self.rest.request(method, url, headers=sent, body=body, _request_timeout=timeout)
        return response

    def close(self) -> None:
        self.rest.pool_manager.clear()


def connect(cluster: ClusterConfig, *, timeout: float, container_api: str, pool_size: int) -> Transport:
    """The kubernetes client's transport for ``cluster``, authenticated as its auth mode says."""
    if cluster.auth is AuthMode.KUBECONFIG:
        from kubernetes import config as k8s_config  # heavy (oauthlib, YAML): only for a kubeconfig

        loaded = Configuration()
        try:
            k8s_config.load_kube_config(
                config_file=cluster.kubeconfig, context=cluster.context, client_configuration=loaded
            )
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            raise ClusterSetupError(f"cannot use the kubeconfig {cluster.kubeconfig}: {exc}") from None
        loaded.connection_pool_maxsize = pool_size
        return Transport(loaded)
    configuration = Configuration()
    if cluster.endpoint:
        configuration.host = cluster.endpoint
        if cluster.ca_data:
            configuration.ca_cert_data = _pem(cluster.ca_data)
        elif cluster.ca_file:
            configuration.ssl_ca_cert = cluster.ca_file
        # else: GKE's DNS-based endpoint, verified against the public roots (certifi)
    else:
        configuration.host, configuration.ca_cert_data = discover_endpoint(
            cluster, container_api=container_api, timeout=timeout
        )
    configuration.connection_pool_maxsize = pool_size
    # One quick retry of a refused connection; reads are never replayed by urllib3.
    configuration.retries = urllib3.Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.1)
    source: Callable[[], str] = GoogleIdentity.token
    if cluster.auth is AuthMode.TOKEN_FILE and cluster.token_file:
        source = _TokenFile(cluster.token_file).token
        source()  # an unreadable or empty token file fails the set-up, not every request

    def refresh(conf: Configuration) -> None:
        conf.api_key["authorization"] = source()

    configuration.api_key = {"authorization": ""}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]
    return Transport(configuration)
