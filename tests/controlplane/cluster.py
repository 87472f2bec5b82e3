"""Helpers that build GKE-shaped nodes and workloads on the test control plane."""

from __future__ import annotations

import contextlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.attacher import PD_CSI_DRIVER
from tests.controlplane.kubelet import (
    CONTROLLER_MANAGED_ANNOTATION,
    EXIT_ANNOTATION,
    KubeletStandIn,
    csi_volume_name,
    rfc3339,
)
from tests.support.compute import FakeComputeApi

POOL_LABEL = "cloud.google.com/gke-nodepool"
INSTANCE_ID_ANNOTATION = "container.googleapis.com/instance_id"
IMAGE = "registry.example/app:1"
# Statically provisioned PD volumes: Immediate binding, so that the real PV binder binds a claim
# as soon as it exists (GKE's standard-rwo is WaitForFirstConsumer, which needs a real scheduler).
STATIC_STORAGE_CLASS = "pd-static-rwo"
OUT_OF_SERVICE_TAINT = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def _taint_body(taint: Any) -> dict[str, Any]:
    body = {"key": taint.key, "effect": taint.effect}
    if taint.value:
        body["value"] = taint.value
    if taint.time_added:
        body["timeAdded"] = taint.time_added.strftime("%Y-%m-%dT%H:%M:%SZ")
    return body


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
    # the fake Compute Engine API: every node added gets a RUNNING VM there (same name, zone, id)
    compute: FakeComputeApi | None = None
    nodes: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)  # PersistentVolumes made here (cluster-scoped)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.storage = client.StorageV1Api(self.api)
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
                "annotations": {INSTANCE_ID_ANNOTATION: info.instance_id, CONTROLLER_MANAGED_ANNOTATION: "true"},
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
        if self.compute is not None:
            self.compute.add_node(info)
        return info

    def read_node(self, name: str) -> Any:
        return self.core.read_node(name)

    def cleanup(self) -> None:
        for name in self.nodes:
            self.kubelet.unregister(name)
            with contextlib.suppress(ApiException):
                self.core.delete_node(name)
        self.nodes.clear()
        for pv in self.volumes:
            with contextlib.suppress(ApiException):
                self.core.delete_persistent_volume(pv)
        self.volumes.clear()

    def after_last_heartbeat(self, name: str) -> datetime:
        """An event time the Node rule can judge: now, once now is more than a second past the node's
        last heartbeat (condition times are whole seconds). Waits for the clock, at most ~2 s."""
        ready = next(c for c in self.read_node(name).status.conditions if c.type == "Ready")
        heartbeat: datetime = ready.last_heartbeat_time
        ready_at = heartbeat + timedelta(seconds=1.1)
        assert wait_until(lambda: datetime.now(UTC) >= ready_at, timeout=5, interval=0.02)
        return datetime.now(UTC)

    def node_ready(self, name: str) -> str | None:
        """The status of the node's Ready condition ("True", "False", "Unknown"), None without one."""
        conditions = self.read_node(name).status.conditions or []
        return next((c.status for c in conditions if c.type == "Ready"), None)

    def wait_node_ready(self, name: str, status: str, *, timeout: float = 60.0) -> Any:
        """Await the node's Ready condition reaching ``status`` (e.g. "Unknown", written by the real
        node-lifecycle controller once the grace period has passed after ``kill(mark_unknown=False)``)."""
        if not wait_until(lambda: self.node_ready(name) == status, timeout, interval=0.1):
            raise AssertionError(f"node {name} Ready is {self.node_ready(name)}, not {status}, after {timeout} s")
        return self.read_node(name)

    def taint_out_of_service(self, name: str) -> None:
        """Add the non-graceful node shutdown taint (what the drainer does for a node verified down)."""
        for _ in range(10):  # the node-lifecycle controller edits taints too: compare-and-swap
            node = self.read_node(name)
            taints = [_taint_body(t) for t in node.spec.taints or []]
            if any(t["key"] == OUT_OF_SERVICE_TAINT["key"] for t in taints):
                return
            body = {
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": [*taints, OUT_OF_SERVICE_TAINT]},
            }
            try:
                self.core.patch_node(name, body)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise AssertionError(f"could not taint node {name}: conflicts")

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

    # ---------------------------------------------------------------- volumes
    def ensure_storage_class(self, name: str = STATIC_STORAGE_CLASS) -> str:
        """A StorageClass of the PD CSI driver with Immediate binding (idempotent, cluster-scoped)."""
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": PD_CSI_DRIVER,
            "parameters": {"type": "pd-balanced"},
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        }
        try:
            self.storage.create_storage_class(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        return name

    def csi_volume(
        self,
        *,
        name: str | None = None,
        storage_class: str = STATIC_STORAGE_CLASS,
        size: str = "10Gi",
        zone: str = "europe-west4-b",
        claim: str | None = None,
    ) -> Any:
        """A statically provisioned PD PersistentVolume (ReadWriteOnce); with ``claim``, pre-bound to
        that PVC of this namespace (the binder completes the binding when the claim appears)."""
        name = name or f"pv-{secrets.token_hex(4)}"
        spec: dict[str, Any] = {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
            "csi": {
                "driver": PD_CSI_DRIVER,
                "volumeHandle": f"projects/{self.project}/zones/{zone}/disks/{name}",
                "fsType": "ext4",
            },
        }
        if claim:
            spec["claimRef"] = {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": self.namespace,
                "name": claim,
            }
        pv = self.core.create_persistent_volume(
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}
        )
        self.volumes.append(name)
        return pv

    def stateful_set_with_volumes(
        self,
        replicas: int,
        *,
        node_selector: dict[str, str],
        name: str | None = None,
        storage_class: str = STATIC_STORAGE_CLASS,
        size: str = "10Gi",
        zone: str = "europe-west4-b",
        spare_volumes: int = 0,
    ) -> Any:
        """A StatefulSet whose pods mount a ReadWriteOnce PD volume each (volumeClaimTemplate
        ``data``), with one static CSI PersistentVolume per replica pre-bound to claim
        ``data-<name>-<ordinal>`` (plus ``spare_volumes`` unclaimed ones); the real PV binder binds them."""
        self.ensure_storage_class(storage_class)
        meta = self._meta(name, "sts")
        sts_name = meta["name"]
        for ordinal in range(replicas):
            self.csi_volume(storage_class=storage_class, size=size, zone=zone, claim=f"data-{sts_name}-{ordinal}")
        for _ in range(spare_volumes):
            self.csi_volume(storage_class=storage_class, size=size, zone=zone)
        labels = {"app": sts_name}
        meta["labels"] = labels
        spec = pod_spec(node_selector=node_selector)
        spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        body = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "serviceName": sts_name,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": spec},
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "storageClassName": storage_class,
                            "resources": {"requests": {"storage": size}},
                        },
                    }
                ],
            },
        }
        return self.apps.create_namespaced_stateful_set(self.namespace, body)

    def stateful_pod_and_spare(self, pool: str, *, name: str = "db") -> tuple[NodeInfo, NodeInfo, Any, Any]:
        """Two nodes of ``pool``; a one-replica StatefulSet with a PD volume Running on the first (the
        victim), the second (the spare) schedulable once it runs. Returns (victim, spare, pod, attachment)."""
        victim = self.add_node(pool=pool)
        spare = self.add_node(pool=pool, unschedulable=True)
        self.stateful_set_with_volumes(1, node_selector={POOL_LABEL: pool}, name=name)
        pod, attachment = self.wait_running_with_volume(f"{name}-0", victim.name)
        self.core.patch_node(spare.name, {"spec": {"unschedulable": False}})
        return victim, spare, pod, attachment

    def claimed_volume(self, pod: Any) -> Any:
        """The PersistentVolume bound to the pod's (first) PVC."""
        claim = next(v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim)
        pvc = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
        return self.core.read_persistent_volume(pvc.spec.volume_name)

    def volume_attachments(self, *, pv: str | None = None, node: str | None = None) -> list[Any]:
        return [
            va
            for va in self.storage.list_volume_attachment().items
            if (pv is None or va.spec.source.persistent_volume_name == pv)
            and (node is None or va.spec.node_name == node)
        ]

    def volumes_in_use(self, node: str) -> list[str]:
        return list(self.read_node(node).status.volumes_in_use or [])

    def wait_running_with_volume(self, pod_name: str, node: str, *, timeout: float = 30.0) -> tuple[Any, Any]:
        """Await pod ``pod_name`` Running on ``node`` with the VolumeAttachment of its PV for that node
        attached; returns (pod, VolumeAttachment)."""
        found: list[Any] = []

        def check() -> bool:
            found.clear()
            try:
                pod = self.core.read_namespaced_pod(pod_name, self.namespace)
            except ApiException:
                return False
            if pod.spec.node_name != node or pod.status.phase != "Running" or pod.metadata.deletion_timestamp:
                return False
            pv = self.claimed_volume(pod)
            attached = [
                va for va in self.volume_attachments(pv=pv.metadata.name, node=node) if va.status and va.status.attached
            ]
            if attached:
                found.extend((pod, attached[0]))
            return bool(attached)

        if not wait_until(check, timeout, interval=0.1):
            pods = [(p.metadata.name, p.spec.node_name, p.status.phase) for p in self.pods()]
            vas = [
                (va.metadata.name, va.spec.node_name, va.status.attached if va.status else None)
                for va in self.storage.list_volume_attachment().items
            ]
            raise AssertionError(
                f"{pod_name} not Running on {node} with its volume attached in {timeout} s: "
                f"pods {pods}, attachments {vas}"
            )
        return found[0], found[1]

    @staticmethod
    def unique_volume_name(pv: Any) -> str:
        """How nodes list the PV in ``status.volumesInUse``."""
        return csi_volume_name(pv.spec.csi.driver, pv.spec.csi.volume_handle)

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
        expected_pods: int | None = None,
    ) -> Any:
        """A policy/v1 budget, returned once the disruption controller has computed it (over
        ``expected_pods`` pods, when given)."""
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
        created = self.policy.create_namespaced_pod_disruption_budget(self.namespace, body)
        name = created.metadata.name

        def observed() -> bool:  # the disruption controller has computed the budget
            current = self.policy.read_namespaced_pod_disruption_budget(name, self.namespace)
            return bool(
                current.status
                and (current.status.observed_generation or 0) >= (current.metadata.generation or 1)
                and (expected_pods is None or current.status.expected_pods == expected_pods)
            )

        if not wait_until(observed, timeout=20):
            raise AssertionError(f"the disruption controller never computed PDB {name}")
        return created

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
