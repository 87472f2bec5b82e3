"""Session-wide real control plane, kubelet and external-attacher stand-ins, fake metadata server and
fake Compute Engine API; per-test namespace."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from functions.gateways.kube.client import ClusterClient
from tests.controlplane.attacher import AttacherStandIn
from tests.controlplane.clients import api_client, apply_rbac, drainer_client
from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import DEFAULT_PROJECT, ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer
from tests.controlplane.pubsub import PubsubFake
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import KINDS
from tests.support.fakes import FakeLoggingApi
from tests.support.server import FunctionServer, cluster_entry

_startup: dict[str, float] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Anything that asks for Google credentials in this process gets a closed loopback port,
    never the real metadata address; tests point google-auth at the fake server explicitly."""
    for name in ("GCE_METADATA_HOST", "GCE_METADATA_IP"):
        os.environ.setdefault(name, "127.0.0.1:9")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane().start()
    if plane.started_seconds is not None:
        _startup["control plane warm start-up (s)"] = plane.started_seconds
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def admin_api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    api = api_client(control_plane, control_plane.admin)
    yield api
    api.close()


@pytest.fixture(scope="session")
def kubelet(control_plane: ControlPlane) -> Iterator[KubeletStandIn]:
    api = api_client(control_plane, control_plane.admin)
    standin = KubeletStandIn(api, deletion_delay=0.2, heartbeat_interval=2.0).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def attacher(control_plane: ControlPlane) -> Iterator[AttacherStandIn]:
    """The external-attacher of pd.csi.storage.gke.io: attaches and detaches VolumeAttachments."""
    api = api_client(control_plane, control_plane.admin)
    standin = AttacherStandIn(api).start()
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def compute_api() -> Iterator[FakeComputeApi]:
    """The loopback Compute Engine API (instances.get) of the control plane's project; ``url`` is its
    endpoint root. Tests add the VMs of their nodes (``compute_api.add_node(node)``) and set their state."""
    fake = FakeComputeApi(project=DEFAULT_PROJECT)
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def metadata_server(control_plane: ControlPlane) -> Iterator[FakeMetadataServer]:
    server = FakeMetadataServer(
        project=control_plane.project,
        email=control_plane.drainer_user,
        tokens=[ident.token for ident in control_plane.drainer_identities],
    ).start()
    yield server
    server.stop()


@pytest.fixture
def logging_api() -> Iterator[FakeLoggingApi]:
    """A loopback Logging API (entries:write) that keeps what the functions write to the audit log."""
    fake = FakeLoggingApi()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def pubsub() -> Iterator[PubsubFake]:
    """The loopback Pub/Sub server (pstest), built on first use."""
    fake = PubsubFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def namespace(admin_api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(admin_api)
    name = f"t-{secrets.token_hex(4)}"
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    with contextlib.suppress(ApiException):
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def cluster(
    admin_api: client.ApiClient,
    kubelet: KubeletStandIn,
    attacher: AttacherStandIn,
    compute_api: FakeComputeApi,
    control_plane: ControlPlane,
    namespace: str,
) -> Iterator[TestCluster]:
    helper = TestCluster(
        api=admin_api, kubelet=kubelet, project=control_plane.project, namespace=namespace, compute=compute_api
    )
    yield helper
    helper.cleanup()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def drainer_rbac(control_plane: ControlPlane, admin_api: client.ApiClient) -> list[dict[str, Any]]:
    """Apply the repository's RBAC manifest, bound to the drainer user."""
    return apply_rbac(admin_api, control_plane.drainer_user)


@pytest.fixture(scope="session")
def server_factory(
    control_plane: ControlPlane,
    metadata_server: FakeMetadataServer,
    drainer_rbac: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
    kubelet: KubeletStandIn,
    compute_api: FakeComputeApi,
) -> Iterator[Callable[..., FunctionServer]]:
    """Start main.py targets under functions-framework as the drainer user; all stopped at the end."""
    servers: list[FunctionServer] = []

    def start(
        target: str = "on_node_event",
        signature: str = "cloudevent",
        *,
        clusters: list[dict[str, Any]] | None = None,
        **env: str,
    ) -> FunctionServer:
        settings = {
            "DRAINER_CLUSTERS": json.dumps(clusters if clusters is not None else [cluster_entry(control_plane)]),
            **metadata_server.environ(),
            "DRAINER_COMPUTE_API_ENDPOINT": compute_api.url,
            **{f"DRAINER_DEADLINE_{k.upper()}": "6" for k in KINDS},
            **env,
        }
        log = tmp_path_factory.mktemp("function") / f"{target}.log"
        server = FunctionServer(target=target, signature=signature, env=settings, log_path=log)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def drainer(server_factory: Callable[..., FunctionServer]) -> FunctionServer:
    """The default event function: short deadlines, real RBAC, google-auth via the metadata server."""
    return server_factory(DRAINER_DEADLINE_DELETE="3")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for label, seconds in _startup.items():
        terminalreporter.write_line(f"{label}: {seconds:.2f}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a test not done: fail the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def kube(control_plane: ControlPlane, drainer_rbac: object, tmp_path: Path) -> Iterator[ClusterClient]:
    """The function's own Kubernetes client, in-process, as the drainer user (token file auth)."""
    client = drainer_client(control_plane, control_plane.drainer_identities[0], tmp_path)
    yield client
    client.close()
