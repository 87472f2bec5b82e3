"""Hostile requests to the operator and scheduler APIs: every one gets a 4xx with a message, never a
5xx or a traceback, and every one is audited. Table-driven cases and a bounded property-based fuzz
(hypothesis, fixed seed) run through functions-framework's real HTTP server; the bulk of the fuzz runs
through :class:`Api` in-process with the audit written to a buffer.

No cluster is reachable here (bad input must never get that far): the configured clusters point at a
closed loopback port, so a request that is valid after all answers 503, which the properties allow
only for requests that are valid."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.decisions.settings import FUNCTION_TIMEOUT_MARGIN
from functions.decisions.settings_env import load
from functions.entry.http_api import MANUAL_ACTIONS, MANUAL_FIELDS, MAX_BODY_BYTES, SCHEDULED_ACTIONS, Api, HttpResult
from functions.gateways import audit as audit_log
from functions.usecases.runtime import Runtime
from tests.controlplane.harness import free_port
from tests.support.server import FunctionServer

FUNCTION_TIMEOUT = 300
LIMIT = FUNCTION_TIMEOUT - FUNCTION_TIMEOUT_MARGIN
CLUSTERS = ("alpha", "beta")
DNS1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
BASE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


def fuzz(examples: int) -> settings:
    """A fixed seed (derandomized), no example database, a bounded number of examples."""
    return settings(BASE, max_examples=examples)


def environment(tmp: Path) -> dict[str, str]:
    dead = f"https://127.0.0.1:{free_port()}"
    clusters = [
        {"name": name, "project": "acme-prod", "location": "europe-west4", "endpoint": dead, "ca_file": str(tmp / "ca")}
        for name in CLUSTERS
    ]
    return {"DRAINER_CLUSTERS": json.dumps(clusters), "DRAINER_FUNCTION_TIMEOUT_SECONDS": str(FUNCTION_TIMEOUT)}


# ------------------------------------------------------------------------------------------ strategies
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["\ud800", "\udfff", "a\x00b", "💥", "\u202e", "gke-a"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def _not_number_in_range(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= LIMIT


def _bad_field(actions: tuple[str, ...]) -> st.SearchStrategy[tuple[str, Any]]:
    """(field, value) that makes any request invalid, whatever the other fields hold."""
    return st.one_of(
        st.tuples(st.just("action"), values.filter(lambda v: not (isinstance(v, str) and v in actions))),
        st.tuples(st.just("dry_run"), values.filter(lambda v: not isinstance(v, bool))),
        st.tuples(
            st.text(max_size=12).filter(lambda k: k not in MANUAL_FIELDS) | st.just("\ud800"),
            values,
        ),
    )


manual_bad = st.one_of(
    _bad_field(MANUAL_ACTIONS),
    st.tuples(st.just("cluster"), values.filter(lambda v: not (isinstance(v, str) and v in CLUSTERS))),
    st.tuples(st.just("node"), values.filter(lambda v: not isinstance(v, str))),
    st.tuples(st.just("force"), values.filter(lambda v: not isinstance(v, bool))),
    st.tuples(st.just("timeout_seconds"), values.filter(_not_number_in_range)),
    st.tuples(
        st.just("timeout_seconds"),
        st.floats(min_value=LIMIT + 0.001, max_value=1e300) | st.integers(min_value=LIMIT + 1),
    ),
)


@st.composite
def bad_manual_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A manual request, valid but for one field (or a node that is not a DNS-1123 name)."""
    body: dict[str, Any] = {
        "action": draw(st.sampled_from(MANUAL_ACTIONS)),
        "cluster": draw(st.sampled_from(CLUSTERS)),
        "node": "gke-pool-a-1",
        "dry_run": draw(st.booleans()),
    }
    if body["action"] in ("drain", "uncordon") and draw(st.booleans()):
        body["node"] = draw(st.text(max_size=300).filter(lambda n: len(n) > 253 or not DNS1123.fullmatch(n)))
    else:
        name, value = draw(manual_bad)
        body[name] = value
    return body


@st.composite
def bad_scheduled_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"action": draw(st.sampled_from(SCHEDULED_ACTIONS)), "dry_run": draw(st.booleans())}
    name, value = draw(_bad_field(SCHEDULED_ACTIONS))
    body[name] = value
    return body


def encoded(body: Any) -> bytes:
    """JSON as Python writes it: NaN/Infinity literals and \\ud800 escapes included."""
    return json.dumps(body).encode()


