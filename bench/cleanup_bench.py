"""Benchmark: finished-Job cleanup of 10,000 Jobs (with their pods) across 20 namespaces.

    python -m bench.cleanup_bench [--jobs 10000] [--namespaces 20]     (or: make bench)
    python -m bench.cleanup_bench --jobs 200 --namespaces 4              (a quick check of the script)
    python -m bench.cleanup_bench --without-sequential                   (ours, the TTL controller, the floor)

Builds the same data set four times on its own control plane and times, in the same run:
- ours: the scheduled cleanup (the cleanup engine through the Operations use case) in a fresh process,
  whose peak RSS is measured too (target < 150 MB);
- two sequential baselines: a list of all Jobs, then one delete at a time (Background propagation),
  with the kubernetes client's typed API and with the project's own JSON client;
- Kubernetes' TTL-after-finished controller: the same Jobs carrying ``ttlSecondsAfterFinished``
  (3600 s, our default TTL for succeeded Jobs; ours leaves such Jobs to that controller), with a
  kube-controller-manager that runs only that controller (its default concurrency, 5 workers)
  started when the clock starts. The main controller-manager does not run it, so nothing touches
  those Jobs before.
Every run is timed to the last Job gone and to the last pod gone, by the same watches (Jobs and
pods, by UID); ours and the baselines also to the end of the client (ours: the whole cleanup run,
its pod sweep included; a baseline: its last delete accepted). Each run starts once the garbage
collector has removed the pods of the run before it. Every wait is bounded (``--timeout``):
a run that does not finish is reported with what remained, and the next run starts.

It also prints the CPU each Job cost, per process (the cleanup client, kube-apiserver, etcd,
kube-controller-manager), while the clock ran and until the garbage collector had removed the
Jobs' pods, and from that the fastest any client could go on this machine: the server-side CPU of
all the Jobs divided by the number of cores (the floor). Targets: ours within 1.25x of the floor and
no slower than the TTL controller (to the last Job and to the last pod), peak RSS under 150 MB.
The machine's load is printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

from bench.common import Gone, Vanishing, machine_load
from tests.controlplane.clients import api_client, apply_rbac
from tests.controlplane.cluster import TestCluster, wait_until
from tests.controlplane.harness import CONTROLLERS, ControlPlane
from tests.controlplane.kubelet import EXIT_ANNOTATION, KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer
from tests.support.server import cluster_entry

REPO = Path(__file__).resolve().parents[1]


class Loader:
    """Creates finished Jobs and their finished pods fast, straight through the REST API."""

    def __init__(self, plane: ControlPlane, node: str) -> None:
        self.plane = plane
        self.node = node
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {plane.admin.token}"
        self.ca = str(plane.ca_file)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.session.mount("https://", adapter)

    def _call(self, method: str, path: str, body: Any, content_type: str = "application/json") -> Any:
        for attempt in range(50):
            response = self.session.request(
                method,
                self.plane.url + path,
                data=json.dumps(body),
                headers={"Content-Type": content_type},
                timeout=60,
                verify=self.ca,
            )
            if response.status_code < 300:
                return response.json()
            if response.status_code in (409, 422, 429, 500, 503) and attempt < 49:
                time.sleep(0.2)
                continue
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        raise RuntimeError("unreachable")

    def one(self, namespace: str, name: str, finished: str, ttl: int | None) -> tuple[str, str]:
        """One finished Job with its finished pod; returns their UIDs."""
        job = self._call(
            "POST",
            f"/apis/batch/v1/namespaces/{namespace}/jobs",
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name},
                "spec": {
                    "parallelism": 0,
                    "completions": 1,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}},
                    **({"ttlSecondsAfterFinished": ttl} if ttl is not None else {}),
                },
            },
        )
        status = {
            "status": {
                "succeeded": 1,
                "completionTime": (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": finished, "lastProbeTime": finished}
                    for t in ("SuccessCriteriaMet", "Complete")
                ],
            }
        }
        # 422 until the Job controller has recorded startTime: _call retries
        self._call(
            "PATCH", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status", status, "application/merge-patch+json"
        )
        uid = job["metadata"]["uid"]
        pod = self._call(
            "POST",
            f"/api/v1/namespaces/{namespace}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-pod",
                    "labels": {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name},
                    "annotations": {EXIT_ANNOTATION: "0"},
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": name,
                            "uid": uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {"nodeName": self.node, "restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]},
            },
        )
        return uid, str(pod["metadata"]["uid"])

    def build(self, prefix: str, jobs: int, namespaces: int, ttl: int | None = None) -> DataSet:
        names = [f"{prefix}-{i:02d}" for i in range(namespaces)]
        for ns in names:
            self._call(
                "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        finished = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        work = [(names[i % namespaces], f"job-{i:05d}") for i in range(jobs)]
        with ThreadPoolExecutor(max_workers=24) as pool:
            made = list(pool.map(lambda item: self.one(item[0], item[1], finished, ttl), work))
        return DataSet(
            namespaces=names,
            jobs={job: f"{ns}/{name}" for (ns, name), (job, _) in zip(work, made, strict=True)},
            pods={pod: f"{ns}/{name}-pod" for (ns, name), (_, pod) in zip(work, made, strict=True)},
        )


@dataclass(frozen=True)
class DataSet:
    namespaces: list[str]
    jobs: dict[str, str]  # uid -> namespace/name
    pods: dict[str, str]


def run_ours(plane: ControlPlane, metadata: FakeMetadataServer, namespaces: list[str], workdir: Path) -> dict[str, Any]:
    """The cleanup in a fresh process, as a function instance runs it; returns its report and peak RSS."""
    probe = (
        "import json, sys, threading, time\n"
        "def vm(field):\n"
        "    # /proc, not getrusage: ru_maxrss survives fork+exec and would report the parent's size\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(field + ':'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "    return 0.0\n"
        "rss = []\n"
        "def sample():\n"
        "    while True:\n"
        "        rss.append(round(vm('VmRSS')))\n"
        "        time.sleep(1)\n"
        "threading.Thread(target=sample, daemon=True).start()\n"
        "from datetime import UTC, datetime\n"
        "from functions.usecases.operations import Operations\n"
        "from functions.usecases.runtime import Runtime\n"
        "service = Runtime.from_environment()\n"
        "ops = Operations(service)\n"
        "t, cpu = time.perf_counter(), time.process_time()\n"
        "cluster = service.settings.clusters[0]\n"
        "report = ops.cleanup(cluster, dry_run=False, audit=service.audit, now=datetime.now(UTC))\n"
        "report['seconds'] = time.perf_counter() - t\n"
        "report['peak_rss_mb'] = vm('VmHWM')\n"
        "report['cpu_seconds'] = time.process_time() - cpu\n"
        "report['rss_samples_mb'] = rss[::5]\n"
        "print(json.dumps(report), file=sys.stderr)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DRAINER_", "GOOGLE_"))},
        **metadata.environ(),
        "DRAINER_CLUSTERS": json.dumps([cluster_entry(plane, name="bench")]),
        "DRAINER_CLEANUP_NAMESPACES": ",".join(namespaces),
        "DRAINER_CLEANUP_BUDGET_SECONDS": "3000",
    }
    with open(workdir / "ours-audit.log", "wb") as out:
        result = subprocess.run(
            [sys.executable, "-c", probe], cwd=REPO, env=env, stdout=out, stderr=subprocess.PIPE, text=True, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    report: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    return report


SERVER_PROCESSES = ("kube-apiserver", "etcd", "kube-controller-manager")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU of the control plane's processes and of a run's client, per Job, in two windows: while the
    clock ran, and until the garbage collector had removed the Jobs' pods (the whole cost)."""

    def __init__(self, plane: ControlPlane, idle_seconds: float = 15.0) -> None:
        self.pids = {name: plane.procs[name].pid for name in SERVER_PROCESSES}
        # what the control plane burns with nothing to do (controllers' resyncs, leases, etcd):
        # subtracted from every window, so the figures per Job are what the Jobs cost
        before, started = self.snapshot(), time.perf_counter()
        time.sleep(idle_seconds)
        after, elapsed = self.snapshot(), time.perf_counter() - started
        self.idle = {name: (after[name] - before[name]) / elapsed for name in self.pids}

    def snapshot(self) -> dict[str, float]:
        return {name: process_cpu(pid) for name, pid in self.pids.items()}

    def measure(
        self,
        run: Callable[[], tuple[float, int, float]],
        data: DataSet,
        watches: tuple[Vanishing, Vanishing],
        timeout: float,
    ) -> dict[str, Any]:
        """``run`` returns (seconds to its own end, Jobs deleted, client CPU seconds); then the Jobs and
        the pods of ``data`` are awaited (bounded by ``timeout`` from the start) by the watches."""
        jobs_watch, pods_watch = watches
        before = self.snapshot()
        started = time.perf_counter()
        seconds, deleted, client_cpu = run()
        clocked, clocked_at = self.snapshot(), time.perf_counter()

        def left() -> float:
            return max(1.0, timeout - (time.perf_counter() - started))

        jobs_gone = jobs_watch.await_gone(data.jobs, timeout=left())
        pods_gone = pods_watch.await_gone(data.pods, timeout=left())
        after, until_pods_gone = self.snapshot(), time.perf_counter() - started
        per_job = 1000 / max(deleted, 1)

        def net_ms(end: dict[str, float], elapsed: float) -> dict[str, float]:
            return {n: (end[n] - before[n] - self.idle[n] * elapsed) * per_job for n in self.pids}

        def since(gone: Gone) -> float | None:
            return None if gone.last is None else gone.last - started

        return {
            "seconds": seconds,
            "deleted": deleted,
            "jobs_gone": since(jobs_gone),
            "pods_gone": since(pods_gone),
            "remaining": [f"Jobs: {jobs_gone.describe()}"] * bool(jobs_gone.remaining)
            + [f"pods: {pods_gone.describe()}"] * bool(pods_gone.remaining),
            "until_pods_gone": until_pods_gone,
            "client_ms": client_cpu * per_job,
            "clocked_ms": net_ms(clocked, clocked_at - started),
            "total_ms": net_ms(after, until_pods_gone),
            # cores kept busy while the clock ran, by the client and the control plane together
            "busy_cores": (client_cpu + sum(clocked[n] - before[n] for n in self.pids)) / max(seconds, 1e-9),
        }


