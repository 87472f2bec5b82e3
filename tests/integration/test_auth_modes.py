"""Every way the function authenticates to a cluster, through the real HTTP server and API server."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import ControlPlane
from tests.controlplane.metadata import FakeMetadataServer
from tests.support.deliveries import delivery, log_entry
from tests.support.fakes import JsonApi
from tests.support.server import FunctionServer, cluster_entry


def _drain_one(server: FunctionServer, cluster: TestCluster) -> dict[str, Any]:
    node = cluster.add_node()
    cluster.bare_pod(node.name)
    cluster.wait_running(1, node=node.name)
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    body, headers = delivery("binary", entry)
    response = server.post(body, headers)
    assert response.status_code == 200, response.text
    assert cluster.read_node(node.name).spec.unschedulable is True
    return server.wait_audit(action="drain.completed", event_id=entry["operation"]["id"])


def test_static_token_file_with_rotation(
    server_factory: Callable[..., FunctionServer], control_plane: ControlPlane, cluster: TestCluster, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(control_plane.drainer_identities[2].token + "\n")
    entry = cluster_entry(control_plane, name="classic", auth="token_file", token_file=str(token_file))
    server = server_factory(clusters=[entry])
    assert _drain_one(server, cluster)["cluster"] == "classic"
    before = token_file.stat().st_mtime_ns
    token_file.write_text(control_plane.drainer_identities[3].token)  # rotated, e.g. by Secret Manager
    os.utime(token_file, ns=(before, before + 1_000_000_000))  # a new mtime, whatever the clock's resolution
    assert _drain_one(server, cluster)["counts"] == {"evicted": 1}
    token_file.write_text("revoked-token")
    node = cluster.add_node()
    body, headers = delivery("binary", log_entry("preempted", instance=node.name))
    assert server.post(body, headers).status_code == 500  # 401 from the API server: not acknowledged
    assert not cluster.read_node(node.name).spec.unschedulable
    output = "\n".join(server.lines())
    assert control_plane.drainer_identities[2].token not in output
    assert control_plane.drainer_identities[3].token not in output


def test_kubeconfig_for_local_runs(
    server_factory: Callable[..., FunctionServer], control_plane: ControlPlane, cluster: TestCluster, tmp_path: Path
) -> None:
    kubeconfig = control_plane.write_kubeconfig(control_plane.drainer_identities[0], tmp_path / "kubeconfig")
    entry = {
        "name": "local",
        "project": control_plane.project,
        "location": "europe-west4",
        "auth": "kubeconfig",
        "kubeconfig": str(kubeconfig),
    }
    server = server_factory(clusters=[entry])
    assert _drain_one(server, cluster)["cluster"] == "local"


class FakeContainerApi(JsonApi):
    """projects.locations.clusters.get of the Container API, on loopback."""

    def __init__(self, plane: ControlPlane, valid_tokens: set[str]) -> None:
        self.calls: list[tuple[str, str]] = []
        self.plane = plane
        self.valid_tokens = valid_tokens
        super().__init__(self._route)

    def _route(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        auth = headers.get("Authorization", "")
        self.calls.append((path, auth))
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            message = "Request had invalid authentication credentials."
            return 401, {"error": {"code": 401, "message": message, "status": "UNAUTHENTICATED"}}
        if method == "GET" and path == f"/v1/projects/{self.plane.project}/locations/europe-west4/clusters/discovered":
            ca = base64.b64encode(self.plane.ca_file.read_bytes()).decode()
            endpoint = self.plane.url.removeprefix("https://")
            return 200, {"name": "discovered", "endpoint": endpoint, "masterAuth": {"clusterCaCertificate": ca}}
        return 404, {"error": {"code": 404, "message": f"Not found: {path}.", "status": "NOT_FOUND"}}


@pytest.fixture
def container_api(control_plane: ControlPlane) -> Iterator[FakeContainerApi]:
    fake = FakeContainerApi(control_plane, {i.token for i in control_plane.drainer_identities})
    yield fake
    fake.stop()


def test_endpoint_and_ca_from_the_container_api(
    server_factory: Callable[..., FunctionServer],
    control_plane: ControlPlane,
    cluster: TestCluster,
    container_api: FakeContainerApi,
) -> None:
    entry = {"name": "discovered", "project": control_plane.project, "location": "europe-west4"}
    server = server_factory(clusters=[entry], DRAINER_CONTAINER_API_ENDPOINT=container_api.url)
    assert _drain_one(server, cluster)["cluster"] == "discovered"
    assert _drain_one(server, cluster)["cluster"] == "discovered"
    paths = [path for path, _ in container_api.calls]
    assert paths == [
        f"/v1/projects/{control_plane.project}/locations/europe-west4/clusters/discovered"
    ]  # once per instance
    assert container_api.calls[0][1].startswith("Bearer ya29.test-")


def test_cluster_name_resource_form_uses_discovery(
    server_factory: Callable[..., FunctionServer],
    control_plane: ControlPlane,
    cluster: TestCluster,
    container_api: FakeContainerApi,
) -> None:
    server = server_factory(
        DRAINER_CLUSTERS=f"projects/{control_plane.project}/locations/europe-west4/clusters/discovered",
        DRAINER_CONTAINER_API_ENDPOINT=container_api.url,
    )
    assert _drain_one(server, cluster)["cluster"] == "discovered"


def test_a_cluster_the_container_api_refuses_or_does_not_know_is_retried_and_audited(
    server_factory: Callable[..., FunctionServer],
    control_plane: ControlPlane,
    cluster: TestCluster,
    container_api: FakeContainerApi,
) -> None:
    container_api.valid_tokens.clear()  # every token refused: 401, as for an identity without the permission
    unknown = {"name": "unknown", "project": control_plane.project, "location": "europe-west4"}
    server = server_factory(
        clusters=[unknown, {**unknown, "name": "denied"}], DRAINER_CONTAINER_API_ENDPOINT=container_api.url
    )
    node = cluster.add_node()
    entry = log_entry("preempted", instance=node.name, instance_id=node.instance_id)
    body, headers = delivery("binary", entry)
    assert server.post(body, headers).status_code == 500  # not acknowledged: Pub/Sub redelivers
    denied = server.wait_audit(action="cluster.unreachable", cluster="denied")
    assert denied["severity"] == "ERROR"  # a deployment fault, with what to fix and Google's answer
    assert "container.clusters.get" in denied["fix"]
    assert denied["status"]["code"] == 401
    assert denied["status"]["status"] == "UNAUTHENTICATED"
    container_api.valid_tokens.update(i.token for i in control_plane.drainer_identities)
    server = server_factory(clusters=[unknown], DRAINER_CONTAINER_API_ENDPOINT=container_api.url)
    assert server.post(body, headers).status_code == 500
    gone = server.wait_audit(action="cluster.unreachable", cluster="unknown")
    assert gone["severity"] == "WARNING"
    assert "does not exist (Container API 404)" in gone["error"]
    assert not cluster.read_node(node.name).spec.unschedulable


def test_google_token_is_refreshed_before_it_expires(
    server_factory: Callable[..., FunctionServer], control_plane: ControlPlane, cluster: TestCluster
) -> None:
    # Tokens that live 240 s fall inside the 5-minute refresh margin at once: every API call refreshes.
    short = FakeMetadataServer(
        project=control_plane.project,
        email=control_plane.drainer_user,
        tokens=[i.token for i in control_plane.drainer_identities],
        expires_in=240,
    ).start()
    try:
        server = server_factory(**short.environ())
        _drain_one(server, cluster)
        after_first = short.token_requests
        assert after_first >= 1
        _drain_one(server, cluster)
        assert short.token_requests > after_first
    finally:
        short.stop()


def test_long_lived_token_is_reused(
    server_factory: Callable[..., FunctionServer], control_plane: ControlPlane, cluster: TestCluster
) -> None:
    steady = FakeMetadataServer(
        project=control_plane.project,
        email=control_plane.drainer_user,
        tokens=[i.token for i in control_plane.drainer_identities],
    ).start()
    try:
        server = server_factory(**steady.environ())
        _drain_one(server, cluster)
        _drain_one(server, cluster)
        assert steady.token_requests == 1
    finally:
        steady.stop()
