"""The command-line tool as a real process against the manual function (functions-framework's HTTP
server, ID tokens required) and the real control plane. The CLI mints its ID token through
google-auth's own ``fetch_id_token`` from a fake metadata server that signs with the test issuer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import ControlPlane, free_port
from tests.controlplane.metadata import FakeMetadataServer
from tests.support.fakes import JsonApi
from tests.support.idtokens import AUDIENCE, OPERATOR, TokenIssuer
from tests.support.server import REPO, FunctionServer

ANN = "node-drainer.io/"
STRANGER = "intern@acme-prod.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer("cli-key")


@pytest.fixture(scope="module")
def certs(issuer: TokenIssuer) -> Iterator[JsonApi]:
    api = JsonApi(lambda method, path, headers, body: (200, {issuer.kid: issuer.cert_pem}))
    yield api
    api.stop()


def _identity(control_plane: ControlPlane, issuer: TokenIssuer, email: str) -> FakeMetadataServer:
    """The metadata server of the operator's machine: its default service account is ``email``."""
    return FakeMetadataServer(
        project=control_plane.project,
        email=email,
        tokens=["operator-access-token"],
        id_token_minter=lambda audience: issuer.token(aud=audience, email=email),
    ).start()


@pytest.fixture(scope="module")
def operator(control_plane: ControlPlane, issuer: TokenIssuer) -> Iterator[FakeMetadataServer]:
    server = _identity(control_plane, issuer, OPERATOR)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stranger(control_plane: ControlPlane, issuer: TokenIssuer) -> Iterator[FakeMetadataServer]:
    server = _identity(control_plane, issuer, STRANGER)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def function(server_factory: Callable[..., FunctionServer], certs: JsonApi) -> FunctionServer:
    return server_factory(
        "on_manual",
        "http",
        DRAINER_HTTP_AUDIENCE=AUDIENCE,
        DRAINER_ALLOWED_CALLERS=OPERATOR,
        DRAINER_ID_TOKEN_CERTS_URL=certs.url + "/oauth2/v1/certs",
    )


@pytest.fixture
def cli(function: FunctionServer, operator: FakeMetadataServer, tmp_path: Path) -> Callable[..., Result]:
    """Run ``python -m functions ARGS`` as the operator, against the function (by DRAINER_MANUAL_URL)."""

    def run(
        *args: str,
        metadata: FakeMetadataServer | None = None,
        audience: str | None = AUDIENCE,
        extra: dict[str, str] | None = None,
    ) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_", "CLOUDSDK_"))}
        env.update((metadata or operator).environ())
        env.update(extra or {})
        env.update({"DRAINER_MANUAL_URL": function.url + "/", "CLOUDSDK_CONFIG": str(tmp_path / "gcloud")})
        argv = [*args, "--audience", audience] if audience and "--no-auth" not in args else list(args)
        done = subprocess.run(
            [sys.executable, "-m", "functions", *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def test_status_drain_and_uncordon(
    cli: Callable[..., Result], function: FunctionServer, operator: FakeMetadataServer, cluster: TestCluster
) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 2, name="web")
    cluster.wait_running(2, node=node.name)

    planned = cli("drain", node.name, "--dry-run", "-o", "json")
    assert planned.code == 0, planned.err
    assert planned.json()["outcome"] == "dry_run"
    assert planned.json()["counts"] == {"would_evict": 2}
    assert not cluster.read_node(node.name).spec.unschedulable
    assert operator.id_token_audiences[-1] == AUDIENCE  # google-auth asked the metadata server for it
    assert function.wait_audit(action="http.request", node=node.name)["caller"] == OPERATOR

    drained = cli("drain", node.name, "--timeout", "20", "--cluster", "test")
    assert drained.code == 0, drained.err
    summary = dict(line.split(None, 1) for line in drained.out.split("\n\n")[0].splitlines())
    assert summary["node"] == node.name
    assert summary["outcome"] == "completed"
    assert summary["pods"] == "2 evicted"
    pods = drained.out.split("\n\n")[1].splitlines()
    assert pods[0].split() == ["POD", "RESULT", "PDB", "REASON"]
    assert sorted(row.split()[1] for row in pods[1:]) == ["evicted", "evicted"]
    assert f"draining {node.name}" in drained.err
    assert cluster.read_node(node.name).metadata.annotations[f"{ANN}reason"] == "manual"

    status = cli("status")
    assert status.code == 0, status.err
    header, *rows = status.out.splitlines()
    assert header.split()[:3] == ["NODE", "CLUSTER", "REASON"]
    mine = [row.split() for row in rows if row.split()[0] == node.name]
    assert mine
    assert mine[0][1:3] == ["test", "manual"]
    listed = {r["node"]: r for r in cli("status", "-o", "json").json()["nodes"]}
    assert listed[node.name]["next"] == "wait"

    lifted = cli("uncordon", node.name)
    assert lifted.code == 0, lifted.err
    assert "uncordoned" in lifted.out
    assert not cluster.read_node(node.name).spec.unschedulable
    again = cli("uncordon", node.name)
    assert again.code == 1
    assert "the function answered 409" in again.err
    assert "not cordoned by" in again.err


def test_blocked_drain_exits_1_and_names_the_budget(cli: Callable[..., Result], cluster: TestCluster) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 1, name="held")
    cluster.wait_running(1, node=node.name)
    budget = cluster.pdb({"app": rs.metadata.labels["app"]}, min_available=1)
    result = cli("drain", node.name, "--timeout", "3")
    assert result.code == 1, result.err
    assert "drain incomplete: 1 pods" in result.err
    assert budget.metadata.name in result.err
    assert "blocked" in result.out


def test_unknown_node_exits_1(cli: Callable[..., Result]) -> None:
    result = cli("drain", "gke-no-such-node")
    assert result.code == 1
    assert "the function answered 404" in result.err
    assert "does not exist" in result.err


def test_missing_token_is_an_auth_error(cli: Callable[..., Result]) -> None:
    result = cli("status", "--no-auth")
    assert result.code == 3
    assert "the function answered 401" in result.err
    assert "do not pass --no-auth" in result.err
    assert result.out == ""


def test_token_for_another_audience_is_an_auth_error(cli: Callable[..., Result], operator: FakeMetadataServer) -> None:
    result = cli("status", audience="https://elsewhere.example/fn")
    assert result.code == 3
    assert operator.id_token_audiences[-1] == "https://elsewhere.example/fn"
    assert "the function answered 401" in result.err
    assert "--audience must equal" in result.err


def test_caller_not_allowed_is_an_auth_error(cli: Callable[..., Result], stranger: FakeMetadataServer) -> None:
    result = cli("status", metadata=stranger)
    assert result.code == 3
    assert "the function answered 403" in result.err
    assert "DRAINER_ALLOWED_CALLERS" in result.err


def test_no_credentials_is_an_auth_error(cli: Callable[..., Result]) -> None:
    closed = f"127.0.0.1:{free_port()}"  # no metadata server, no key file, no gcloud configuration
    result = cli("status", extra={"GCE_METADATA_HOST": closed, "GCE_METADATA_IP": closed})
    assert result.code == 3
    assert "no Google credentials" in result.err