def cpu_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    header = f"  {'CPU per Job (ms)':<34}{'client':>8}" + "".join(f"{n:>24}" for n in SERVER_PROCESSES)
    lines = [header + f"{'cores busy':>12}"]
    for label, row in rows.items():
        cells = "".join(f"{row['clocked_ms'][n]:>12.2f} ({row['total_ms'][n]:>6.2f})  " for n in SERVER_PROCESSES)
        lines.append(f"  {label:<34}{row['client_ms']:>8.2f}  {cells}{row['busy_cores']:>8.2f}")
    lines.append("  (server columns: while the clock ran; in brackets, until the garbage collector removed the pods)")
    return lines


TTL_CONTROLLER_MANAGER = "kube-controller-manager-ttl"


def run_ttl_controller(
    plane: ControlPlane, data: DataSet, jobs_watch: Vanishing, timeout: float
) -> tuple[float, int, float]:
    """Kubernetes' TTL-after-finished controller alone, in a controller-manager started now (the clock
    runs from before its start: its informers' sync is part of its time)."""
    started = time.perf_counter()
    proc = plane.start_controller_manager(TTL_CONTROLLER_MANAGER, ("ttl-after-finished-controller",))
    gone = jobs_watch.await_gone(data.jobs, timeout=timeout)
    cpu = process_cpu(proc.pid)
    deleted = sum(1 for uid in data.jobs if uid in jobs_watch.deleted)
    return (gone.last or time.perf_counter()) - started, deleted, cpu


