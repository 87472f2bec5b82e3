"""Evictions that follow the PodDisruptionBudgets, on the real API server and disruption controller:
the pods of one budget are evicted in turn, a budget with no disruption left is waited for on the
budget watch (not on a blind backoff), and a drain that may not read budgets still drains."""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from functions.decisions.policy import DrainPlan
from functions.engines.drain.report import DrainOutcome
from functions.engines.drain.run import Drain
from functions.gateways import audit
from functions.gateways.kube.client import ClusterClient
from tests.controlplane.clients import drainer_client
from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

POOL = "cloud.google.com/gke-nodepool"


def send(server: FunctionServer, entry: dict[str, Any]) -> Any:
    body, headers = delivery("binary", entry)
    return server.post(body, headers, timeout=90)


def test_a_budget_with_no_disruption_left_is_waited_for_on_its_watch(
    server_factory: Callable[..., FunctionServer], cluster: TestCluster
) -> None:
    drainer = server_factory(DRAINER_DEADLINE_DELETE="60")
    victim = cluster.add_node(pool="budget-pool")
    spare = cluster.add_node(pool="budget-pool", unschedulable=True)  # replacements cannot run yet
    rs = cluster.replicaset(None, 3, name="web", node_selector={POOL: "budget-pool"})
    app = rs.metadata.labels["app"]
    assert {p.spec.node_name for p in cluster.wait_running(3, label_selector=f"app={app}")} == {victim.name}
    cluster.pdb({"app": app}, max_unavailable=1, name="web-pdb")
    entry = log_entry("delete", instance=victim.name, instance_id=victim.instance_id)
    event_id = str(entry["operation"]["id"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(send, drainer, entry)
        # the first pod is evicted; the next is refused: the budget has no disruption left
        blocked = drainer.wait_audit(action="pod.blocked", event_id=event_id, timeout=30)
        assert blocked["pdb"] == "web-pdb"
        # The budget stays exhausted for 3 s (part of the scenario, not a wait for something to
        # happen): a backoff of 0.5 s doubling would ask again at about 0.5 and 1.5 s, the watch
        # waits for the budget to allow one. Then the spare opens and the replacements run there.
        time.sleep(3.0)
        cluster.core.patch_node(spare.name, {"spec": {"unschedulable": False}})
        assert answer.result(timeout=90).status_code == 200
    done = drainer.wait_audit(action="drain.completed", event_id=event_id)
    assert done["counts"] == {"evicted": 3}
    evicted = {r["pod"]: r for r in drainer.audit_for(action="pod.evicted", event_id=event_id)}
    assert len(evicted) == 3
    # Refusals, by the order of the turn: the first pod went at once; the second was refused once
    # and then waited, through the 3 s, for the budget to allow one; the third was refused once
    # with it (each pod in line is asked once) and once more at its own turn, the second's eviction
    # having used the allowance (unless its replacement was ready by then). A backoff would have
    # asked the second again and again while nothing could change.
    trail = [
        (r["action"], r.get("pod"), r.get("refusals"))
        for r in drainer.audit_for(event_id=event_id)
        if r["action"] in ("pod.evicted", "pod.blocked")
    ]
    refusals = [r["refusals"] for r in drainer.audit_for(action="pod.evicted", event_id=event_id)]
    assert refusals[:2] == [0, 1], trail
    assert refusals[2] in (1, 2), trail
    running = cluster.wait_running(3, label_selector=f"app={app}")
    assert {p.spec.node_name for p in running} == {spare.name}


def test_pods_of_several_budgets_and_none_are_all_evicted(drainer: FunctionServer, cluster: TestCluster) -> None:
    node = cluster.add_node()
    sets = [cluster.replicaset(node.name, 3, name=f"web{i}") for i in range(2)]
    cluster.bare_pod(node.name, name="loner")
    two = cluster.replicaset(node.name, 1, name="shared")
    cluster.wait_running(8, node=node.name)
    for rs in sets:
        cluster.pdb({"app": rs.metadata.labels["app"]}, max_unavailable=3)
    # a pod two budgets select: the API server refuses its eviction (500), it stays and is reported
    cluster.pdb({"app": two.metadata.labels["app"]}, max_unavailable=1, name="first")
    cluster.pdb({"app": two.metadata.labels["app"]}, max_unavailable=1, name="second")
    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    assert send(drainer, entry).status_code == 200
    done = drainer.wait_audit(action="drain.incomplete", event_id=str(entry["operation"]["id"]))
    assert done["counts"] == {"evicted": 7, "blocked": 1}
    [left] = cluster.pods(node=node.name)
    assert left.metadata.labels["app"] == two.metadata.labels["app"]


# ------------------------------------------------------ budgets not readable
@pytest.fixture
def stranger_as_drainer_without_budgets(
    control_plane: ControlPlane, admin_api: client.ApiClient, drainer_rbac: list[dict[str, Any]], tmp_path: Path
) -> Iterator[ClusterClient]:
    """The function's client as a user bound to the drainer's ClusterRole less its budget rule (an
    install from before budgets were read); the binding is gone, and seen gone, at the end."""
    rbac = client.RbacAuthorizationV1Api(admin_api)
    role = next(d for d in drainer_rbac if d["kind"] == "ClusterRole")
    name = f"drainer-without-budgets-{secrets.token_hex(3)}"
    rules = [r for r in role["rules"] if "poddisruptionbudgets" not in r["resources"]]
    assert len(rules) == len(role["rules"]) - 1
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": control_plane.stranger.user}
            ],
        }
    )
    kube = drainer_client(control_plane, control_plane.stranger, tmp_path, name="old-role")
    assert wait_until(lambda: _may_list_nodes(kube), timeout=10)  # the binding is in force
    yield kube
    kube.close()
    rbac.delete_cluster_role_binding(name)
    rbac.delete_cluster_role(name)
    as_stranger = client.AuthorizationV1Api(
        client.ApiClient(
            admin_api.configuration, header_name="Impersonate-User", header_value=control_plane.stranger.user
        )
    )
    assert wait_until(lambda: not _allowed(as_stranger, "list", "nodes"), timeout=10)


