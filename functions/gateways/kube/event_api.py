"""Kubernetes Events (events.k8s.io/v1): created, and patched on a repeat. What they say and when
they are written is :mod:`functions.gateways.kube.events` (the recorder)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.decisions.names import FIELD_MANAGER
from functions.gateways.kube.api import ApiBase, seg


class EventApi(ApiBase):
    """Kubernetes Events written by the recorder."""

    def create_event(self, *, namespace: str, body: Mapping[str, Any], timeout: float | None = None) -> None:
        """Create an ``events.k8s.io/v1`` Event (raises Conflict when that name exists)."""
        path = f"/apis/events.k8s.io/v1/namespaces/{seg(namespace)}/events"
        self._json("POST", path, body=dict(body), query={"fieldManager": FIELD_MANAGER}, timeout=timeout)

    def patch_event(self, *, namespace: str, name: str, patch: Mapping[str, Any], timeout: float | None = None) -> None:
        """JSON merge patch of an Event (its ``series`` on a repeat, as client-go does); NotFound when gone."""
        self._json(
            "PATCH",
            f"/apis/events.k8s.io/v1/namespaces/{seg(namespace)}/events/{seg(name)}",
            body=dict(patch),
            content_type="application/merge-patch+json",
            query={"fieldManager": FIELD_MANAGER},
            timeout=timeout,
        )
