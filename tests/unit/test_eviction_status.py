"""How the Kubernetes gateway reads an eviction's answer: from the API server's Status (code, reason,
causes), never from its message wording alone. A loopback server answers as kube-apiserver does."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from functions.decisions.model import Pod
from functions.decisions.settings import AuthMode, ClusterConfig
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ApiForbidden
from functions.gateways.kube.evictions import EvictionOutcome
from tests.support.fakes import JsonApi


def status(code: int, reason: str, message: str, causes: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code}
    body |= {"reason": reason, "message": message}
    if causes is not None:
        body["details"] = {"causes": causes}
    return body


ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "namespace-terminating": (
        403,
        status(
            403,
            "Forbidden",
            'pods "web-0" is forbidden: unable to create new content in namespace shop because it is being terminated',
            [{"reason": "NamespaceTerminating", "message": "namespace shop is being terminated", "field": ""}],
        ),
    ),
    "rbac-denied": (
        403,
        status(403, "Forbidden", 'pods "web-0" is forbidden: User "x" cannot create resource "pods/eviction"'),
    ),
    "pdb": (
        429,
        status(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            [{"reason": "DisruptionBudget", "message": "The disruption budget web-pdb needs 2 healthy pods and has 2"}],
        ),
    ),
    "pdb-processing": (
        429,
        status(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
            [
                {
                    "reason": "DisruptionBudget",
                    "message": "The disruption budget web-pdb is still being processed by the server.",
                }
            ],
        ),
    ),
    "two-pdbs": (
        500,
        status(500, "InternalError", "This pod has more than one PodDisruptionBudget, which the eviction subresource"),
    ),
}


class FakeApiServer(JsonApi):
    def __init__(self) -> None:
        self.answer = ANSWERS["pdb"]
        self.paths: list[str] = []
        super().__init__(self._route)

    def _route(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        self.paths.append(f"{method} {path}")
        return self.answer


@pytest.fixture(scope="module")
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    yield fake
    fake.stop()


@pytest.fixture
def kube(server: FakeApiServer, tmp_path: Path) -> Iterator[ClusterClient]:
    token = tmp_path / "token"
    token.write_text("t")
    cluster = ClusterConfig(
        name="c",
        project="acme-prod",
        location="europe-west4",
        auth=AuthMode.TOKEN_FILE,
        endpoint=server.url,
        token_file=str(token),
    )
    client = ClusterClient(cluster, timeout=5)
    yield client
    client.close()


def pod() -> Pod:
    return Pod.from_json({"metadata": {"name": "web-0", "namespace": "shop", "uid": "u1", "resourceVersion": "7"}})


@pytest.mark.parametrize(
    ("answer", "outcome", "pdb", "exhausted"),
    [
        pytest.param(
            "namespace-terminating", EvictionOutcome.NAMESPACE_TERMINATING, None, False, id="namespace-terminating"
        ),
        # a budget with no disruption left: waited for (its status changes when a replacement is ready)
        pytest.param("pdb", EvictionOutcome.BLOCKED, "web-pdb", True, id="pdb-exhausted-from-the-cause"),
        # a budget the server is still processing: the same 429 and cause type, retried soon
        pytest.param("pdb-processing", EvictionOutcome.BLOCKED, "web-pdb", False, id="pdb-still-processed"),
        pytest.param("two-pdbs", EvictionOutcome.MULTIPLE_PDBS, None, False, id="two-pdbs"),
    ],
)
def test_eviction_outcomes_come_from_the_status(
    server: FakeApiServer, kube: ClusterClient, answer: str, outcome: EvictionOutcome, pdb: str | None, exhausted: bool
) -> None:
    server.answer = ANSWERS[answer]
    result = kube.evict(pod())
    assert result.outcome is outcome
    assert result.pdb == pdb
    assert result.exhausted is exhausted
    assert result.status is not None
    assert result.status.code == ANSWERS[answer][0]
    assert server.paths[-1] == "POST /api/v1/namespaces/shop/pods/web-0/eviction"


def test_a_denied_eviction_keeps_the_status_and_is_not_a_namespace_wait(
    server: FakeApiServer, kube: ClusterClient
) -> None:
    server.answer = ANSWERS["rbac-denied"]
    with pytest.raises(ApiForbidden) as caught:
        kube.evict(pod())
    assert caught.value.status.code == 403
    assert caught.value.status.reason == "Forbidden"
    assert not caught.value.status.has_cause("NamespaceTerminating")
    assert caught.value.request == "POST /api/v1/namespaces/shop/pods/web-0/eviction"