def _may_list_nodes(kube: ClusterClient) -> bool:
    try:
        kube.list_nodes()
    except Exception:
        return False
    return True


def _allowed(api: client.AuthorizationV1Api, verb: str, resource: str) -> bool:
    review = api.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": verb, "resource": resource}}}
    )
    return bool(review.status.allowed)


def test_a_drain_that_may_not_read_budgets_says_so_once_and_still_drains(
    stranger_as_drainer_without_budgets: ClusterClient, cluster: TestCluster
) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 3, name="web")
    cluster.wait_running(3, node=node.name)
    cluster.pdb({"app": rs.metadata.labels["app"]}, max_unavailable=3)
    stream = io.StringIO()
    audit.configure(stream=stream)
    try:
        plan = DrainPlan(
            reason="delete",
            event_id=f"old-role-{secrets.token_hex(4)}",
            event_time=datetime.now(UTC),
            timeout=timedelta(seconds=30),
            force_when_down=False,
        )
        report = Drain(
            kube=stranger_as_drainer_without_budgets,
            node_name=node.name,
            plan=plan,
            audit=audit.Audit({"event_id": plan.event_id}),
        ).run()
    finally:
        audit.configure()
    assert report.outcome is DrainOutcome.COMPLETED, report.summary()
    assert [p.result.value for p in report.pods] == ["evicted"] * 3
    records = [r for r in map(_json, stream.getvalue().splitlines()) if r.get("action") == "budgets.unavailable"]
    assert len(records) == 1
    assert records[0]["severity"] == "WARNING"
    assert "poddisruptionbudgets" in records[0]["fix"]


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
