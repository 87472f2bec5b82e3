"""One more control plane with its own stand-ins and the repository's RBAC, beside the session's:
for tests that stop an API server (without disturbing the other tests) or that need two clusters."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.clients import api_client, apply_rbac
from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import ControlPlane, Identity
from tests.controlplane.kubelet import KubeletStandIn


@dataclass
class PlaneStack:
    """A started ControlPlane, an admin client, a kubelet stand-in and the drainer's RBAC.

    ``drainer_identities``: the tokens the plane accepts for the drainer user; pass the session plane's
    so that one Google identity (the fake metadata server's tokens) is known to both clusters, as
    one service account is in GKE."""

    drainer_identities: tuple[Identity, ...] | None = None
    plane: ControlPlane = field(init=False)
    admin: client.ApiClient = field(init=False)
    kubelet: KubeletStandIn = field(init=False)
    rbac: list[dict[str, Any]] = field(init=False)

    def start(self) -> PlaneStack:
        self.plane = ControlPlane()
        if self.drainer_identities is not None:
            self.plane.drainer_identities = self.drainer_identities
        self.plane.start()
        self.admin = api_client(self.plane, self.plane.admin)
        self.kubelet = KubeletStandIn(
            api_client(self.plane, self.plane.admin), deletion_delay=0.2, heartbeat_interval=2.0
        ).start()
        self.rbac = apply_rbac(self.admin, self.plane.drainer_user)
        return self

    def stop(self) -> None:
        self.kubelet.stop()
        self.admin.close()
        self.plane.stop()

    @contextlib.contextmanager
    def cluster(self, *, compute: Any = None) -> Iterator[TestCluster]:
        """A TestCluster in a fresh namespace of this plane; nodes and namespace removed after."""
        core = client.CoreV1Api(self.admin)
        name = f"t-{secrets.token_hex(4)}"
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        helper = TestCluster(
            api=self.admin, kubelet=self.kubelet, project=self.plane.project, namespace=name, compute=compute
        )
        try:
            yield helper
        finally:
            if self.plane.apiserver_running:
                helper.cleanup()
                with contextlib.suppress(ApiException):
                    core.delete_namespace(name, propagation_policy="Background")