def run_baseline(plane: ControlPlane, namespaces: list[str]) -> tuple[float, int]:
    """The script an SRE writes first: the kubernetes client's typed API, one list of all Jobs,
    then one delete at a time (Background propagation, so the pods go too)."""
    batch = client.BatchV1Api(api_client(plane, plane.admin))
    wanted = set(namespaces)
    started = time.perf_counter()
    deleted = 0
    for job in batch.list_job_for_all_namespaces().items:
        finished = any(c.type in ("Complete", "Failed") and c.status == "True" for c in job.status.conditions or [])
        if str(job.metadata.namespace) in wanted and finished:
            batch.delete_namespaced_job(job.metadata.name, job.metadata.namespace, propagation_policy="Background")
            deleted += 1
    return time.perf_counter() - started, deleted


def run_sequential_raw(plane: ControlPlane, metadata: FakeMetadataServer, namespaces: list[str]) -> tuple[float, int]:
    """The same sequential loop through the project's own JSON client (the Kubernetes gateway), for reference."""
    os.environ.update(metadata.environ())
    from functions.decisions.settings import ClusterConfig
    from functions.gateways.kube.client import ClusterClient

    cluster = ClusterConfig(
        name="bench", project=plane.project, location="europe-west4", endpoint=plane.url, ca_file=str(plane.ca_file)
    )
    kube = ClusterClient(cluster, timeout=60)
    wanted = set(namespaces)
    started = time.perf_counter()
    jobs, _ = kube.list_jobs(limit=0, token=None)
    deleted = sum(1 for job in jobs if job.namespace in wanted and job.finished and kube.delete_job(job))
    return time.perf_counter() - started, deleted


