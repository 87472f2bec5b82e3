"""Least privilege, checked on the real API server with the repository's RBAC manifest applied."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.clients import api_client
from tests.controlplane.cluster import TestCluster
from tests.controlplane.harness import ControlPlane, Identity

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)
NamedRule = tuple[str, str, str, str]  # (apiGroup, resource, verb, resourceName or "" for any)
LEASE_NAMESPACE = "kube-system"
LEASE = "gke-node-drainer-schedule"

# Everything the drainer may do, spelled out: a change of the manifest must change this too.
EXPECTED: set[Rule] = {
    ("", "nodes", "get"),
    ("", "nodes", "list"),
    ("", "nodes", "patch"),
    ("", "nodes", "watch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods", "delete"),
    ("", "pods/eviction", "create"),
    ("policy", "poddisruptionbudgets", "list"),
    ("policy", "poddisruptionbudgets", "watch"),
    ("batch", "jobs", "list"),
    ("batch", "jobs", "delete"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
    ("storage.k8s.io", "volumeattachments", "list"),
}
# ... and in kube-system only, the scheduled runs' Lease: get and update by name; create cannot be
# restricted by name (RBAC authorizes it before the object exists)
EXPECTED_LEASE: set[NamedRule] = {
    ("coordination.k8s.io", "leases", "get", LEASE),
    ("coordination.k8s.io", "leases", "update", LEASE),
    ("coordination.k8s.io", "leases", "create", ""),
}


def _rules(plane: ControlPlane, identity: Identity, namespace: str) -> set[Rule]:
    api = client.AuthorizationV1Api(api_client(plane, identity))
    review = api.create_self_subject_rules_review({"spec": {"namespace": namespace}})
    found: set[Rule] = set()
    for rule in review.status.resource_rules:
        for group in rule.api_groups or [""]:
            for resource in rule.resources or []:
                for verb in rule.verbs:
                    found.add((group, resource, verb))
    return found


def _named_rules(plane: ControlPlane, identity: Identity, namespace: str) -> set[NamedRule]:
    api = client.AuthorizationV1Api(api_client(plane, identity))
    review = api.create_self_subject_rules_review({"spec": {"namespace": namespace}})
    return {
        (group, resource, verb, name)
        for rule in review.status.resource_rules
        for group in rule.api_groups or [""]
        for resource in rule.resources or []
        for verb in rule.verbs
        for name in rule.resource_names or [""]
    }


def _manifest_rules(docs: list[dict[str, Any]]) -> set[Rule]:
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_manifest_binds_the_drainer_user_to_its_cluster_role(
    drainer_rbac: list[dict[str, Any]], control_plane: ControlPlane
) -> None:
    user = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": control_plane.drainer_user}]
    binding = next(d for d in drainer_rbac if d["kind"] == "ClusterRoleBinding")
    assert binding["subjects"] == user
    assert binding["roleRef"]["name"] == next(d for d in drainer_rbac if d["kind"] == "ClusterRole")["metadata"]["name"]
    assert {d["kind"] for d in drainer_rbac} == {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    role = next(d for d in drainer_rbac if d["kind"] == "Role")
    lease_binding = next(d for d in drainer_rbac if d["kind"] == "RoleBinding")
    assert lease_binding["subjects"] == user
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gke-node-drainer"}
    assert lease_binding["roleRef"] == role_ref
    assert role["metadata"]["name"] == "gke-node-drainer"
    assert role["metadata"]["namespace"] == lease_binding["metadata"]["namespace"] == LEASE_NAMESPACE


def test_what_the_drainer_may_do_is_exactly_the_manifest(
    drainer_rbac: list[dict[str, Any]], control_plane: ControlPlane, namespace: str
) -> None:
    baseline = _rules(control_plane, control_plane.stranger, namespace)  # what every authenticated user has
    granted = _rules(control_plane, control_plane.drainer_identities[0], namespace) - baseline
    assert granted == _manifest_rules(drainer_rbac) == EXPECTED
    assert not any(verb == "*" or resource == "*" for _, resource, verb in granted)


def test_the_schedule_lease_is_the_only_namespaced_grant(
    drainer_rbac: list[dict[str, Any]], control_plane: ControlPlane, namespace: str
) -> None:
    drainer = control_plane.drainer_identities[0]
    everywhere = _named_rules(control_plane, drainer, namespace)  # the ClusterRole's, in any namespace
    in_lease_namespace = _named_rules(control_plane, drainer, LEASE_NAMESPACE)
    baseline = _named_rules(control_plane, control_plane.stranger, LEASE_NAMESPACE)
    assert in_lease_namespace - everywhere - baseline == EXPECTED_LEASE
    role = next(d for d in drainer_rbac if d["kind"] == "Role")
    assert {
        (group, resource, verb, name)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or [""]
    } == EXPECTED_LEASE
    assert not any(r[1] == "leases" for r in everywhere)  # no Lease anywhere else


def _lease(name: str, holder: str = "rbac-test") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 60},
    }


@pytest.fixture
def no_leases(admin_api: client.ApiClient) -> Iterator[client.CoordinationV1Api]:
    """The schedule Lease (and this test's other Leases) absent before and after the test."""
    admin = client.CoordinationV1Api(admin_api)
    names = (LEASE, "rbac-test-other", "rbac-test-created")

    def clear() -> None:
        for name in names:
            with contextlib.suppress(ApiException):
                admin.delete_namespaced_lease(name, LEASE_NAMESPACE)

    clear()
    yield admin
    clear()


def test_the_drainer_may_hold_its_lease_and_no_other(
    drainer_api: client.ApiClient, no_leases: client.CoordinationV1Api, namespace: str
) -> None:
    leases = client.CoordinationV1Api(drainer_api)
    # its own Lease: create, get, update
    assert _status(lambda: leases.create_namespaced_lease(LEASE_NAMESPACE, _lease(LEASE))) == 200
    own = leases.read_namespaced_lease(LEASE, LEASE_NAMESPACE)
    own.spec.holder_identity = "rbac-test-2"
    assert _status(lambda: leases.replace_namespaced_lease(LEASE, LEASE_NAMESPACE, own)) == 200
    assert _status(lambda: leases.delete_namespaced_lease(LEASE, LEASE_NAMESPACE)) == 403
    assert _status(lambda: leases.patch_namespaced_lease(LEASE, LEASE_NAMESPACE, {"spec": {}})) == 403
    assert _status(lambda: leases.list_namespaced_lease(LEASE_NAMESPACE)) == 403
    # another Lease in the same namespace: neither read nor written
    other = no_leases.create_namespaced_lease(LEASE_NAMESPACE, _lease("rbac-test-other", holder="kube-scheduler"))
    assert _status(lambda: leases.read_namespaced_lease("rbac-test-other", LEASE_NAMESPACE)) == 403
    other.spec.holder_identity = "rbac-test"
    assert _status(lambda: leases.replace_namespaced_lease("rbac-test-other", LEASE_NAMESPACE, other)) == 403
    assert _status(lambda: leases.delete_namespaced_lease("rbac-test-other", LEASE_NAMESPACE)) == 403
    # create is not restricted by name (RBAC cannot): a new Lease may be made, never read back
    assert _status(lambda: leases.create_namespaced_lease(LEASE_NAMESPACE, _lease("rbac-test-created"))) == 200
    assert _status(lambda: leases.read_namespaced_lease("rbac-test-created", LEASE_NAMESPACE)) == 403
    # the Lease's name in another namespace: nothing
    assert _status(lambda: leases.create_namespaced_lease(namespace, _lease(LEASE))) == 403
    assert _status(lambda: leases.read_namespaced_lease(LEASE, namespace)) == 403


def _status(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


@pytest.fixture
def drainer_api(control_plane: ControlPlane, drainer_rbac: list[dict[str, Any]]) -> client.ApiClient:
    return api_client(control_plane, control_plane.drainer_identities[1])


def test_the_drainer_can_do_its_job(drainer_api: client.ApiClient, cluster: TestCluster) -> None:
    node = cluster.add_node()
    pod = cluster.bare_pod(node.name)
    core = client.CoreV1Api(drainer_api)
    assert _status(lambda: core.read_node(node.name)) == 200
    assert _status(lambda: core.patch_node(node.name, {"metadata": {"annotations": {"x": "y"}}})) == 200
    assert _status(lambda: core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node.name}")) == 200
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod.metadata.name}}
    assert _status(lambda: core.create_namespaced_pod_eviction(pod.metadata.name, cluster.namespace, eviction)) == 200
    events = client.EventsV1Api(drainer_api)
    event = {
        "metadata": {"name": f"{node.name}.rbac"},
        "eventTime": "2026-10-02T08:14:08.123456Z",  # six non-zero digits survive the client
        "reportingController": "gke-node-drainer",
        "reportingInstance": "rbac-test",
        "action": "Cordon",
        "reason": "Cordoned",
        "regarding": {"apiVersion": "v1", "kind": "Node", "name": node.name},
        "note": "rbac test",
        "type": "Normal",
    }
    assert _status(lambda: events.create_namespaced_event("default", event)) == 200
    series = {"series": {"count": 2, "lastObservedTime": "2026-10-02T08:14:09.123456Z"}}
    assert _status(lambda: events.patch_namespaced_event(f"{node.name}.rbac", "default", series)) == 200


