"""The only place that talks to the Container API: ``projects.locations.clusters.get`` of a GKE
cluster, for its endpoint and CA (permission ``container.clusters.get``), through
:func:`~functions.gateways.google_api.get_json`; failures raise its
:class:`~functions.gateways.google_api.GoogleApiError` family."""

from __future__ import annotations

from dataclasses import dataclass

from functions.gateways.google_api import get_json

PERMISSION = "container.clusters.get on the cluster (for example roles/container.clusterViewer)"


@dataclass(frozen=True, kw_only=True)
class ClusterAccess:
    """What the Container API says about reaching a cluster's API server."""

    endpoint: str  # a host or IP address without scheme; "" while the cluster has none
    ca_certificate: str = ""  # ``masterAuth.clusterCaCertificate``: base64-encoded PEM


def get_cluster_access(resource_name: str, *, base_url: str, timeout: float) -> ClusterAccess:
    """``resource_name`` is ``projects/P/locations/L/clusters/N``; ``base_url`` is
    settings.container_api (https://, or http:// on loopback)."""
    body = get_json(f"{base_url.rstrip('/')}/v1/{resource_name}", timeout=timeout, permission=PERMISSION)
    master_auth = body.get("masterAuth")
    ca = master_auth.get("clusterCaCertificate") if isinstance(master_auth, dict) else None
    endpoint = body.get("endpoint")
    return ClusterAccess(
        endpoint=endpoint if isinstance(endpoint, str) else "", ca_certificate=ca if isinstance(ca, str) else ""
    )
