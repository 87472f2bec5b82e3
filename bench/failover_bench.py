"""Benchmark: stateful failover after a preemption, three ways side by side in one control plane.

    python -m bench.failover_bench [--cutoff 420] [--shutdown 3] [--only A,B,C]     (or: make bench)

A StatefulSet of 10 replicas, each with a ReadWriteOnce PD volume, runs on 4 nodes of a pool (3
replicas on the node that is preempted, 7 on the other three), plus a spare node of the pool. The
preempted node's kubelet stand-in is killed (its volumes stay listed in use, as a VM that is gone
leaves them), the fake Compute Engine API says STOPPING at once and TERMINATED ``--shutdown``
seconds after the event's delivery (a real preemption's ~30 s shutdown, compressed), and the
preemption LogEntry is delivered as Eventarc does (a binary CloudEvent POST to on_node_event).
Measured, from the delivery to the last of the 3 replacement pods Running with its volume attached
on another node:

- A: this project with the Compute Engine fence and the out-of-service taint (target < 10 s);
- B: this project with only the Node rule (the real node-lifecycle controller's Ready Unknown,
  grace period 50 s as upstream) and no taint: the replacements then wait for Kubernetes' own
  force-detach, 6 minutes after the detach was wanted;
- C: no drainer (Kubernetes' default: the unreachable taint's 300 s toleration, then pods stuck
  terminating on a node that never comes back): its state at ``--cutoff``.

The three run at once in one control plane (the real kube-controller-manager with the node-lifecycle,
attach/detach, StatefulSet and PV controllers; kubelet, scheduler and external-attacher stand-ins),
each in its own namespace and node pool with its own function server; 1 node of 15 is down per
scenario's zone, so the node-lifecycle controller's zone-disruption logic stays in its normal mode.
Every wait is bounded; a scenario that times out prints where its pods and volumes were.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from tests.controlplane.attacher import AttacherStandIn
from tests.controlplane.clients import api_client, apply_rbac
from tests.controlplane.cluster import POOL_LABEL, NodeInfo, TestCluster, wait_until
from tests.controlplane.harness import ControlPlane
from tests.controlplane.kubelet import KubeletStandIn
from tests.controlplane.metadata import FakeMetadataServer
from tests.support.compute import FakeComputeApi
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer, cluster_entry

REPLICAS = 10
ON_VICTIM = 3
OTHER_NODES = 3  # besides the victim, in the StatefulSet's pool; plus one spare node
STS = "db"
TARGET_A = 10.0
NODE_MONITOR_GRACE = 50.0  # kube-controller-manager's default, as on GKE
FORCE_DETACH_AFTER = 360.0  # the attach/detach controller's built-in max wait for unmount (6 min)
# The event is delivered this long after the VM stops: Eventarc's lag, and it puts the event time a
# whole second past the node's last heartbeat (Node condition times are whole seconds), which the
# Node rule needs to tell a heartbeat before the event from one after it.
DELIVERY_LAG = 1.2
OOS_TAINT = "node.kubernetes.io/out-of-service"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    settings: dict[str, str] | None  # the event function's settings; None: no drainer
    timeout: float  # seconds after the delivery
    interval: float  # how often the observer looks


@dataclass
class Setup:
    scenario: Scenario
    cluster: TestCluster
    victim: NodeInfo
    others: list[NodeInfo]
    old_uids: dict[str, str]  # pod name -> UID, for the pods on the victim
    volumes: dict[str, str]  # pod name -> PV name, for the pods on the victim
    server: FunctionServer | None


@dataclass
class Outcome:
    key: str
    recovered: float | None = None  # seconds from the delivery to the last replacement Running with its volume
    per_pod: dict[str, tuple[float, str]] = field(default_factory=dict)  # pod -> (seconds, node)
    milestones: dict[str, float] = field(default_factory=dict)
    response: str = "no drainer"
    state: list[str] = field(default_factory=list)  # where things were at the end, when not recovered


@dataclass
class Env:
    plane: ControlPlane
    api: client.ApiClient
    kubelet: KubeletStandIn
    attacher: AttacherStandIn
    compute: FakeComputeApi
    metadata: FakeMetadataServer
    workdir: Path
    servers: list[FunctionServer] = field(default_factory=list)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"loadavg {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def stamp(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------ environment
def _stand_in_threads() -> list[threading.Thread]:
    """The stand-ins' threads that end on their own once stopped (their watches end with the API server)."""
    watches = ("kubelet-standin-pods", "kubelet-standin-attachments", "attacher-standin")
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(("kubelet-standin", "attacher-standin")) and t.name not in watches
    ]