def _s(value: float | None) -> str:
    return "no figure" if value is None else f"{value:.2f} s"


def _verdict(met: bool) -> str:
    return "[met]" if met else "[NOT met]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds a run may take until its last pod is gone"
    )
    parser.add_argument(
        "--without-sequential",
        action="store_true",
        help="skip the two sequential baselines (half the data to build): ours, the TTL controller and the floor",
    )
    args = parser.parse_args(argv)
    import tempfile

    print(machine_load("at the start"), flush=True)
    rows: dict[str, dict[str, Any]] = {}
    ours_report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cleanup-bench-") as tmp:
        # the TTL controller runs only in its own controller-manager, started when its clock starts
        plane = ControlPlane(controllers=tuple(c for c in CONTROLLERS if c != "ttl-after-finished-controller"))
        plane.start()
        api = api_client(plane, plane.admin, pool_size=64)
        kubelet = KubeletStandIn(api, heartbeat_interval=10.0, workers=16).start()
        metadata = FakeMetadataServer(
            project=plane.project, email=plane.drainer_user, tokens=[i.token for i in plane.drainer_identities]
        ).start()
        watches: list[Vanishing] = []
        try:
            apply_rbac(api, plane.drainer_user)
            node = TestCluster(api=api, kubelet=kubelet, project=plane.project, namespace="default").add_node(
                pool="jobs"
            )
            loader = Loader(plane, node.name)
            sets = 2 if args.without_sequential else 4
            print(
                f"building {sets} x {args.jobs} finished Jobs with their pods in {args.namespaces} namespaces each ...",
                flush=True,
            )
            t = time.perf_counter()
            ours_set = loader.build("ours", args.jobs, args.namespaces)
            base_set = raw_set = None
            if not args.without_sequential:
                base_set = loader.build("base", args.jobs, args.namespaces)
                raw_set = loader.build("raw", args.jobs, args.namespaces)
            ttl_set = loader.build("ttl", args.jobs, args.namespaces, ttl=3600)
            core = client.CoreV1Api(api)
            if not wait_until(
                lambda: not core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded", limit=1).items,
                timeout=900,
                interval=1,
            ):
                print("  (warning: some pods had not finished after 900 s; the runs start anyway)", flush=True)
            # A real kubelet watches only its own node's pods: the stand-in's cluster-wide watch is
            # not part of the workload being measured, so it stops once every pod has finished.
            kubelet.stop()
            print(f"  built in {time.perf_counter() - t:.0f} s   ({machine_load('now')})", flush=True)
            meter = CpuMeter(plane)
            jobs_watch = Vanishing(plane, "/apis/batch/v1/jobs")
            pods_watch = Vanishing(plane, "/api/v1/pods")
            watches = [jobs_watch, pods_watch]

            def ours_run() -> tuple[float, int, float]:
                report = run_ours(plane, metadata, ours_set.namespaces, Path(tmp))
                ours_report.update(report)
                return report["seconds"], report["deleted_jobs"], report["cpu_seconds"]

            def client_run(run: Callable[[], tuple[float, int]]) -> Callable[[], tuple[float, int, float]]:
                def timed() -> tuple[float, int, float]:
                    cpu = time.thread_time()  # the client runs in this thread; the watches in others
                    seconds, deleted = run()
                    return seconds, deleted, time.thread_time() - cpu

                return timed

            runs: dict[str, tuple[Callable[[], tuple[float, int, float]], DataSet]] = {"ours": (ours_run, ours_set)}
            if base_set is not None and raw_set is not None:
                base_ns, raw_ns = base_set.namespaces, raw_set.namespaces
                runs["sequential baseline (typed API)"] = (
                    client_run(lambda: run_baseline(plane, base_ns)),
                    base_set,
                )
                runs["sequential, our JSON client"] = (
                    client_run(lambda: run_sequential_raw(plane, metadata, raw_ns)),
                    raw_set,
                )
            runs["TTL-after-finished controller"] = (
                lambda: run_ttl_controller(plane, ttl_set, jobs_watch, args.timeout),
                ttl_set,
            )
            for label, (run, data) in runs.items():
                print(f"  {label} ...", flush=True)
                try:
                    rows[label] = meter.measure(run, data, (jobs_watch, pods_watch), args.timeout)
                except Exception as exc:  # report, and go on with the next run
                    print(f"    failed: {type(exc).__name__}: {str(exc)[-1500:]}", flush=True)
                    continue
                finally:
                    if TTL_CONTROLLER_MANAGER in plane.procs:
                        plane.stop_process(TTL_CONTROLLER_MANAGER)
                row = rows[label]
                print(
                    f"    last Job gone {_s(row['jobs_gone'])}, last pod gone {_s(row['pods_gone'])}"
                    f"   ({machine_load('now')})",
                    flush=True,
                )
                for what in row["remaining"]:
                    print(f"    not finished within {args.timeout:.0f} s: {what}", flush=True)
        finally:
            for watch in watches:
                watch.stop()
            kubelet.stop()
            metadata.stop()
            plane.stop()
    print(machine_load("at the end"), flush=True)
    print()
    report_figures(args, rows, ours_report, meter)
    return 0


