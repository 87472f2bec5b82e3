"""Benchmark: our event-driven drain against `kubectl drain` on identical 110-pod nodes, same run.

    python -m bench.drain_bench [--rounds 3] [--deletion-delay 0.2]     (or: make bench)
    python -m bench.drain_bench --quick                                  (one round, a check of the script)

Starts its own control plane (the test harness), serves main.py's on_node_event under
functions-framework as the drainer user, and prints:
- drain of a 110-pod node, from the event POST (or the kubectl start) to the last evictable pod
  gone, for both tools and the ratio (target <= 0.4);
- the machine's floor for that drain: the same node emptied by deleting every evictable pod at once
  (32 deletes in flight, default grace, the kubelet stand-in finishing them), and our ratio to it
  (target <= 1.5);
- warm event -> node cordoned latency, p50 and p90 (target p50 < 100 ms);
- cold start: a new interpreter process running functions-framework, importing main and handling
  its first event, broken down (target < 1 s in all).
All drains are timed by the same observer: a watch on all pods, by UID. Every wait is bounded: a
drain that does not finish in time is reported with the pods that remained, and the next round
runs. The machine's load is printed at the start and at the end.
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiException

from bench.common import Gone, Vanishing, machine_load
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


def build_node(cluster: TestCluster, shared: Shared, *, label: str) -> tuple[NodeInfo, dict[str, str]]:
    """A 110-pod node: 3 DaemonSet, 50 ReplicaSet (2 of 5 sets behind PDBs with budget),
    10 StatefulSet, 15 emptyDir, 17 bare and 15 completed pods. Returns (node, evictable pods:
    UID -> namespace/name)."""
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
        p.metadata.uid: f"{p.metadata.namespace}/{p.metadata.name}"
        for p in pods
        if not any(o.kind == "DaemonSet" for o in p.metadata.owner_references or [])
    }
    assert len(evictable) == 107, len(evictable)
    return info, evictable


class CordonObserver:
    """Watches nodes; records when each first becomes unschedulable."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.cordoned: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cordon-observer", daemon=True)
        self._thread.start()
        time.sleep(0.3)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(self.core.list_node, timeout_seconds=5):
                    node = event["object"]
                    if node.spec.unschedulable:
                        self.cordoned.setdefault(node.metadata.name, time.perf_counter())
                    if self._stop.is_set():
                        return
            except Exception:  # a dropped stream: watch again (quietly, also once stopped)
                time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


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


@dataclass
class Drains:
    """Seconds per round for each way of emptying a node; a round that failed or timed out has none."""

    ours: list[float]
    kubectl: list[float]
    floor: list[float]
    failures: list[str]


def _timed(gone: Gone, started: float, what: str, drains: Drains) -> float | None:
    if gone.last is None:
        drains.failures.append(f"{what}: not drained within the bound: {gone.describe()}")
        print(f"    {drains.failures[-1]}", flush=True)
        return None
    return gone.last - started


def delete_all(core: client.CoreV1Api, pods: dict[str, str]) -> None:
    """The floor: every evictable pod deleted at once (default grace; UID precondition), 32 in flight."""

    def one(item: tuple[str, str]) -> None:
        uid, ref = item
        namespace, name = ref.split("/", 1)
        try:
            core.delete_namespaced_pod(
                name, namespace, body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(one, pods.items()))