raw_bodies = st.one_of(
    st.binary(max_size=200),
    values.map(encoded),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


# ----------------------------------------------------------------------------------------- in-process
class InProcess:
    def __init__(self, tmp: Path) -> None:
        self.stream = io.StringIO()
        audit_log.configure(stream=self.stream)
        self.api = Api(Runtime(load(environment(tmp))))

    def call(self, entry: str, body: bytes) -> tuple[HttpResult, list[dict[str, Any]]]:
        start = self.stream.tell()
        result = getattr(self.api, entry)(method="POST", headers={"Content-Type": "application/json"}, body=body)
        self.stream.seek(start)
        records = [json.loads(line) for line in self.stream.read().splitlines() if line.startswith("{")]
        return result, [r for r in records if r.get("audit")]


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    yield InProcess(tmp_path_factory.mktemp("hostile"))
    audit_log.configure()  # stdout again, for the tests that follow


def assert_refused(result: HttpResult, records: list[dict[str, Any]], trigger: str) -> None:
    assert 400 <= result.status < 500, (result.status, result.body)
    assert isinstance(result.body.get("error"), str)
    assert result.body["error"]
    rejected = [r for r in records if r["action"] == "http.rejected"]
    assert len(rejected) == 1, records
    assert rejected[0]["status"] == result.status
    assert rejected[0]["trigger"] == trigger


@fuzz(1200)
@given(body=bad_manual_requests())
def test_fuzz_manual_bad_requests_in_process(in_process: InProcess, body: dict[str, Any]) -> None:
    result, records = in_process.call("manual", encoded(body))
    assert result.status == 400, (body, result.body)
    assert_refused(result, records, "manual")


@fuzz(400)
@given(body=bad_scheduled_requests())
def test_fuzz_scheduled_bad_requests_in_process(in_process: InProcess, body: dict[str, Any]) -> None:
    result, records = in_process.call("scheduled", encoded(body))
    assert result.status == 400, (body, result.body)
    assert_refused(result, records, "schedule")


@fuzz(800)
@given(entry=st.sampled_from(["manual", "scheduled"]), body=raw_bodies)
def test_fuzz_arbitrary_bodies_in_process(in_process: InProcess, entry: str, body: bytes) -> None:
    result, records = in_process.call(entry, body)
    if result.status == 503:  # valid after all: only the unreachable cluster failed it
        assert any(r["action"] == "http.request" for r in records)
        return
    assert_refused(result, records, "manual" if entry == "manual" else "schedule")


# ------------------------------------------------------------------------------------ the real server
@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FunctionServer]]:
    tmp = tmp_path_factory.mktemp("hostile-server")
    env = environment(tmp)
    started = {
        "manual": FunctionServer(target="on_manual", signature="http", env=env, log_path=tmp / "manual.log"),
        "scheduled": FunctionServer(target="on_schedule", signature="http", env=env, log_path=tmp / "schedule.log"),
    }
    yield started
    for server in started.values():
        server.stop()


def post(server: FunctionServer, body: Any, **headers: str) -> requests.Response:
    return requests.post(
        server.url + "/", data=body, headers={"Content-Type": "application/json", **headers}, timeout=30
    )


def assert_answered(server: FunctionServer, response: requests.Response, status: int) -> dict[str, Any]:
    """A JSON error with a message, no traceback, and an http.rejected record with that status."""
    assert response.status_code == status, response.text
    answer = response.json()
    assert isinstance(answer["error"], str)
    assert answer["error"]
    assert "Traceback" not in response.text
    server.wait_audit(action="http.rejected", status=status)
    assert "Traceback" not in "\n".join(server.lines())
    return dict(answer)


HOSTILE_MANUAL = [
    pytest.param(b'{"action": "status", "dry_run": NaN}', "not valid JSON", id="nan-literal"),
    pytest.param(b'{"action": "drain", "node": "n", "timeout_seconds": Infinity}', "not valid JSON", id="infinity"),
    pytest.param(b'{"action": "drain", "node": "n", "timeout_seconds": -Infinity}', "not valid JSON", id="-infinity"),
    pytest.param(b'{"action": "status", "cluster": "\\ud800"}', "not valid Unicode", id="lone-surrogate-value"),
    pytest.param(b'{"\\udfff": 1, "action": "status"}', "not valid Unicode", id="lone-surrogate-key"),
    pytest.param(b'{"action": "st\xffatus"}', "not UTF-8", id="not-utf8"),
    pytest.param(b'{"action": "status"', "not valid JSON", id="truncated"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "nests deeper", id="deep-nesting"),
    pytest.param(b'"status"', "must be a JSON object", id="string-body"),
    pytest.param(b"null", "must be a JSON object", id="null-body"),
    pytest.param(
        encoded({"action": "drain", "cluster": "alpha", "node": {"name": "n"}}),
        "node must be a string",
        id="node-object",
    ),
    pytest.param(
        encoded({"action": "drain", "cluster": None, "node": "n"}), "cluster must be a string", id="cluster-null"
    ),
    pytest.param(encoded({"action": ["drain"]}), "action must be one of", id="action-list"),
    pytest.param(encoded({"action": "status", "force": "yes"}), "force must be true or false", id="force-string"),
    pytest.param(
        encoded({"action": "drain", "cluster": "alpha", "node": "n", "timeout_seconds": "60"}),
        "timeout_seconds must be a number",
        id="timeout-string",
    ),
    pytest.param(
        b'{"action": "drain", "cluster": "alpha", "node": "n", "timeout_seconds": 1e400}',
        "timeout_seconds must be a number",
        id="timeout-overflows-to-infinity",
    ),
    pytest.param(
        b'{"action": "drain", "cluster": "alpha", "node": "n", "timeout_seconds": 1' + b"0" * 5000 + b"}",
        "not valid JSON",
        id="timeout-5000-digits",
    ),
    pytest.param(
        b'{"action": "cleanup", "timeout_seconds": 1' + b"0" * 400 + b"}",
        "timeout_seconds must be a number",
        id="timeout-integer-too-large-for-a-float",
    ),
    pytest.param(
        encoded({"action": "drain", "cluster": "alpha", "node": "n", "timeout_seconds": 10**40}),
        f"from 1 to {LIMIT:g}",
        id="timeout-huge-integer",
    ),
    pytest.param(encoded({"action": "status", "extra": 1}), "unknown fields ['extra']", id="unknown-field"),
    pytest.param(
        encoded({"action": "uncordon", "cluster": "alpha", "node": "../../api/v1/secrets"}),
        "not a DNS-1123 name",
        id="path-in-node-name",
    ),
    pytest.param(encoded({"action": "drain", "node": "n"}), "cluster is required", id="cluster-required"),
]