@contextmanager
def environment(args: argparse.Namespace, workdir: Path) -> Iterator[Env]:
    plane = ControlPlane(node_monitor_grace_period=NODE_MONITOR_GRACE).start()
    api = api_client(plane, plane.admin, pool_size=64)
    kubelet = KubeletStandIn(api, deletion_delay=0.2, heartbeat_interval=5.0, workers=16).start()
    attacher = AttacherStandIn(api, attach_delay=args.attach_delay, detach_delay=args.attach_delay).start()
    compute = FakeComputeApi(project=plane.project)
    metadata = FakeMetadataServer(
        project=plane.project, email=plane.drainer_user, tokens=[i.token for i in plane.drainer_identities]
    ).start()
    apply_rbac(api, plane.drainer_user)
    env = Env(
        plane=plane, api=api, kubelet=kubelet, attacher=attacher, compute=compute, metadata=metadata, workdir=workdir
    )
    try:
        yield env
    finally:
        for server in env.servers:
            server.stop()
        kubelet.stop()
        attacher.stop()
        if not wait_until(lambda: not _stand_in_threads(), timeout=10, interval=0.1):
            print(f"stand-in threads still running: {[t.name for t in _stand_in_threads()]}", flush=True)
        # the stand-ins' watches end when the API server goes; nothing of theirs needs reporting then
        logging.getLogger("urllib3").setLevel(logging.CRITICAL)
        compute.stop()
        metadata.stop()
        plane.stop()
        api.close()


def check_controller_manager(plane: ControlPlane) -> str:
    """The harness must pass nothing that changes Kubernetes' own force-detach (B's figure depends on it)."""
    argv = [str(a) for a in plane.procs["kube-controller-manager"].args]
    flags = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    changing = [f for f in flags if "detach" in f or "unmount" in f]
    grace = next(a for a in argv if a.startswith("--node-monitor-grace-period="))
    if changing:
        return f"WARNING: kube-controller-manager runs with {changing}: B does not show Kubernetes' defaults"
    return (
        f"kube-controller-manager {grace}, no attach/detach flag (force detach after the built-in 6 min "
        "max wait for unmount, --disable-force-detach-on-timeout unset)"
    )


# ------------------------------------------------------------------------ setup
def set_unschedulable(cluster: TestCluster, node: str, value: bool) -> None:
    cluster.core.patch_node(node, {"spec": {"unschedulable": value}})


