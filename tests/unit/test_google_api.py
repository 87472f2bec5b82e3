"""One Google REST helper, one error family: how every answer of a Google API (Container API,
Compute Engine) is read, against a loopback server that answers as Google does."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import requests

from functions.decisions.settings import ClusterConfig
from functions.errors import Denied, PermanentError, TransientError
from functions.gateways import container, google_api
from functions.gateways.compute import ComputeClient
from functions.gateways.google_api import GoogleDenied, GoogleNotFound, GoogleUnavailable, get_json
from functions.gateways.google_identity import GoogleIdentity, TokenUnavailable
from functions.gateways.kube.connection import ClusterSetupError, discover_endpoint
from tests.support.fakes import JsonApi

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CA_BASE64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="


def google_error(code: int, status: str, message: str, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    return {"error": error}


class FakeGoogleApi(JsonApi):
    def __init__(self) -> None:
        self.answer: tuple[int, Any] = (200, {})
        self.paths: list[str] = []
        super().__init__(self._route)

    def _route(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        self.paths.append(path)
        return self.answer


@pytest.fixture(scope="module")
def api() -> Iterator[FakeGoogleApi]:
    fake = FakeGoogleApi()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def plain_session(monkeypatch: pytest.MonkeyPatch, api: FakeGoogleApi) -> None:
    """No credentials here: the helper's session is a plain requests session."""
    session = requests.Session()
    monkeypatch.setattr(GoogleIdentity, "session", classmethod(lambda cls: session))
    api.answer = (200, {})


PERMISSION = "example.things.get"


def test_a_success_is_the_json_object(api: FakeGoogleApi) -> None:
    api.answer = (200, {"name": "x"})
    assert get_json(f"{api.url}/v1/things/x", timeout=2, permission=PERMISSION) == {"name": "x"}


@pytest.mark.parametrize(
    ("answer", "kind", "code", "status"),
    [
        pytest.param(
            (403, google_error(403, "PERMISSION_DENIED", "Required 'example.things.get'", "forbidden")),
            GoogleDenied,
            403,
            "PERMISSION_DENIED",
            id="403",
        ),
        pytest.param(
            (401, google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")),
            GoogleDenied,
            401,
            "UNAUTHENTICATED",
            id="401",
        ),
        pytest.param(
            (404, google_error(404, "", "The resource 'x' was not found", "notFound")),
            GoogleNotFound,
            404,
            "",
            id="404-notFound-reason",
        ),
        pytest.param(
            (404, google_error(404, "NOT_FOUND", "Not found: projects/p/locations/l/clusters/c.")),
            GoogleNotFound,
            404,
            "NOT_FOUND",
            id="404-NOT_FOUND-status",
        ),
        # a 404 without Google's error (a proxy, a wrong endpoint) says nothing about the resource
        pytest.param((404, "404 page not found"), GoogleUnavailable, 404, "", id="404-bare"),
        pytest.param(
            (404, {"error": {"code": 404, "message": "Not found"}}), GoogleUnavailable, 404, "", id="404-no-reason"
        ),
        pytest.param(
            (500, google_error(500, "INTERNAL", "Internal error.", "backendError")),
            GoogleUnavailable,
            500,
            "INTERNAL",
            id="500",
        ),
        pytest.param(
            (429, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "rateLimitExceeded")),
            GoogleUnavailable,
            429,
            "RESOURCE_EXHAUSTED",
            id="429",
        ),
        pytest.param(
            (400, google_error(400, "INVALID_ARGUMENT", "bad", "invalid")),
            GoogleUnavailable,
            400,
            "INVALID_ARGUMENT",
            id="400",
        ),
        pytest.param((200, "not an object"), GoogleUnavailable, 200, "", id="200-not-an-object"),
    ],
)
def test_every_other_answer_is_one_of_the_family(
    api: FakeGoogleApi, answer: tuple[int, Any], kind: type[Exception], code: int, status: str
) -> None:
    api.answer = answer
    with pytest.raises(google_api.GoogleApiError) as raised:
        get_json(f"{api.url}/v1/things/x", timeout=2, permission=PERMISSION)
    error = raised.value
    assert type(error) is kind
    assert (error.status.code, error.code, error.status.status) == (code, code, status)
    assert error.request == f"GET {api.url}/v1/things/x"
    body = answer[1]
    if isinstance(body, dict):  # Google's error is kept as it came
        assert error.status.message == body["error"]["message"]
        assert error.status.message in str(error)


def test_the_family_and_retries() -> None:
    assert issubclass(GoogleDenied, Denied)
    assert issubclass(GoogleDenied, TransientError)  # a deployment fault: retried while it is fixed
    assert issubclass(GoogleUnavailable, TransientError)
    assert not issubclass(GoogleNotFound, TransientError | PermanentError)  # the caller says what it means


