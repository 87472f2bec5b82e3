"""Kubernetes clients for the harness's identities, and the repository's RBAC manifest applied."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from functions.decisions.settings import AuthMode, ClusterConfig
from functions.gateways.kube.client import ClusterClient
from tests.controlplane.harness import ControlPlane, Identity

RBAC_MANIFEST = Path(__file__).resolve().parents[2] / "terraform" / "rbac" / "drainer-rbac.yaml"


def api_client(plane: ControlPlane, identity: Identity | None, *, pool_size: int = 32) -> client.ApiClient:
    """An ApiClient for ``identity`` (anonymous when None)."""
    config = client.Configuration()
    config.host = plane.url
    config.ssl_ca_cert = str(plane.ca_file)
    config.connection_pool_maxsize = pool_size
    if identity is not None:
        config.api_key = {"authorization": identity.token}
        config.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(config)


def drainer_client(plane: ControlPlane, identity: Identity, directory: Path, name: str = "test") -> ClusterClient:
    """The function's own Kubernetes client (in-process) as ``identity``, its token in a token file."""
    token = directory / f"token-{name}"
    token.write_text(identity.token)
    config = ClusterConfig(
        name=name,
        project=plane.project,
        location="europe-west4",
        auth=AuthMode.TOKEN_FILE,
        endpoint=plane.url,
        ca_file=str(plane.ca_file),
        token_file=str(token),
    )
    return ClusterClient(config, timeout=10)


def rbac_documents(email: str) -> list[dict[str, Any]]:
    """The RBAC manifest as Terraform renders it (templatefile) for ``email``."""
    text = string.Template(RBAC_MANIFEST.read_text()).substitute(runtime_service_account_email=email)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def apply_rbac(api: client.ApiClient, email: str) -> list[dict[str, Any]]:
    """Create the manifest's ClusterRole and ClusterRoleBinding, and its namespaced Role and
    RoleBinding (the schedule Lease), bound to ``email``."""
    rbac = client.RbacAuthorizationV1Api(api)
    docs = rbac_documents(email)
    for doc in docs:
        if doc["kind"] == "ClusterRole":
            rbac.create_cluster_role(doc)
        elif doc["kind"] == "ClusterRoleBinding":
            rbac.create_cluster_role_binding(doc)
        elif doc["kind"] == "Role":
            rbac.create_namespaced_role(doc["metadata"]["namespace"], doc)
        elif doc["kind"] == "RoleBinding":
            rbac.create_namespaced_role_binding(doc["metadata"]["namespace"], doc)
        else:
            raise ValueError(f"unexpected kind in the RBAC manifest: {doc['kind']}")
    return docs
