"""Failures classified once: a cluster that denies us, a client that cannot be built, a pod left by
an API failure, and the backoffs that keep a dead cluster from being hammered (no cluster here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.decisions.actions import Action, Severity
from functions.decisions.model import Pod
from functions.decisions.policy import DrainPlan, PodAction, PodDecision
from functions.decisions.settings import ClusterConfig, Settings
from functions.engines.drain.pods import PodResult, TrackedPod
from functions.engines.drain.report import build_report
from functions.entry.worker import MAX_RETRY_BACKOFF_SECONDS, retry_backoff
from functions.errors import Denied, DrainerError, PermanentError, TransientError
from functions.gateways import container
from functions.gateways.audit import Audit
from functions.gateways.google_api import GoogleDenied, GoogleStatus, GoogleUnavailable
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.connection import ClusterSetupError
from functions.gateways.kube.errors import ApiForbidden, ApiStatus, error_for, rbac_verb
from functions.usecases.runtime import SETUP_BACKOFF_MAX, Runtime, record_cluster_failure, setup_backoff

CLUSTER = ClusterConfig(name="alpha", project="acme-prod", location="europe-west4")
CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


# ---------------------------------------------------------------------------- a cluster that denies us
@pytest.mark.parametrize(
    ("request_line", "verb"),
    [
        ("GET /api/v1/nodes/gke-a", "get nodes"),
        ("GET /api/v1/nodes", "list nodes"),
        ("PATCH /api/v1/nodes/gke-a", "patch nodes"),
        ("POST /api/v1/namespaces/ns/pods/web-0/eviction", "create pods/eviction"),
        ("DELETE /api/v1/namespaces/ns/pods/web-0", "delete pods"),
        ("GET /api/v1/namespaces/ns/pods", "list pods"),
        ("watch /api/v1/pods", "watch pods"),
        ("GET /api/v1/pods?watch=true&fieldSelector=x", "watch pods"),
        ("DELETE /apis/batch/v1/namespaces/ns/jobs/j", "delete jobs (API group batch)"),
        ("GET /apis/batch/v1/jobs", "list jobs (API group batch)"),
        ("GET /api/v1/namespaces/ns", "get namespaces"),
        ("something odd", "something odd"),
    ],
)
def test_rbac_verb_of_a_request(request_line: str, verb: str) -> None:
    assert rbac_verb(request_line) == verb


def test_a_denial_is_retried_keeps_its_status_and_says_what_to_fix() -> None:
    body = b'{"kind":"Status","status":"Failure","reason":"Forbidden","code":403,"message":"nodes is forbidden"}'
    error = error_for(403, body, request="PATCH /api/v1/nodes/gke-a")
    assert isinstance(error, ApiForbidden)
    assert isinstance(error, TransientError)
    assert not isinstance(error, PermanentError)
    assert error.status == ApiStatus(code=403, reason="Forbidden", message="nodes is forbidden")
    assert "patch nodes" in error.fix
    assert "ClusterRole gke-node-drainer" in error.fix
    unauthorized = error_for(401, b"", request="GET /api/v1/nodes/gke-a")
    assert isinstance(unauthorized, ApiForbidden)
    assert "credentials" in unauthorized.fix
    assert isinstance(error, Denied)
    assert error.answer() == error.status.as_dict()


def test_a_client_that_cannot_be_built_is_retried() -> None:
    assert issubclass(ClusterSetupError, TransientError)


# ------------------------------------------------------------------- a client that cannot be built
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_setup_backoff_doubles_from_30_s_to_10_min() -> None:
    assert [setup_backoff(n) for n in range(1, 8)] == [30, 60, 120, 240, 480, 600, 600]
    assert SETUP_BACKOFF_MAX == 600


def test_a_cluster_that_cannot_be_set_up_is_not_rebuilt_on_every_event() -> None:
    calls: list[float] = []
    clock = Clock()
    healthy = ClusterConfig(name="beta", project="acme-prod", location="europe-west4", endpoint="https://127.0.0.1:9")
    healthy = ClusterConfig(**{**healthy.__dict__, "ca_data": CA})
    working = {"ok": False}

    def factory(cluster: ClusterConfig) -> ClusterClient:
        calls.append(clock.now)
        if cluster.name == "alpha" and not working["ok"]:
            raise ClusterSetupError("cluster projects/acme-prod/locations/europe-west4/clusters/alpha does not exist")
        return ClusterClient(healthy, timeout=1)

    runtime = Runtime(Settings(clusters=(CLUSTER, healthy), deadlines={}), client_factory=factory)
    runtime.clock = clock
    with pytest.raises(ClusterSetupError, match="does not exist"):
        runtime.client(CLUSTER)
    assert len(calls) == 1
    clock.now += 29
    with pytest.raises(ClusterSetupError, match="not rebuilt for another 1 s"):
        runtime.client(CLUSTER)
    assert len(calls) == 1  # still backing off: not rebuilt
    assert runtime.client(healthy) is runtime.client(healthy)  # the other cluster is not held up
    assert len(calls) == 2
    clock.now += 2
    with pytest.raises(ClusterSetupError):
        runtime.client(CLUSTER)  # tried again after 30 s, failed again: now 60 s
    assert len(calls) == 3
    clock.now += 59
    with pytest.raises(ClusterSetupError, match="not rebuilt"):
        runtime.client(CLUSTER)
    assert len(calls) == 3
    clock.now += 2
    working["ok"] = True
    client = runtime.client(CLUSTER)
    assert len(calls) == 4
    assert runtime.client(CLUSTER) is client  # built once, kept


def test_a_denied_discovery_keeps_its_status_while_backing_off() -> None:
    clock = Clock()
    denied = GoogleDenied(
        GoogleStatus(code=403, status="PERMISSION_DENIED", message="Required 'container.clusters.get'"),
        request="GET https://container.example/v1/projects/p/locations/l/clusters/c",
        permission=container.PERMISSION,
    )

    def factory(cluster: ClusterConfig) -> ClusterClient:
        raise denied

    runtime = Runtime(Settings(clusters=(CLUSTER,), deadlines={}), client_factory=factory)
    runtime.clock = clock
    for _ in range(3):
        with pytest.raises(GoogleDenied) as raised:
            runtime.client(CLUSTER)
        assert raised.value.status.code == 403
    audit = RecordingAudit()
    record_cluster_failure(audit, CLUSTER, denied, doing="asking about gke-a")
    [(action, severity, fields)] = audit.records
    assert (action, severity) == (Action.CLUSTER_UNREACHABLE, Severity.ERROR)
    assert fields["status"] == {
        "code": 403,
        "status": "PERMISSION_DENIED",
        "message": "Required 'container.clusters.get'",
        "reasons": [],
    }
    assert "container.clusters.get" in str(fields["fix"])


@pytest.mark.parametrize(
    ("error", "severity"),
    [
        pytest.param(
            GoogleUnavailable(GoogleStatus(code=503), request="GET https://c/v1/x"), Severity.WARNING, id="5xx"
        ),
        pytest.param(ClusterSetupError("cluster x does not exist (Container API 404)"), Severity.WARNING, id="gone"),
        pytest.param(error_for(403, b"", request="GET /api/v1/nodes/gke-a"), Severity.ERROR, id="rbac"),
    ],
)
def test_a_cluster_failure_is_audited_as_before(error: Exception, severity: Severity) -> None:
    audit = RecordingAudit()
    record_cluster_failure(audit, CLUSTER, error, doing="asking about gke-a")
    [(action, recorded, fields)] = audit.records
    assert (action, recorded) == (Action.CLUSTER_UNREACHABLE, severity)
    assert ("fix" in fields) is (severity is Severity.ERROR)


@dataclass(frozen=True)
class RecordingAudit(Audit):
    records: list[tuple[Action, Severity, dict[str, Any]]] = field(default_factory=list)

    def record(self, action: Action, message: str, /, *, severity: Severity = Severity.INFO, **details: Any) -> None:
        self.records.append((action, severity, details))


# ------------------------------------------------------------------------------------ the worker
def test_worker_backoff_grows_with_the_delivery_attempt() -> None:
    assert [retry_backoff(n) for n in (1, 2, 3, 4, 5, 6, 7, 99)] == [10, 20, 40, 80, 160, 320, 600, 600]
    assert retry_backoff(0) == 10
    assert retry_backoff(3, start=2) == 8
    assert MAX_RETRY_BACKOFF_SECONDS == 600


# ------------------------------------------------------------------------------- the drain report
def _pod(name: str) -> Pod:
    return Pod.from_json(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "ownerReferences": []},
            "spec": {"nodeName": "gke-a"},
            "status": {"phase": "Running"},
        }
    )


def test_a_pod_left_because_the_api_server_failed_is_not_reported_blocked() -> None:
    plan = DrainPlan(
        reason="delete",
        event_id="e1",
        event_time=datetime.now(UTC),
        timeout=timedelta(seconds=1),
        force_when_down=False,
    )
    items = []
    budget, outage, both = _pod("held"), _pod("outage"), _pod("both")
    for pod, transient, result in (
        (budget, False, PodResult.BLOCKED),
        (outage, True, None),
        (both, True, PodResult.BLOCKED),
    ):
        item = TrackedPod(decision=PodDecision(pod=pod, action=PodAction.EVICT), result=result, transient=transient)
        item.pdb = "web-pdb" if result is PodResult.BLOCKED else None
        items.append(item)
    report = build_report(
        items,
        skipped=[],
        node="gke-a",
        cluster=CLUSTER.name,
        plan=plan,
        dry_run=False,
        cordoned=True,
        was_unschedulable=False,
        verified=None,
        tainted=False,
        now=1.0,
        started=0.0,
    )
    results = {p.pod: p.result for p in report.pods}
    assert results == {
        "ns/held": PodResult.BLOCKED,
        "ns/outage": PodResult.REMAINING,
        "ns/both": PodResult.REMAINING,  # a budget refused it once, then the API server failed: not "blocked"
    }
    assert report.transient_failures == 2
    blocked = report.summary()["blocked"]
    assert isinstance(blocked, list)
    assert [b["pod"] for b in blocked] == ["ns/held"]


def test_errors_are_drainer_errors() -> None:
    assert issubclass(ApiForbidden, DrainerError)
    assert issubclass(GoogleDenied, Denied)
    assert issubclass(GoogleUnavailable, TransientError)
