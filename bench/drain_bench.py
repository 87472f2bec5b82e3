"""Benchmark: our event-driven drain against `kubectl drain` on identical 110-pod nodes, same run.

    python -m bench.drain_bench [--rounds 3] [--deletion-delay 0.2]     (or: make bench)

Starts its own control plane (the test harness), serves main.py's on_node_event under
functions-framework as the drainer user, and prints:
- drain of a 110-pod node, from the event POST (or the kubectl start) to the last evictable pod
  gone, for both tools and the ratio (target <= 0.4);
- warm event -> node cordoned latency, p50 and p90 (target p50 < 100 ms);
- cold start: a fresh interpreter importing main and handling its first event (target < 1 s).
Both tools are timed by the same observer: a watch on the node's pods, by UID.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from tests.controlplane.clients import api_client, apply_rbac
from tests.controlplane.cluster import NodeInfo, TestCluster, daemonset_owner, wait_until
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer, cluster_entry

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------- workload
@dataclass
class Shared:
    daemonsets: list[Any]


def build_node(cluster: TestCluster, shared: Shared, *, label: str) -> tuple[NodeInfo, set[str]]:
    """A 110-pod node: 3 DaemonSet, 50 ReplicaSet (2 of 5 sets behind PDBs with budget),
    10 StatefulSet, 15 emptyDir, 17 bare and 15 completed pods. Returns (node, evictable pod UIDs)."""
    info = cluster.add_node(pool="bench")
    node = info.name
    for ds in shared.daemonsets:
        owner = daemonset_owner(ds)
        cluster.bare_pod(
            node, name=f"{ds.metadata.name}-{label}", labels=dict(ds.spec.selector.match_labels), owner=owner
        )
    for i in range(5):
        rs = cluster.replicaset(node, 10, name=f"web{i}-{label}")
        if i < 2:
            cluster.pdb({"app": rs.metadata.labels["app"]}, max_unavailable=10)
    sts_labels = {"kubernetes.io/hostname": node}
    cluster.statefulset(10, node_selector=sts_labels, name=f"db-{label}")
    for i in range(15):
        cluster.bare_pod(node, name=f"scratch{i}-{label}", volumes=[{"name": "tmp", "emptyDir": {}}])
    for i in range(17):
        cluster.bare_pod(node, name=f"bare{i}-{label}")
    for i in range(15):
        cluster.bare_pod(node, name=f"done{i}-{label}", exit_code=0)
    pods = cluster.wait_pods(
        lambda ps: len(ps) == 110 and all(p.status.phase in ("Running", "Succeeded") for p in ps),
        node=node,
        timeout=120,
    )
    evictable = {
        p.metadata.uid for p in pods if not any(o.kind == "DaemonSet" for o in p.metadata.owner_references or [])
    }
    assert len(evictable) == 107, len(evictable)
    return info, evictable


class GoneObserver:
    """Watches all pods; records when each UID is deleted."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.deleted: dict[str, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            rv = self.core.list_pod_for_all_namespaces(limit=1).metadata.resource_version
            self._ready.set()
            try:
                for event in watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces, resource_version=rv, timeout_seconds=60
                ):
                    if event["type"] == "DELETED":
                        self.deleted.setdefault(event["object"].metadata.uid, time.perf_counter())
                    if self._stop.is_set():
                        return
            except Exception:  # relist
                time.sleep(0.1)

    def last_gone(self, uids: set[str], timeout: float) -> float:
        if not wait_until(lambda: uids <= self.deleted.keys(), timeout=timeout, interval=0.01):
            missing = len(uids - self.deleted.keys())
            raise RuntimeError(f"{missing} pods never went away")
        return max(self.deleted[u] for u in uids)

    def stop(self) -> None:
        self._stop.set()