def report_figures(
    args: argparse.Namespace, rows: dict[str, dict[str, Any]], ours_report: dict[str, Any], meter: CpuMeter
) -> None:
    ours = rows.get("ours")
    base = rows.get("sequential baseline (typed API)")
    raw = rows.get("sequential, our JSON client")
    ttl = rows.get("TTL-after-finished controller")
    cores = os.cpu_count() or 1
    print(f"cleanup of {args.jobs} finished Jobs with their pods ({args.namespaces} namespaces):")
    print(f"  {'':<34}{'client finished':>22}{'last Job gone':>16}{'last pod gone':>16}")
    for label, row in rows.items():
        accepted = "" if row is ttl else _s(row["seconds"])
        print(f"  {label:<34}{accepted:>22}{_s(row['jobs_gone']):>16}{_s(row['pods_gone']):>16}")
    if ours is None:
        print("  (our run failed: no ratios)")
        return
    print(
        f"  ours: {ours_report['deleted_jobs']} deleted, {ours_report['jobs_seen']} seen, "
        f"complete={ours_report['complete']}"
        + (f"; sequential baseline {base['deleted']} deleted" if base else "")
        + (f"; TTL controller {ttl['deleted']} gone" if ttl else "")
    )
    server_ms = sum(ours["total_ms"].values())
    floor = ours["deleted"] * server_ms / 1000 / (cores - sum(meter.idle.values()))
    print()
    if ours["pods_gone"] is not None:
        ratio = ours["pods_gone"] / floor
        print(
            f"ours against the machine's floor ({floor:.2f} s, below): last pod gone {ours['pods_gone']:.2f} s, "
            f"ratio {ratio:.2f} (target <= 1.25)   {_verdict(ratio <= 1.25)}"
        )
    if ttl is not None:
        for key, what in (("jobs_gone", "last Job gone"), ("pods_gone", "last pod gone")):
            if ours[key] is None or ttl[key] is None:
                print(f"ours against the TTL controller, {what}: no figure")
                continue
            ratio = ours[key] / ttl[key]
            print(
                f"ours against the TTL-after-finished controller, {what}: {ours[key]:.2f} s vs {ttl[key]:.2f} s, "
                f"ratio {ratio:.2f} (target <= 1.00, no slower)   {_verdict(ratio <= 1.0)}"
            )
    print(
        f"peak RSS of our cleanup process: {ours_report['peak_rss_mb']:.0f} MB (target < 150 MB)   "
        f"{_verdict(ours_report['peak_rss_mb'] < 150)}"
    )
    print(f"  RSS of our cleanup process every 5 s (MB): {ours_report['rss_samples_mb']}")
    for label, ref in (("sequential baseline (typed API)", base), ("sequential, our JSON client", raw)):
        if ref is not None:
            print(
                f"for reference, {label}: to the end of the client {ref['seconds'] / ours['seconds']:.1f}x ours"
                + (
                    f", to the last pod gone {ref['pods_gone'] / ours['pods_gone']:.1f}x"
                    if ref["pods_gone"] and ours["pods_gone"]
                    else ""
                )
            )
    print()
    print("\n".join(cpu_table(rows)))
    idle = sum(meter.idle.values())
    print("  (the TTL controller's client column is its controller-manager's CPU, informer sync included)")
    print(f"  (net of what the idle control plane burns: {idle:.2f} cores, measured for 15 s before the runs)")
    print(
        f"  the machine's floor: the API server, etcd and the controller-manager spent {server_ms:.2f} ms of CPU per "
        f"Job of ours, its pod's removal included.\n  On {cores} cores less the idle load, removing "
        f"{ours['deleted']} Jobs with their pods takes at least {floor:.2f} s even with a client that costs nothing."
    )
    print(f"(this benchmark process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    raise SystemExit(main())
