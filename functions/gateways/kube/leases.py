"""Leases (coordination.k8s.io/v1): the schedule's single-flight Lease, read, created and
replaced under its resourceVersion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.decisions.lease import LeaseRecord
from functions.decisions.names import FIELD_MANAGER
from functions.gateways.kube.api import ApiBase, seg
from functions.gateways.kube.errors import NotFound


def lease_path(namespace: str, name: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{seg(namespace)}/leases/{seg(name)}"


class LeaseApi(ApiBase):
    """The Lease of the schedule's single flight."""

    def get_lease(self, *, namespace: str, name: str) -> LeaseRecord | None:
        """The ``coordination.k8s.io/v1`` Lease; None when it does not exist."""
        try:
            return LeaseRecord.from_json(self._json("GET", lease_path(namespace, name)))
        except NotFound:
            return None

    def create_lease(self, *, namespace: str, body: Mapping[str, Any]) -> LeaseRecord:
        """Create a Lease; Conflict (409 AlreadyExists) when someone else created it first."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/{seg(namespace)}/leases"
        return LeaseRecord.from_json(self._json("POST", path, body=dict(body), query={"fieldManager": FIELD_MANAGER}))

    def update_lease(self, *, namespace: str, name: str, body: Mapping[str, Any]) -> LeaseRecord:
        """Replace a Lease (PUT) guarded by the resourceVersion in ``body``: Conflict when it changed
        since it was read, NotFound when it is gone."""
        return LeaseRecord.from_json(
            self._json("PUT", lease_path(namespace, name), body=dict(body), query={"fieldManager": FIELD_MANAGER})
        )