def prepare(env: Env, scenario: Scenario) -> Setup:
    """Nodes, the StatefulSet with exactly 3 replicas on the victim, and the scenario's function server.

    The stand-in scheduler round-robins over the nodes that fit, so placement is made deterministic by
    cordons: only the victim is schedulable while ordinals 0-2 start, only the three others while the
    StatefulSet scales to 10; then the victim and the spare are opened."""
    namespace = f"failover-{scenario.key.lower()}"
    client.CoreV1Api(env.api).create_namespace({"metadata": {"name": namespace}})
    cluster = TestCluster(
        api=env.api, kubelet=env.kubelet, project=env.plane.project, namespace=namespace, compute=env.compute
    )
    pool = f"fo-{scenario.key.lower()}"
    victim = cluster.add_node(pool=pool)
    others = [cluster.add_node(pool=pool, unschedulable=True) for _ in range(OTHER_NODES)]
    spare = cluster.add_node(pool=pool, unschedulable=True)
    cluster.stateful_set_with_volumes(ON_VICTIM, node_selector={POOL_LABEL: pool}, name=STS)
    for ordinal in range(ON_VICTIM, REPLICAS):
        cluster.csi_volume(claim=f"data-{STS}-{ordinal}")
    first = [cluster.wait_running_with_volume(f"{STS}-{i}", victim.name, timeout=120)[0] for i in range(ON_VICTIM)]

    set_unschedulable(cluster, victim.name, True)
    for node in others:
        set_unschedulable(cluster, node.name, False)
    cluster.apps.patch_namespaced_stateful_set(STS, namespace, {"spec": {"replicas": REPLICAS}})
    other_names = {n.name for n in others}

    def placed(pods: list[Any]) -> bool:
        running = [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
        return (
            len(running) == REPLICAS and sum(p.spec.node_name in other_names for p in running) == REPLICAS - ON_VICTIM
        )

    # the kubelet stand-in starts a pod's containers only once its volume is attached to the node
    pods = cluster.wait_pods(placed, timeout=180, label_selector=f"app={STS}")
    for node in (victim, spare):
        set_unschedulable(cluster, node.name, False)

    def opened() -> bool:
        return all(
            not any(t.key == UNSCHEDULABLE_TAINT for t in cluster.read_node(n.name).spec.taints or [])
            for n in (victim, spare)
        )

    if not wait_until(opened, timeout=60, interval=0.2):
        raise RuntimeError(f"{scenario.key}: the node-lifecycle controller kept the unschedulable taint")
    by_node: dict[str, list[str]] = {}
    for pod in sorted(pods, key=lambda p: int(p.metadata.name.rsplit("-", 1)[1])):
        by_node.setdefault(pod.spec.node_name, []).append(pod.metadata.name)
    on_victim = by_node.get(victim.name, [])
    if on_victim != [f"{STS}-{i}" for i in range(ON_VICTIM)]:
        raise RuntimeError(f"{scenario.key}: expected {ON_VICTIM} replicas on the victim, placement {by_node}")
    layout = ", ".join(f"{'victim' if n == victim.name else n[-9:]}: {len(p)}" for n, p in by_node.items())
    print(f"  {scenario.key}: {layout}; spare {spare.name[-9:]} empty", flush=True)

    volumes = {p.metadata.name: cluster.claimed_volume(p).metadata.name for p in first}
    server = None
    if scenario.settings is not None:
        server = FunctionServer(
            target="on_node_event",
            signature="cloudevent",
            env=scenario.settings,
            log_path=env.workdir / f"function-{scenario.key}.log",
        )
        env.servers.append(server)
        warm(cluster, server, pool)
    return Setup(
        scenario=scenario,
        cluster=cluster,
        victim=victim,
        others=[*others, spare],
        old_uids={p.metadata.name: p.metadata.uid for p in first},
        volumes=volumes,
        server=server,
    )


def warm(cluster: TestCluster, server: FunctionServer, pool: str) -> None:
    """One event on a throwaway empty node of another pool, so that the measured event meets a warm
    instance (its clients and token made), as drain_bench measures the warm path."""
    node = cluster.add_node(pool=f"{pool}-warm")
    body, headers = delivery("binary", log_entry("preempted", instance=node.name, instance_id=node.instance_id))
    response = server.post(body, headers, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"warm-up event answered {response.status_code}: {response.text[:500]}")


# ------------------------------------------------------------------ observation
def describe(setup: Setup, started: float) -> list[str]:
    """Where the scenario's pods (those that were on the victim) and their volumes are now."""
    cluster, victim = setup.cluster, setup.victim.name
    lines = []
    for name, pv in setup.volumes.items():
        try:
            pod = cluster.core.read_namespaced_pod(name, cluster.namespace)
        except ApiException as exc:
            lines.append(f"{name}: absent ({exc.status})")
            continue
        which = "the original" if pod.metadata.uid == setup.old_uids[name] else "a replacement"
        node = pod.spec.node_name or "unscheduled"
        where = "the victim" if node == victim else node
        state = str(pod.status.phase)
        if pod.metadata.deletion_timestamp:
            # deletionTimestamp is when the grace period ends, not when the deletion was asked
            grace = pod.metadata.deletion_grace_period_seconds or 0
            since = (datetime.now(UTC) - pod.metadata.deletion_timestamp).total_seconds() + grace
            state += f", terminating for {since:.0f} s (grace {grace} s)"
        attachments = [
            f"{'victim' if va.spec.node_name == victim else va.spec.node_name}"
            f"(attached={bool(va.status and va.status.attached)}"
            f"{', deleting' if va.metadata.deletion_timestamp else ''})"
            for va in cluster.volume_attachments(pv=pv)
        ]
        lines.append(f"{name}: {which} on {where}, {state}; volume {pv} attachments {attachments or 'none'}")
    node = cluster.read_node(victim)
    ready = next((c.status for c in node.status.conditions or [] if c.type == "Ready"), None)
    taints = [f"{t.key}:{t.effect}" for t in node.spec.taints or []]
    lines.append(f"victim node: Ready {ready}, taints {taints}, at {time.monotonic() - started:.0f} s")
    return lines


def observe(setup: Setup, started: float) -> Outcome:
    """Look every ``interval`` s until the 3 replacements run on other nodes with their volumes attached
    there (or the scenario's timeout); the time of each observation is taken after its reads."""
    scenario, cluster, victim = setup.scenario, setup.cluster, setup.victim.name
    outcome = Outcome(key=scenario.key)
    milestones = outcome.milestones

    def mark(label: str, when: float) -> None:
        milestones.setdefault(label, when)

    deadline = started + scenario.timeout
    while True:
        pods = {p.metadata.name: p for p in cluster.pods(label_selector=f"app={STS}")}
        attachments = cluster.storage.list_volume_attachment().items
        node = cluster.read_node(victim)
        audit = setup.server.audit_for(node=victim) if setup.server else []
        now = time.monotonic()
        elapsed = now - started
        ready = next((c.status for c in node.status.conditions or [] if c.type == "Ready"), None)
        taints = {t.key for t in node.spec.taints or []}
        if ready == "Unknown":
            mark("node-lifecycle: Ready Unknown", elapsed)
        if UNREACHABLE_TAINT in taints:
            mark("node-lifecycle: unreachable taint", elapsed)
        if OOS_TAINT in taints:
            mark("out-of-service taint on the node", elapsed)
        for action in ("node.verified_down", "node.tainted", "pod.force_deleted"):
            if any(r.get("action") == action for r in audit):
                mark(f"drainer audit: {action}", elapsed)
        old = [pods.get(n) for n in setup.old_uids]
        old = [p for p in old if p is not None and p.metadata.uid == setup.old_uids[p.metadata.name]]
        if old and all(p.metadata.deletion_timestamp for p in old):
            mark("original pods all terminating", elapsed)
        if not old:
            mark("original pods all gone", elapsed)
        on_victim = [
            va
            for va in attachments
            if va.spec.node_name == victim and va.spec.source.persistent_volume_name in setup.volumes.values()
        ]
        if not any(va.status and va.status.attached for va in on_victim):
            mark("volumes detached from the victim", elapsed)
        replacements = [p for n, p in pods.items() if n in setup.volumes and p.metadata.uid != setup.old_uids[n]]
        if len(replacements) == len(setup.volumes):
            mark("replacements all created", elapsed)
            if all(p.spec.node_name for p in replacements):
                mark("replacements all scheduled", elapsed)
        for name, pv in setup.volumes.items():
            pod = pods.get(name)
            if (
                name in outcome.per_pod
                or pod is None
                or pod.metadata.uid == setup.old_uids[name]
                or pod.spec.node_name in (None, victim)
                or pod.metadata.deletion_timestamp
            ):
                continue
            attached = any(
                va.spec.node_name == pod.spec.node_name
                and va.spec.source.persistent_volume_name == pv
                and va.status
                and va.status.attached
                for va in attachments
            )
            if pod.status.phase == "Running" and attached:
                outcome.per_pod[name] = (elapsed, pod.spec.node_name)
        if len(outcome.per_pod) == len(setup.volumes):
            outcome.recovered = max(t for t, _ in outcome.per_pod.values())
            return outcome
        if now >= deadline:
            outcome.state = describe(setup, started)
            return outcome
        time.sleep(scenario.interval)


# ------------------------------------------------------------------------ run
def preempt_all(env: Env, setups: list[Setup], args: argparse.Namespace) -> list[Outcome]:
    """Kill the victims and say STOPPING, deliver the events (A and B) after DELIVERY_LAG, TERMINATED
    ``--shutdown`` s after the delivery; observe the three at once."""
    for setup in setups:
        env.kubelet.kill(setup.victim.name, mark_unknown=False)  # the VM is gone; its volumes stay in use
        env.compute.set_status(setup.victim.name, "STOPPING")
    stamp(f"victims killed, Compute Engine says STOPPING; delivering the events in {DELIVERY_LAG:g} s")
    time.sleep(DELIVERY_LAG)
    entries = {
        s.scenario.key: log_entry("preempted", instance=s.victim.name, instance_id=s.victim.instance_id) for s in setups
    }
    started = time.monotonic()
    timers = [
        threading.Timer(args.shutdown, env.compute.set_status, args=(s.victim.name, "TERMINATED")) for s in setups
    ]
    for timer in timers:
        timer.start()
    responses: dict[str, Future[str]] = {}
    with ThreadPoolExecutor(max_workers=2 * len(setups), thread_name_prefix="failover") as pool:
        for setup in setups:
            if setup.server is not None:
                body, headers = delivery("binary", entries[setup.scenario.key])
                responses[setup.scenario.key] = pool.submit(
                    post, setup.server, body, headers, started, setup.scenario.timeout
                )
        observers = {s.scenario.key: pool.submit(observe, s, started) for s in setups}
        outcomes = []
        for setup in setups:
            key = setup.scenario.key
            outcome = observers[key].result()
            what = (
                f"recovered in {outcome.recovered:.2f} s"
                if outcome.recovered is not None
                else f"not recovered after {setup.scenario.timeout:g} s"
            )
            stamp(f"{key}: {what}")
            if key in responses:
                outcome.response = responses[key].result()
            outcomes.append(outcome)
    for timer in timers:
        timer.cancel()
    return outcomes


def post(server: FunctionServer, body: bytes, headers: dict[str, str], started: float, timeout: float) -> str:
    """The event's POST (it returns when the drain ends): its status and when it returned."""
    try:
        response = server.post(body, headers, timeout=timeout)
    except Exception as exc:
        return f"POST failed after {time.monotonic() - started:.1f} s: {exc}"
    return f"HTTP {response.status_code} after {time.monotonic() - started:.2f} s"


def scenarios(args: argparse.Namespace, env: Env) -> list[Scenario]:
    common = {
        "DRAINER_CLUSTERS": json.dumps([cluster_entry(env.plane, name="bench")]),
        **env.metadata.environ(),
        "DRAINER_COMPUTE_API_ENDPOINT": env.compute.url,
    }
    node_rule_deadline = int(NODE_MONITOR_GRACE + 40)
    long_wait = max(args.cutoff, NODE_MONITOR_GRACE + FORCE_DETACH_AFTER) + 120
    every = [
        Scenario(
            key="A",
            title="fence + out-of-service taint",
            settings={
                **common,
                "DRAINER_DEADLINE_PREEMPTED": "40",
                "DRAINER_COMPUTE_FENCE": "true",
                "DRAINER_OUT_OF_SERVICE_TAINT": "true",
            },
            timeout=args.timeout_a,
            interval=0.05,
        ),
        Scenario(
            key="B",
            title="Node rule only, no taint",
            settings={
                **common,
                "DRAINER_DEADLINE_PREEMPTED": str(node_rule_deadline),
                "DRAINER_COMPUTE_FENCE": "false",
                "DRAINER_OUT_OF_SERVICE_TAINT": "false",
            },
            timeout=long_wait,
            interval=0.5,
        ),
        Scenario(key="C", title="no drainer (Kubernetes alone)", settings=None, timeout=args.cutoff, interval=0.5),
    ]
    wanted = {k.strip().upper() for k in args.only.split(",") if k.strip()}
    return [s for s in every if s.key in wanted]


def report(args: argparse.Namespace, chosen: list[Scenario], outcomes: list[Outcome]) -> bool:
    titles = {s.key: s for s in chosen}
    by_key = {o.key: o for o in outcomes}
    print()
    for outcome in outcomes:
        scenario = titles[outcome.key]
        print(f"{outcome.key}: {scenario.title} ({outcome.response})")
        for label, seconds in sorted(outcome.milestones.items(), key=lambda item: item[1]):
            print(f"    {seconds:8.2f} s  {label}")
        for name, (seconds, node) in sorted(outcome.per_pod.items(), key=lambda item: item[1]):
            print(f"    {seconds:8.2f} s  {name} Running with its volume on {node}")
        for line in outcome.state:
            print(f"    at the end: {line}")
    print()
    print(
        f"stateful failover: {ON_VICTIM} of {REPLICAS} replicas on the preempted node; from the event's delivery "
        "to the last replacement Running with its volume attached on another node"
    )
    a = by_key.get("A")
    a_time = a.recovered if a else None
    met = a_time is not None and a_time < TARGET_A
    for outcome in outcomes:
        scenario = titles[outcome.key]
        if outcome.recovered is not None:
            figure = f"{outcome.recovered:8.2f} s"
        else:
            cut = "cut-off" if outcome.key == "C" else "timeout"
            figure = f"not recovered at the {cut} ({scenario.timeout:g} s)"
        extra = ""
        if outcome.key == "A":
            extra = f"   (target < {TARGET_A:g} s) [{'met' if met else 'NOT met'}]"
        elif a_time:
            if outcome.recovered is not None:
                extra = f"   {outcome.key}/A {outcome.recovered / a_time:.0f}x"
            else:
                extra = (
                    f"   {outcome.key} not recovered at cut-off (> {scenario.timeout / a_time:.0f}x A)"
                    if outcome.key == "C"
                    else f"   {outcome.key} not recovered (> {scenario.timeout / a_time:.0f}x A)"
                )
        print(f"  {outcome.key}  {scenario.title:32s} {figure}{extra}")
    return met or a is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutoff", type=float, default=420.0, help="seconds after the delivery at which C is judged")
    parser.add_argument(
        "--shutdown",
        type=float,
        default=3.0,
        help="seconds after the delivery at which Compute Engine says TERMINATED (STOPPING before)",
    )
    parser.add_argument("--only", default="A,B,C", help="scenarios to run, e.g. A (quick) or A,C")
    parser.add_argument("--timeout-a", type=float, default=60.0, help="bound on A's wait, in seconds")
    parser.add_argument(
        "--attach-delay", type=float, default=0.0, help="seconds the attacher stand-in takes to attach or detach"
    )
    args = parser.parse_args(argv)
    if args.cutoff < 420:
        parser.error("--cutoff must be at least 420 s (7 minutes)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    print(f"start: {load()}", flush=True)
    met = True
    with tempfile.TemporaryDirectory(prefix="failover-bench-") as tmp, environment(args, Path(tmp)) as env:
        chosen = scenarios(args, env)
        if not chosen:
            parser.error("--only names none of A, B, C")
        print(f"control plane {env.plane.assets.directory.parent.name}; {check_controller_manager(env.plane)}")
        print(
            f"preemption: kubelet stand-in killed (volumes stay listed in use), Compute Engine STOPPING at once, "
            f"event delivered {DELIVERY_LAG:g} s later, TERMINATED {args.shutdown:g} s after the delivery; "
            f"attacher stand-in delay {args.attach_delay:g} s; bounds A {args.timeout_a:g} s, "
            f"B {max(args.cutoff, NODE_MONITOR_GRACE + FORCE_DETACH_AFTER) + 120:g} s, C cut-off {args.cutoff:g} s",
            flush=True,
        )
        stamp(f"setting up {', '.join(s.key for s in chosen)} (each: 5 nodes, {REPLICAS} replicas with volumes)")
        setups = [prepare(env, s) for s in chosen]
        stamp(f"set up; {load()}")
        outcomes = preempt_all(env, setups, args)
        met = report(args, chosen, outcomes)
        print(f"\nend (before teardown): {load()}; {time.monotonic() - started:.0f} s so far", flush=True)
    print(f"torn down; whole run {time.monotonic() - started:.0f} s; {load()}", flush=True)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
