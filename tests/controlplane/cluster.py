"""Helpers that build GKE-shaped nodes and workloads on the test control plane."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.kubelet import EXIT_ANNOTATION, KubeletStandIn, rfc3339

POOL_LABEL = "cloud.google.com/gke-nodepool"
INSTANCE_ID_ANNOTATION = "container.googleapis.com/instance_id"
IMAGE = "registry.example/app:1"


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def daemonset_owner(ds: Any) -> dict[str, Any]:
    """The controller reference a DaemonSet puts on its pods."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": ds.metadata.name,
        "uid": ds.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


@dataclass(frozen=True)
class NodeInfo:
    name: str
    project: str
    zone: str
    pool: str
    instance_id: str
    boot_id: str

    @property
    def provider_id(self) -> str:
        return f"gce://{self.project}/{self.zone}/{self.name}"


def _container(name: str = "app") -> dict[str, Any]:
    return {"name": name, "image": IMAGE}


def pod_spec(*, node: str | None = None, node_selector: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container()], "terminationGracePeriodSeconds": 30, **extra}
    if node:
        spec["nodeName"] = node
    if node_selector:
        spec["nodeSelector"] = node_selector
    return spec


@dataclass
class TestCluster:
    """Creates nodes and workloads in one namespace and removes the nodes afterwards."""

    __test__ = False  # a helper, not a pytest test class

    api: client.ApiClient
    kubelet: KubeletStandIn
    project: str
    namespace: str
    nodes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.policy = client.PolicyV1Api(self.api)

    # ------------------------------------------------------------------ nodes
    def add_node(
        self,
        *,
        name: str | None = None,
        zone: str = "europe-west4-b",
        pool: str = "spot-pool",
        unschedulable: bool = False,
        labels: dict[str, str] | None = None,
        instance_id: str | None = None,
    ) -> NodeInfo:
        name = name or f"gke-test-{pool}-{secrets.token_hex(4)}-{secrets.token_hex(2)}"
        info = NodeInfo(
            name=name,
            project=self.project,
            zone=zone,
            pool=pool,
            instance_id=instance_id or str(secrets.randbelow(10**18) + 10**18),
            boot_id=str(uuid.uuid4()),
        )
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "topology.kubernetes.io/zone": zone,
                    POOL_LABEL: pool,
                    **(labels or {}),
                },
                "annotations": {INSTANCE_ID_ANNOTATION: info.instance_id},
            },
            "spec": {"providerID": info.provider_id, "unschedulable": unschedulable},
        }
        self.core.create_node(body)
        self.nodes.append(name)
        now = rfc3339()
        self.core.patch_node_status(
            name,
            {
                "status": {
                    "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                    "allocatable": {"cpu": "7910m", "memory": "29Gi", "pods": "110"},
                    "addresses": [
                        {"type": "InternalIP", "address": "10.128.0.2"},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                    ],
                    "nodeInfo": {
                        "bootID": info.boot_id,
                        "machineID": secrets.token_hex(16),
                        "systemUUID": str(uuid.uuid4()),
                        "kernelVersion": "6.6.0",
                        "osImage": "Container-Optimized OS",
                        "containerRuntimeVersion": "containerd://2.0.0",
                        "kubeletVersion": "v1.35.4",
                        "kubeProxyVersion": "",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                }
            },
        )
        self.kubelet.register(name, info.boot_id)
        return info

    def read_node(self, name: str) -> Any:
        return self.core.read_node(name)

    def cleanup(self) -> None:
        for name in self.nodes:
            self.kubelet.unregister(name)
            with contextlib.suppress(ApiException):
                self.core.delete_node(name)
        self.nodes.clear()

    # ------------------------------------------------------------- workloads
    def _meta(
        self, name: str | None, prefix: str, labels: dict[str, str] | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "name": name or f"{prefix}-{secrets.token_hex(3)}",
            "namespace": self.namespace,
            "labels": labels or {},
            **extra,
        }

    def bare_pod(
        self,
        node: str | None,
        *,
        name: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        exit_code: int | None = None,
        owner: dict[str, Any] | None = None,
        **spec: Any,
    ) -> Any:
        annotations = dict(annotations or {})
        if exit_code is not None:
            annotations[EXIT_ANNOTATION] = str(exit_code)
            spec.setdefault("restartPolicy", "Never")
        meta = self._meta(name, "pod", labels, annotations=annotations)
        if owner:
            meta["ownerReferences"] = [owner]
        return self.core.create_namespaced_pod(
            self.namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec(node=node, **spec)}
        )

    def replicaset(
        self, node: str | None, replicas: int, *, name: str | None = None, node_selector: dict[str, str] | None = None
    ) -> Any:
        """Pods pinned to ``node`` by its hostname label, so that replacements respect a cordon."""
        if node:
            node_selector = {**(node_selector or {}), "kubernetes.io/hostname": node}
        meta = self._meta(name, "rs")
        labels = {"app": meta["name"]}
        meta["labels"] = labels
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec(node_selector=node_selector)},
            },
        }
        return self.apps.create_namespaced_replica_set(self.namespace, body)

    def statefulset(self, replicas: int, *, node_selector: dict[str, str], name: str | None = None) -> Any:
        meta = self._meta(name, "sts")
        labels = {"app": meta["name"]}
        meta["labels"] = labels
        body = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "serviceName": meta["name"],
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec(node_selector=node_selector)},
            },
        }
        return self.apps.create_namespaced_stateful_set(self.namespace, body)

    def daemonset_pods(self, nodes: Iterable[str], *, name: str | None = None) -> list[Any]:
        """A DaemonSet object and one pod per node owned by it (no DaemonSet controller runs)."""
        meta = self._meta(name, "ds")
        labels = {"app": meta["name"]}
        meta["labels"] = labels
        ds = self.apps.create_namespaced_daemon_set(
            self.namespace,
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": meta,
                "spec": {
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": pod_spec(node_selector={"no-such-label": "x"}),
                    },
                },
            },
        )
        owner = daemonset_owner(ds)
        return [
            self.bare_pod(node, name=f"{ds.metadata.name}-{secrets.token_hex(3)}", labels=labels, owner=owner)
            for node in nodes
        ]

    def job(
        self,
        node: str | None,
        *,
        name: str | None = None,
        exit_code: int | None = 0,
        completions: int = 1,
        **job_spec: Any,
    ) -> Any:
        meta = self._meta(name, "job")
        annotations = {EXIT_ANNOTATION: str(exit_code)} if exit_code is not None else {}
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {
                "completions": completions,
                "parallelism": completions,
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": annotations},
                    "spec": pod_spec(node=node, restartPolicy="Never"),
                },
                **job_spec,
            },
        }
        return self.batch.create_namespaced_job(self.namespace, body)

    def finished_job(
        self,
        *,
        name: str | None = None,
        failed: bool = False,
        annotations: dict[str, str] | None = None,
        owner: dict[str, Any] | None = None,
        ttl_after_finished: int | None = None,
        pod_node: str | None = None,
        finished_at: datetime | None = None,
    ) -> Any:
        """A Job that has finished, made fast: parallelism 0 (the controller starts nothing), then its
        status is written as the Job controller writes it; with ``pod_node``, one finished pod of it."""
        meta = self._meta(name, "job", annotations=annotations or {})
        if owner:
            meta["ownerReferences"] = [owner]
        spec: dict[str, Any] = {
            "parallelism": 0,
            "completions": 1,
            "backoffLimit": 0,
            "template": {"spec": pod_spec(restartPolicy="Never")},
        }
        if ttl_after_finished is not None:
            spec["ttlSecondsAfterFinished"] = ttl_after_finished
        job = self.batch.create_namespaced_job(
            self.namespace, {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
        )
        when = (finished_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        first, last = ("FailureTarget", "Failed") if failed else ("SuccessCriteriaMet", "Complete")
        conditions = [
            {"type": first, "status": "True", "lastTransitionTime": when, "lastProbeTime": when, "reason": "Test"},
            {"type": last, "status": "True", "lastTransitionTime": when, "lastProbeTime": when, "reason": "Test"},
        ]
        status: dict[str, Any] = {"conditions": conditions, ("failed" if failed else "succeeded"): 1}
        started: list[datetime] = []

        def has_started() -> bool:
            start = self.batch.read_namespaced_job_status(job.metadata.name, self.namespace).status.start_time
            if start is not None:
                started.append(start)
            return start is not None

        if not wait_until(has_started, 30):
            raise AssertionError(f"the Job controller never started Job {job.metadata.name}")
        if not failed:  # the API wants completionTime at or after the startTime the controller wrote
            status["completionTime"] = max(started[-1], finished_at or started[-1]).strftime("%Y-%m-%dT%H:%M:%SZ")
        job = self.batch.patch_namespaced_job_status(job.metadata.name, self.namespace, {"status": status})
        if pod_node:
            labels = {
                "batch.kubernetes.io/controller-uid": job.metadata.uid,
                "batch.kubernetes.io/job-name": job.metadata.name,
            }
            owner_ref = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job.metadata.name,
                "uid": job.metadata.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
            self.bare_pod(
                pod_node, name=f"{job.metadata.name}-pod", labels=labels, owner=owner_ref, exit_code=1 if failed else 0
            )
        return job

    def pdb(
        self,
        selector: dict[str, str],
        *,
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
        name: str | None = None,
    ) -> Any:
        spec: dict[str, Any] = {"selector": {"matchLabels": selector}}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        body = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": self._meta(name, "pdb"),
            "spec": spec,
        }
        return self.policy.create_namespaced_pod_disruption_budget(self.namespace, body)

    # ------------------------------------------------------------------ reads
    def pods(self, *, node: str | None = None, label_selector: str | None = None) -> list[Any]:
        kwargs: dict[str, Any] = {}
        if node:
            kwargs["field_selector"] = f"spec.nodeName={node}"
        if label_selector:
            kwargs["label_selector"] = label_selector
        return list(self.core.list_namespaced_pod(self.namespace, **kwargs).items)

    def wait_pods(
        self, predicate: Callable[[list[Any]], bool], *, timeout: float = 30.0, **selectors: Any
    ) -> list[Any]:
        found: list[Any] = []

        def check() -> bool:
            nonlocal found
            found = self.pods(**selectors)
            return predicate(found)

        if not wait_until(check, timeout):
            states = [(p.metadata.name, p.spec.node_name, p.status.phase, p.metadata.deletion_timestamp) for p in found]
            raise AssertionError(f"pods did not reach the expected state within {timeout} s: {states}")
        return found

    def wait_running(self, count: int, *, timeout: float = 30.0, **selectors: Any) -> list[Any]:
        return self.wait_pods(
            lambda pods: (
                sum(1 for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp) >= count
            ),
            timeout=timeout,
            **selectors,
        )