class CordonObserver:
    """Watches nodes; records when each first becomes unschedulable."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.cordoned: dict[str, float] = {}
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        time.sleep(0.3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(self.core.list_node, timeout_seconds=60):
                    node = event["object"]
                    if node.spec.unschedulable:
                        self.cordoned.setdefault(node.metadata.name, time.perf_counter())
                    if self._stop.is_set():
                        return
            except Exception:
                time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


# ------------------------------------------------------------------ runs
@dataclass
class Env:
    plane: ControlPlane
    api: client.ApiClient
    kubelet: KubeletStandIn
    metadata: FakeMetadataServer
    workdir: Path


@contextmanager
def environment(deletion_delay: float, workdir: Path) -> Iterator[Env]:
    plane = ControlPlane().start()
    api = api_client(plane, plane.admin, pool_size=64)
    kubelet = KubeletStandIn(api, deletion_delay=deletion_delay, heartbeat_interval=5.0, workers=16).start()
    metadata = FakeMetadataServer(
        project=plane.project, email=plane.drainer_user, tokens=[i.token for i in plane.drainer_identities]
    ).start()
    apply_rbac(api, plane.drainer_user)
    try:
        yield Env(plane=plane, api=api, kubelet=kubelet, metadata=metadata, workdir=workdir)
    finally:
        kubelet.stop()
        metadata.stop()
        plane.stop()


def function_env(plane: ControlPlane, metadata: FakeMetadataServer) -> dict[str, str]:
    return {"DRAINER_CLUSTERS": json.dumps([cluster_entry(plane, name="bench")]), **metadata.environ()}


def drain_comparison(args: argparse.Namespace, env: Env) -> tuple[list[float], list[float]]:
    plane, api, kubelet, metadata, workdir = env.plane, env.api, env.kubelet, env.metadata, env.workdir
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "bench"}})
    cluster = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="bench")
    shared = Shared(daemonsets=[])
    for i in range(3):
        cluster.daemonset_pods([], name=f"agent{i}")
        shared.daemonsets.append(cluster.apps.read_namespaced_daemon_set(f"agent{i}", "bench"))
    server = FunctionServer(
        target="on_node_event",
        signature="cloudevent",
        env=function_env(plane, metadata),
        log_path=workdir / "function.log",
    )
    kubeconfig = plane.write_kubeconfig(plane.admin, workdir / "kubeconfig")
    kubectl = str(plane.assets.path("kubectl"))
    observer = GoneObserver(api)
    ours: list[float] = []
    theirs: list[float] = []
    try:
        # warm the function once (the warm path is what the comparison is about; cold start is measured apart)
        warm = cluster.add_node(pool="bench")
        body, headers = delivery("binary", log_entry("preempted", instance=warm.name, instance_id=warm.instance_id))
        server.post(body, headers)
        for round_no in range(args.rounds):
            node_ours, uids_ours = build_node(cluster, shared, label=f"o{round_no}")
            node_kubectl, uids_kubectl = build_node(cluster, shared, label=f"k{round_no}")
            time.sleep(1.0)  # let controllers settle (PDB status) on both alike

            body, headers = delivery(
                "binary", log_entry("delete", instance=node_ours.name, instance_id=node_ours.instance_id)
            )
            started = time.perf_counter()
            response = server.post(body, headers)
            assert response.status_code == 200, response.text
            ours.append(observer.last_gone(uids_ours, timeout=120) - started)

            started = time.perf_counter()
            result = subprocess.run(
                [
                    kubectl,
                    "--kubeconfig",
                    str(kubeconfig),
                    "drain",
                    node_kubectl.name,
                    "--ignore-daemonsets",
                    "--delete-emptydir-data",
                    "--force",
                    "--timeout=120s",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr[-2000:]
            theirs.append(observer.last_gone(uids_kubectl, timeout=120) - started)
            print(f"  round {round_no + 1}: ours {ours[-1]:.3f} s, kubectl drain {theirs[-1]:.3f} s", flush=True)
    finally:
        observer.stop()
        server.stop()
        cluster.cleanup()
    return ours, theirs


def cordon_latency(args: argparse.Namespace, env: Env) -> list[float]:
    plane, api, kubelet, metadata, workdir = env.plane, env.api, env.kubelet, env.metadata, env.workdir
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "bench-cordon"}})
    cluster = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="bench-cordon")
    server = FunctionServer(
        target="on_node_event",
        signature="cloudevent",
        env=function_env(plane, metadata),
        log_path=workdir / "function-cordon.log",
    )
    observer = CordonObserver(api)
    latencies = []
    try:
        nodes = [cluster.add_node(pool="cordon") for _ in range(args.events + 1)]
        for index, node in enumerate(nodes):
            body, headers = delivery("binary", log_entry("preempted", instance=node.name, instance_id=node.instance_id))
            started = time.perf_counter()
            server.post(body, headers)
            name = node.name
            if not wait_until(lambda: name in observer.cordoned, timeout=10, interval=0.005):  # noqa: B023
                raise RuntimeError(f"{node.name} was never cordoned")
            if index:  # the first event warms the instance up
                latencies.append(observer.cordoned[node.name] - started)
    finally:
        observer.stop()
        server.stop()
        cluster.cleanup()
    return latencies


COLD_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import functions_framework
t1 = time.perf_counter()
app = functions_framework.create_app(target="on_node_event", source="main.py", signature_type="cloudevent")
t2 = time.perf_counter()
body, headers = json.loads(sys.argv[1])
response = app.test_client().post("/", data=body.encode(), headers=headers)
t3 = time.perf_counter()
assert response.status_code == 200, response.data
print(json.dumps({"framework": t1 - t0, "import": t2 - t1, "first_event": t3 - t2}))
"""