def drain_comparison(args: argparse.Namespace, env: Env) -> Drains:
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
    drains = Drains(ours=[], kubectl=[], floor=[], failures=[])
    bound = args.drain_timeout
    observer: Vanishing | None = None
    try:
        observer = Vanishing(plane, "/api/v1/pods")
        # warm the function once (the warm path is what the comparison is about; cold start is measured apart)
        warm = cluster.add_node(pool="bench")
        body, headers = delivery("binary", log_entry("preempted", instance=warm.name, instance_id=warm.instance_id))
        server.post(body, headers)
        for round_no in range(args.rounds):
            try:
                node_ours, pods_ours = build_node(cluster, shared, label=f"o{round_no}")
                node_kubectl, pods_kubectl = build_node(cluster, shared, label=f"k{round_no}")
                node_floor, pods_floor = build_node(cluster, shared, label=f"f{round_no}")
            except (AssertionError, ApiException, RuntimeError) as exc:
                drains.failures.append(f"round {round_no + 1}: the nodes could not be built: {exc}")
                print(f"  round {round_no + 1}: skipped, {drains.failures[-1]}", flush=True)
                continue
            for pods in (pods_ours, pods_kubectl, pods_floor):
                observer.track(pods)
            time.sleep(1.0)  # let controllers settle (PDB status) on all alike
            figures: dict[str, float | None] = {}

            body, headers = delivery(
                "binary", log_entry("delete", instance=node_ours.name, instance_id=node_ours.instance_id)
            )
            started = time.perf_counter()
            try:
                response = server.post(body, headers, timeout=bound)
                answered = f"HTTP {response.status_code}" if response.status_code != 200 else ""
            except OSError as exc:  # requests' errors are OSErrors: a timeout, a reset
                answered = f"no answer: {exc}"
            if answered:
                drains.failures.append(f"round {round_no + 1}, ours: the function answered {answered}")
                print(f"    {drains.failures[-1]}", flush=True)
            figures["ours"] = _timed(
                observer.await_gone(pods_ours, timeout=max(1.0, bound - (time.perf_counter() - started))),
                started,
                f"round {round_no + 1}, ours",
                drains,
            )

            started = time.perf_counter()
            command = [
                kubectl,
                "--kubeconfig",
                str(kubeconfig),
                "drain",
                node_kubectl.name,
                "--ignore-daemonsets",
                "--delete-emptydir-data",
                "--force",
                f"--timeout={int(bound)}s",
            ]
            try:
                result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=bound + 30)
                if result.returncode != 0:
                    drains.failures.append(
                        f"round {round_no + 1}, kubectl: exit {result.returncode}: {result.stderr.strip()[-500:]}"
                    )
                    print(f"    {drains.failures[-1]}", flush=True)
            except subprocess.TimeoutExpired:
                drains.failures.append(f"round {round_no + 1}, kubectl: still running after {bound + 30:.0f} s")
                print(f"    {drains.failures[-1]}", flush=True)
            figures["kubectl"] = _timed(
                observer.await_gone(pods_kubectl, timeout=max(1.0, bound - (time.perf_counter() - started))),
                started,
                f"round {round_no + 1}, kubectl drain",
                drains,
            )

            core.patch_node(node_floor.name, {"spec": {"unschedulable": True}})  # as both tools do first
            started = time.perf_counter()
            try:
                delete_all(core, pods_floor)
            except ApiException as exc:
                drains.failures.append(f"round {round_no + 1}, floor: a delete failed: {exc.status} {exc.reason}")
                print(f"    {drains.failures[-1]}", flush=True)
            figures["floor"] = _timed(
                observer.await_gone(pods_floor, timeout=max(1.0, bound - (time.perf_counter() - started))),
                started,
                f"round {round_no + 1}, floor",
                drains,
            )
            for name, seconds in figures.items():
                if seconds is not None:
                    getattr(drains, name).append(seconds)
            shown = ", ".join(
                f"{name} {'-' if seconds is None else f'{seconds:.3f} s'}" for name, seconds in figures.items()
            )
            print(f"  round {round_no + 1}: {shown}   ({machine_load('now')})", flush=True)
    finally:
        if observer is not None:
            observer.stop()
        server.stop()
        cluster.cleanup()
    return drains


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
                print(f"    event {index}: {node.name} was not cordoned within 10 s; next event", flush=True)
                continue
            if index:  # the first event warms the instance up
                latencies.append(observer.cordoned[node.name] - started)
    finally:
        observer.stop()
        server.stop()
        cluster.cleanup()
    return latencies