def test_a_denial_names_the_permission_and_keeps_googles_answer(api: FakeGoogleApi) -> None:
    api.answer = (403, google_error(403, "PERMISSION_DENIED", "Required 'example.things.get'", "forbidden"))
    with pytest.raises(GoogleDenied) as raised:
        get_json(f"{api.url}/v1/things/x", timeout=2, permission=PERMISSION)
    assert (
        raised.value.fix
        == f"Google refused GET {api.url}/v1/things/x: grant the function's service account {PERMISSION}"
    )
    assert raised.value.answer() == {
        "code": 403,
        "status": "PERMISSION_DENIED",
        "message": "Required 'example.things.get'",
        "reasons": ["forbidden"],
    }


def test_no_answer_is_unavailable() -> None:
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/things/x"
        with pytest.raises(GoogleUnavailable) as slow:
            get_json(url, timeout=0.2, permission=PERMISSION)
    assert slow.value.code == 0
    assert "Timeout" in slow.value.status.message
    with pytest.raises(GoogleUnavailable) as refused:
        get_json(url, timeout=2, permission=PERMISSION)  # closed now: refused
    assert refused.value.code == 0
    assert str(refused.value).startswith(f"GET {url}: ")


def test_no_token_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_session(cls: type[GoogleIdentity]) -> requests.Session:
        raise TokenUnavailable("no Google credentials: DefaultCredentialsError")

    monkeypatch.setattr(GoogleIdentity, "session", classmethod(no_session))
    with pytest.raises(GoogleUnavailable, match="no Google credentials") as raised:
        get_json("https://compute.example/x", timeout=2, permission=PERMISSION)
    assert raised.value.code == 0


# ------------------------------------------------------------------------------ Compute Engine
def test_compute_reads_the_instance_and_a_missing_one_is_none(api: FakeGoogleApi) -> None:
    compute = ComputeClient(base_url=api.url + "/", timeout=2)
    api.answer = (
        200,
        {"id": "42", "name": "gke-a", "status": "TERMINATED", "lastStartTimestamp": "2026-10-02T08:00:00.000-07:00"},
    )
    vm = compute.get_instance(project="acme-prod", zone="europe-west4-b", name="gke-a")
    assert vm is not None
    assert (vm.id, vm.name, vm.status) == ("42", "gke-a", "TERMINATED")
    assert vm.last_start is not None
    assert api.paths[-1] == "/compute/v1/projects/acme-prod/zones/europe-west4-b/instances/gke-a"
    api.answer = (404, google_error(404, "", "The resource was not found", "notFound"))
    assert compute.get_instance(project="acme-prod", zone="europe-west4-b", name="gke-a") is None
    api.answer = (200, {"id": "42", "name": "gke-a"})
    with pytest.raises(GoogleUnavailable, match="the answer has no status"):
        compute.get_instance(project="acme-prod", zone="europe-west4-b", name="gke-a")
    api.answer = (403, google_error(403, "PERMISSION_DENIED", "Required 'compute.instances.get'", "forbidden"))
    with pytest.raises(GoogleDenied) as denied:
        compute.get_instance(project="acme-prod", zone="europe-west4-b", name="gke-a")
    assert "compute.instances.get" in denied.value.fix


# ------------------------------------------------------------------------------ Container API
CLUSTER = ClusterConfig(name="alpha", project="acme-prod", location="europe-west4")


def test_container_api_gives_the_endpoint_and_ca(api: FakeGoogleApi) -> None:
    api.answer = (200, {"name": "alpha", "endpoint": "10.0.0.2", "masterAuth": {"clusterCaCertificate": CA_BASE64}})
    assert discover_endpoint(CLUSTER, container_api=api.url, timeout=2) == ("https://10.0.0.2", CA)
    assert api.paths[-1] == "/v1/projects/acme-prod/locations/europe-west4/clusters/alpha"
    assert container.get_cluster_access(CLUSTER.resource_name, base_url=api.url, timeout=2).endpoint == "10.0.0.2"


@pytest.mark.parametrize(
    ("answer", "kind", "match"),
    [
        pytest.param(
            (404, google_error(404, "NOT_FOUND", "Not found", "notFound")),
            ClusterSetupError,
            "does not exist",
            id="unknown",
        ),
        pytest.param(
            (200, {"name": "alpha", "status": "PROVISIONING"}), ClusterSetupError, "no endpoint or CA", id="no-endpoint"
        ),
        pytest.param(
            (403, google_error(403, "PERMISSION_DENIED", "denied", "forbidden")), GoogleDenied, "403", id="denied"
        ),
        pytest.param(
            (503, google_error(503, "UNAVAILABLE", "try again", "backendError")), GoogleUnavailable, "503", id="5xx"
        ),
        pytest.param((404, "404 page not found"), GoogleUnavailable, "404", id="404-bare"),
    ],
)
def test_a_cluster_the_container_api_cannot_describe_is_transient(
    api: FakeGoogleApi, answer: tuple[int, Any], kind: type[Exception], match: str
) -> None:
    api.answer = answer
    with pytest.raises(kind, match=match) as raised:
        discover_endpoint(CLUSTER, container_api=api.url, timeout=2)
    assert isinstance(raised.value, TransientError)  # retried; the cluster's client is rebuilt after a backoff
    if isinstance(raised.value, GoogleDenied):
        assert "container.clusters.get" in raised.value.fix