def cold_start(args: argparse.Namespace, env: Env) -> list[dict[str, float]]:
    plane, api, kubelet, metadata = env.plane, env.api, env.kubelet, env.metadata
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "bench-cold"}})
    cluster = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="bench-cold")
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_"))},
        **function_env(plane, metadata),
    }
    runs = []
    try:
        for _ in range(args.cold_runs):
            node = cluster.add_node(pool="cold")
            body, headers = delivery("binary", log_entry("preempted", instance=node.name, instance_id=node.instance_id))
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-c", COLD_PROBE, json.dumps([body.decode(), headers])],
                cwd=REPO,
                env=child_env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - started
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:])
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            figures["process"] = wall
            runs.append(figures)
    finally:
        cluster.cleanup()
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="110-pod drains per tool")
    parser.add_argument("--events", type=int, default=30, help="warm events for the cordon latency")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters for the cold start")
    parser.add_argument(
        "--deletion-delay",
        type=float,
        default=0.2,
        help="seconds the kubelet stand-in takes to finish a graceful deletion",
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp,
        environment(args.deletion_delay, Path(tmp)) as env,
    ):
        print(
            f"control plane {env.plane.assets.directory.parent.name}; kubelet stand-in finishes deletions after "
            f"{args.deletion_delay:g} s",
            flush=True,
        )
        print("drain of a 110-pod node (event/command start -> last evictable pod gone):", flush=True)
        ours, theirs = drain_comparison(args, env)
        latencies = cordon_latency(args, env)
        cold = cold_start(args, env)
    ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
    ratio = ours_med / theirs_med
    p50 = statistics.median(latencies) * 1000
    p90 = statistics.quantiles(latencies, n=10)[-1] * 1000 if len(latencies) >= 10 else max(latencies) * 1000
    cold_total = statistics.median(c["import"] + c["first_event"] for c in cold)
    with_framework = statistics.median(c["framework"] + c["import"] + c["first_event"] for c in cold)
    print()
    print(
        f"drain 110 pods:      ours {ours_med:.3f} s   kubectl drain {theirs_med:.3f} s   ratio {ratio:.2f}"
        f" (target <= 0.40)   [{'met' if ratio <= 0.4 else 'NOT met'}]"
    )
    print(
        f"event -> cordoned:   p50 {p50:.1f} ms   p90 {p90:.1f} ms over {len(latencies)} warm events"
        f" (target p50 < 100 ms)   [{'met' if p50 < 100 else 'NOT met'}]"
    )
    print(
        f"cold start:          import of main {statistics.median(c['import'] for c in cold):.3f} s + first event "
        f"{statistics.median(c['first_event'] for c in cold):.3f} s = {cold_total:.3f} s (target < 1 s)"
        f"   [{'met' if cold_total < 1 else 'NOT met'}]"
    )
    print(
        f"                     with functions-framework's own import "
        f"{statistics.median(c['framework'] for c in cold):.3f} s: {with_framework:.3f} s; "
        f"whole interpreter process {statistics.median(c['process'] for c in cold):.3f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