COLD_PROBE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()  # CLOCK_MONOTONIC: comparable with the parent's clock
import functions_framework
t1, c1 = time.perf_counter(), time.process_time()
app = functions_framework.create_app(target="on_node_event", source="main.py", signature_type="cloudevent")
t2, c2 = time.perf_counter(), time.process_time()
body, headers = json.loads(sys.argv[1])
response = app.test_client().post("/", data=body.encode(), headers=headers)
t3, c3 = time.perf_counter(), time.process_time()
assert response.status_code == 200, response.data
print(json.dumps({
    "t0": t0, "framework": t1 - t0, "import": t2 - t1, "first_event": t3 - t2, "t3": t3,
    "cpu_interpreter": c0, "cpu_framework": c1 - c0, "cpu_import": c2 - c1, "cpu_first_event": c3 - c2,
}))
"""


def cold_start(args: argparse.Namespace, env: Env) -> list[dict[str, float]]:
    """New interpreter processes, each importing functions-framework and main and handling one event:
    interpreter start (spawn to the probe's first line), framework import, import of main, first event."""
    plane, api, kubelet, metadata = env.plane, env.api, env.kubelet, env.metadata
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "bench-cold"}})
    cluster = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="bench-cold")
    child_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_"))},
        **function_env(plane, metadata),
    }
    runs = []
    try:
        for run in range(args.cold_runs):
            node = cluster.add_node(pool="cold")
            body, headers = delivery("binary", log_entry("preempted", instance=node.name, instance_id=node.instance_id))
            started = time.perf_counter()
            try:
                result = subprocess.run(
                    [sys.executable, "-c", COLD_PROBE, json.dumps([body.decode(), headers])],
                    cwd=REPO,
                    env=child_env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=60,
                )
            except subprocess.TimeoutExpired:
                print(f"    cold start {run + 1}: no answer within 60 s; next run", flush=True)
                continue
            if result.returncode != 0:
                print(f"    cold start {run + 1} failed: {result.stderr.strip()[-1500:]}", flush=True)
                continue
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            figures["interpreter"] = figures["t0"] - started
            figures["total"] = figures["t3"] - started
            figures["cpu_total"] = sum(
                figures[f"cpu_{part}"] for part in ("interpreter", "framework", "import", "first_event")
            )
            runs.append(figures)
    finally:
        cluster.cleanup()
    return runs


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _verdict(met: bool) -> str:
    return "[met]" if met else "[NOT met]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="110-pod drains per way of draining")
    parser.add_argument("--events", type=int, default=30, help="warm events for the cordon latency")
    parser.add_argument("--cold-runs", type=int, default=5, help="new interpreter processes for the cold start")
    parser.add_argument("--quick", action="store_true", help="1 round, 5 warm events, 2 cold starts")
    parser.add_argument(
        "--drain-timeout", type=float, default=180.0, help="seconds a drain may take before the round reports it"
    )
    parser.add_argument(
        "--deletion-delay",
        type=float,
        default=0.2,
        help="seconds the kubelet stand-in takes to finish a graceful deletion",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.events, args.cold_runs = 1, 5, 2
    print(machine_load("at the start"), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="drain-bench-") as tmp,
        environment(args.deletion_delay, Path(tmp)) as env,
    ):
        print(
            f"control plane {env.plane.assets.directory.parent.name}; kubelet stand-in finishes deletions after "
            f"{args.deletion_delay:g} s",
            flush=True,
        )
        print("drain of a 110-pod node (event/command/deletes start -> last evictable pod gone):", flush=True)
        drains = drain_comparison(args, env)
        latencies = cordon_latency(args, env)
        cold = cold_start(args, env)
    print(machine_load("at the end"), flush=True)
    ours_med, theirs_med, floor_med = _median(drains.ours), _median(drains.kubectl), _median(drains.floor)
    print()

    def seconds(value: float | None, count: int) -> str:
        return "no figure" if value is None else f"{value:.3f} s (median of {count})"

    print(
        f"drain 110 pods:      ours {seconds(ours_med, len(drains.ours))}   kubectl drain "
        f"{seconds(theirs_med, len(drains.kubectl))}   floor {seconds(floor_med, len(drains.floor))}"
    )
    if ours_med is not None and theirs_med is not None:
        ratio = ours_med / theirs_med
        print(f"                     ours / kubectl drain {ratio:.2f} (target <= 0.40)   {_verdict(ratio <= 0.4)}")
    if ours_med is not None and floor_med is not None:
        ratio = ours_med / floor_med
        print(
            f"                     ours / floor {ratio:.2f} (target <= 1.5)   {_verdict(ratio <= 1.5)}"
            f"   (kubectl drain / floor {theirs_med / floor_med:.2f})"
            if theirs_med is not None
            else f"                     ours / floor {ratio:.2f} (target <= 1.5)   {_verdict(ratio <= 1.5)}"
        )
    print(
        "                     floor: the same node cordoned, then every evictable pod deleted at once "
        "(32 deletes in flight, no PDB check), timed by the same watch"
    )
    for failure in drains.failures:
        print(f"  (not counted: {failure})")
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p90 = statistics.quantiles(latencies, n=10)[-1] * 1000 if len(latencies) >= 10 else max(latencies) * 1000
        print(
            f"event -> cordoned:   p50 {p50:.1f} ms   p90 {p90:.1f} ms over {len(latencies)} warm events"
            f" (target p50 < 100 ms)   {_verdict(p50 < 100)}"
        )
    else:
        print("event -> cordoned:   no figure (no event was followed by a cordon within 10 s)")
    if cold:
        parts = {
            name: statistics.median(c[name] for c in cold)
            for name in ("interpreter", "framework", "import", "first_event", "total")
        }
        cpu = {
            name: statistics.median(c[f"cpu_{name}"] for c in cold)
            for name in ("interpreter", "framework", "import", "first_event", "total")
        }
        print(
            f"cold start:          new process {parts['interpreter']:.3f} s + functions-framework import "
            f"{parts['framework']:.3f} s + import of main {parts['import']:.3f} s + first event "
            f"{parts['first_event']:.3f} s"
        )
        print(
            f"                     = {parts['total']:.3f} s, spawn to first event handled (median of {len(cold)};"
            f" target < 1 s)   {_verdict(parts['total'] < 1)}"
        )
        print(
            f"                     CPU of that process (what a loaded machine does not inflate): interpreter "
            f"{cpu['interpreter']:.3f} s + framework {cpu['framework']:.3f} s + main {cpu['import']:.3f} s + "
            f"first event {cpu['first_event']:.3f} s = {cpu['total']:.3f} s"
        )
    else:
        print("cold start:          no figure (every run failed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