@pytest.mark.parametrize(("body", "message"), HOSTILE_MANUAL)
def test_hostile_manual_requests_get_400_with_a_message(
    servers: dict[str, FunctionServer], body: bytes, message: str
) -> None:
    answer = assert_answered(servers["manual"], post(servers["manual"], body), 400)
    assert message in answer["error"]


def test_timeout_above_the_function_timeout_names_the_limit(servers: dict[str, FunctionServer]) -> None:
    body = {"action": "drain", "cluster": "alpha", "node": "gke-a", "timeout_seconds": LIMIT + 1}
    answer = assert_answered(servers["manual"], post(servers["manual"], encoded(body)), 400)
    assert f"from 1 to {LIMIT:g}" in answer["error"]
    assert f"at most {FUNCTION_TIMEOUT} s (DRAINER_FUNCTION_TIMEOUT_SECONDS)" in answer["error"]


@pytest.mark.parametrize("entry", ["manual", "scheduled"])
def test_bodies_over_the_limit_get_413_unread(servers: dict[str, FunctionServer], entry: str) -> None:
    server = servers[entry]
    padding = "x" * MAX_BODY_BYTES
    answer = assert_answered(server, post(server, encoded({"action": "status", "pad": padding})), 413)
    assert str(MAX_BODY_BYTES) in answer["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer, cut after the limit
        yield b'{"action": "status", "pad": "'
        for _ in range(200):
            yield b"y" * 1024
        yield b'"}'

    assert_answered(server, post(server, chunks()), 413)
    assert post(server, b"{}", **{"Content-Length": "2"}).status_code == 400  # the server still answers


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(encoded({"action": "all", "cluster": "alpha"}), "unknown fields ['cluster']", id="unknown-field"),
        pytest.param(encoded({"action": "all", "dry_run": None}), "dry_run must be true or false", id="dry-run-null"),
        pytest.param(b'{"action": "recover", "dry_run": NaN}', "not valid JSON", id="nan-literal"),
        pytest.param(encoded({"action": {"$ne": ""}}), "action must be one of", id="action-object"),
    ],
)
def test_hostile_scheduled_requests_get_400(servers: dict[str, FunctionServer], body: bytes, message: str) -> None:
    answer = assert_answered(servers["scheduled"], post(servers["scheduled"], body), 400)
    assert message in answer["error"]


def _rejections(server: FunctionServer) -> int:
    return len(server.audit_for(action="http.rejected"))


@fuzz(150)
@given(body=bad_manual_requests().map(encoded) | raw_bodies)
def test_fuzz_manual_through_the_real_server(servers: dict[str, FunctionServer], body: bytes) -> None:
    server = servers["manual"]
    before = _rejections(server)
    response = post(server, body)
    assert response.status_code in (400, 503), response.text  # 503: a valid request, the cluster is unreachable
    assert "Traceback" not in response.text
    if response.status_code == 400:
        assert response.json()["error"]
        assert _rejections(server) == before + 1


@fuzz(100)
@given(body=bad_scheduled_requests().map(encoded) | raw_bodies)
def test_fuzz_scheduled_through_the_real_server(servers: dict[str, FunctionServer], body: bytes) -> None:
    server = servers["scheduled"]
    before = _rejections(server)
    response = post(server, body)
    assert response.status_code in (400, 503), response.text
    if response.status_code == 400:
        assert response.json()["error"]
        assert _rejections(server) == before + 1