DANGEROUS: list[tuple[str, Callable[[client.ApiClient, TestCluster, str], object]]] = [
    ("read secrets", lambda api, c, n: client.CoreV1Api(api).list_namespaced_secret(c.namespace)),
    ("read a secret", lambda api, c, n: client.CoreV1Api(api).read_namespaced_secret("any", c.namespace)),
    ("delete nodes", lambda api, c, n: client.CoreV1Api(api).delete_node(n)),
    ("update node status", lambda api, c, n: client.CoreV1Api(api).patch_node_status(n, {"status": {}})),
    (
        "create jobs",
        lambda api, c, n: client.BatchV1Api(api).create_namespaced_job(
            c.namespace,
            {
                "metadata": {"name": "evil"},
                "spec": {
                    "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "busybox"}]}}
                },
            },
        ),
    ),
    ("patch jobs", lambda api, c, n: client.BatchV1Api(api).patch_namespaced_job("j", c.namespace, {"spec": {}})),
    ("delete cronjobs", lambda api, c, n: client.BatchV1Api(api).delete_namespaced_cron_job("cj", c.namespace)),
    (
        "patch deployments",
        lambda api, c, n: client.AppsV1Api(api).patch_namespaced_deployment(
            "web", c.namespace, {"spec": {"replicas": 0}}
        ),
    ),
    (
        "create pods",
        lambda api, c, n: client.CoreV1Api(api).create_namespaced_pod(
            c.namespace,
            {"metadata": {"name": "evil"}, "spec": {"containers": [{"name": "x", "image": "busybox"}]}},
        ),
    ),
    ("read events", lambda api, c, n: client.EventsV1Api(api).list_namespaced_event(c.namespace)),
    ("delete events", lambda api, c, n: client.EventsV1Api(api).delete_namespaced_event("e", c.namespace)),
    (
        "write core events",
        lambda api, c, n: client.CoreV1Api(api).create_namespaced_event(
            c.namespace,
            {"metadata": {"name": "core"}, "involvedObject": {"kind": "Node", "name": n}, "reason": "Evil"},
        ),
    ),
    ("read configmaps", lambda api, c, n: client.CoreV1Api(api).list_namespaced_config_map(c.namespace)),
    ("delete namespaces", lambda api, c, n: client.CoreV1Api(api).delete_namespace(c.namespace)),
    ("read pod logs", lambda api, c, n: client.CoreV1Api(api).read_namespaced_pod_log("p", c.namespace)),
    (
        "bind cluster roles",
        lambda api, c, n: client.RbacAuthorizationV1Api(api).create_cluster_role_binding(
            {
                "metadata": {"name": "escalate"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": "x"}],
            }
        ),
    ),
]


@pytest.mark.parametrize("operation", [op for _, op in DANGEROUS], ids=[name for name, _ in DANGEROUS])
def test_dangerous_operations_are_denied(
    drainer_api: client.ApiClient,
    cluster: TestCluster,
    operation: Callable[[client.ApiClient, TestCluster, str], object],
) -> None:
    node = cluster.add_node()
    assert _status(lambda: operation(drainer_api, cluster, node.name)) == 403


@pytest.mark.parametrize(
    "attributes",
    [
        {"verb": "create", "resource": "pods", "subresource": "exec"},
        {"verb": "create", "resource": "pods", "subresource": "attach"},
        {"verb": "create", "resource": "pods", "subresource": "portforward"},
        {"verb": "impersonate", "resource": "users"},
        {"verb": "create", "resource": "serviceaccounts", "subresource": "token"},
    ],
    ids=["exec", "attach", "port-forward", "impersonate", "mint-tokens"],
)
def test_access_review_denies_exec_and_escalation(
    drainer_api: client.ApiClient, namespace: str, attributes: dict[str, str]
) -> None:
    review = client.AuthorizationV1Api(drainer_api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"namespace": namespace, **attributes}}}
    )
    assert review.status.allowed is False
