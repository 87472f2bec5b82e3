"""Prove that the test control plane behaves like a real cluster: authn, RBAC, PDBs, GC, google-auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.clients import api_client
from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import ControlPlane, Identity
from tests.controlplane.kubelet import KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer


def _status_of(call: object) -> int:
    try:
        call()  # type: ignore[operator]
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_invalid_token_is_unauthorized(control_plane: ControlPlane) -> None:
    api = api_client(control_plane, Identity("nobody", "not-a-known-token"))
    assert _status_of(lambda: client.CoreV1Api(api).list_node()) == 401


def test_anonymous_request_is_forbidden(control_plane: ControlPlane) -> None:
    api = api_client(control_plane, None)
    assert _status_of(lambda: client.CoreV1Api(api).list_namespaced_pod("default")) == 403


def test_authenticated_but_unbound_user_is_forbidden(control_plane: ControlPlane) -> None:
    core = client.CoreV1Api(api_client(control_plane, control_plane.stranger))
    assert _status_of(core.list_node) == 403
    assert _status_of(lambda: core.list_namespaced_pod("default")) == 403


def test_drainer_is_forbidden_what_no_binding_grants(control_plane: ControlPlane) -> None:
    """Whether or not the session has applied the RBAC manifest yet, secrets stay out of reach."""
    core = client.CoreV1Api(api_client(control_plane, control_plane.drainer_identities[0]))
    assert _status_of(lambda: core.list_namespaced_secret("default")) == 403


def test_stand_in_runs_pods_and_finalizes_graceful_deletion(cluster: TestCluster) -> None:
    node = cluster.add_node()
    pod = cluster.bare_pod(node.name)
    cluster.wait_running(1, node=node.name)
    cluster.core.delete_namespaced_pod(pod.metadata.name, cluster.namespace)
    # a real kubelet finishes the deletion; nothing else would remove the object
    cluster.wait_pods(lambda pods: not pods, node=node.name, timeout=10)


def test_killed_node_keeps_its_pods_and_turns_unknown(cluster: TestCluster, kubelet: KubeletStandIn) -> None:
    node = cluster.add_node()
    pod = cluster.bare_pod(node.name)
    cluster.wait_running(1, node=node.name)
    kubelet.kill(node.name)
    ready = next(c for c in cluster.read_node(node.name).status.conditions if c.type == "Ready")
    assert ready.status == "Unknown"
    cluster.core.delete_namespaced_pod(pod.metadata.name, cluster.namespace)
    # nobody finalizes the deletion on a dead node: the pod stays Terminating
    assert not wait_until(lambda: not cluster.pods(node=node.name), timeout=1.5)
    boot_id = kubelet.restart(node.name)
    assert boot_id != node.boot_id
    assert cluster.read_node(node.name).status.node_info.boot_id == boot_id
    cluster.wait_pods(lambda pods: not pods, node=node.name, timeout=10)


def test_eviction_respects_pdb_computed_by_disruption_controller(cluster: TestCluster) -> None:
    node = cluster.add_node()
    rs = cluster.replicaset(node.name, 2)
    app = rs.metadata.labels["app"]
    pods = cluster.wait_running(2, node=node.name)
    pdb = cluster.pdb({"app": app}, min_available=2)

    def budget() -> int | None:
        status = cluster.policy.read_namespaced_pod_disruption_budget(pdb.metadata.name, cluster.namespace).status
        return None if status is None or status.observed_generation is None else status.disruptions_allowed

    assert wait_until(lambda: budget() == 0, timeout=20), "disruption controller never computed the budget"
    victim = pods[0]
    eviction = client.V1Eviction(
        metadata=client.V1ObjectMeta(name=victim.metadata.name, namespace=cluster.namespace),
        delete_options=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=victim.metadata.uid)),
    )
    with pytest.raises(ApiException) as blocked:
        cluster.core.create_namespaced_pod_eviction(victim.metadata.name, cluster.namespace, eviction)
    assert blocked.value.status == 429
    assert "disruption budget" in json.loads(blocked.value.body)["message"]

    cluster.policy.patch_namespaced_pod_disruption_budget(
        pdb.metadata.name, cluster.namespace, {"spec": {"minAvailable": 1}}
    )
    assert wait_until(lambda: budget() == 1, timeout=20)
    cluster.core.create_namespaced_pod_eviction(victim.metadata.name, cluster.namespace, eviction)
    # the stand-in finalizes the graceful deletion and the ReplicaSet replaces the pod
    cluster.wait_pods(lambda now: victim.metadata.uid not in {p.metadata.uid for p in now}, timeout=15)
    cluster.wait_running(2, node=node.name)


def test_background_job_deletion_removes_pods_through_garbage_collector(cluster: TestCluster) -> None:
    node = cluster.add_node()
    job = cluster.job(node.name, exit_code=0)
    selector = f"batch.kubernetes.io/job-name={job.metadata.name}"
    cluster.wait_pods(lambda pods: len(pods) == 1 and pods[0].status.phase == "Succeeded", label_selector=selector)
    assert wait_until(
        lambda: any(
            c.type == "Complete" and c.status == "True"
            for c in (
                cluster.batch.read_namespaced_job_status(job.metadata.name, cluster.namespace).status.conditions or []
            )
        ),
        timeout=20,
    ), "job controller never completed the Job"
    cluster.batch.delete_namespaced_job(job.metadata.name, cluster.namespace, propagation_policy="Background")
    cluster.wait_pods(lambda pods: not pods, label_selector=selector, timeout=20)


GOOGLE_AUTH_PROBE = textwrap.dedent(
    """
    import json, sys
    import google.auth
    import google.auth.transport.requests
    import requests

    creds, project = google.auth.default(
        scopes=["https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/cloud-platform"]
    )
    creds.refresh(google.auth.transport.requests.Request())
    url, ca = sys.argv[1], sys.argv[2]
    review = requests.post(
        url + "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers={"Authorization": "Bearer " + creds.token},
        verify=ca,
        timeout=10,
    )
    print(json.dumps({"type": type(creds).__module__ + "." + type(creds).__name__, "project": project,
                      "email": creds.service_account_email, "status": review.status_code, "review": review.json()}))
    """
)


def test_google_auth_credentials_authenticate_as_drainer(
    control_plane: ControlPlane, metadata_server: FakeMetadataServer
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    env.update(metadata_server.environ())
    result = subprocess.run(
        [sys.executable, "-c", GOOGLE_AUTH_PROBE, control_plane.url, str(control_plane.ca_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["type"] == "google.auth.compute_engine.credentials.Credentials"
    assert out["project"] == control_plane.project
    assert out["email"] == control_plane.drainer_user
    assert out["status"] == 201, out["review"]
    assert out["review"]["status"]["userInfo"]["username"] == control_plane.drainer_user
    assert "system:authenticated" in out["review"]["status"]["userInfo"]["groups"]
