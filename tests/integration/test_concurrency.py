"""Concurrent deliveries and concurrent drains through the real functions-framework server and the
real API server: one cordon per event, each pod evicted once, and a shared budget never violated."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from kubernetes import watch

from tests.controlplane.cluster import TestCluster, wait_until
from tests.support.deliveries import delivery, log_entry
from tests.support.server import FunctionServer

ANN = "node-drainer.io/"
POOL_LABEL = "cloud.google.com/gke-nodepool"
SYNCED = "SYNCED"  # the watcher's initial list is complete


def event_id(entry: dict[str, Any]) -> str:
    return str(entry["operation"]["id"])


def post_at_once(server: FunctionServer, bodies: list[tuple[bytes, dict[str, str]]]) -> list[requests.Response]:
    """POST every body from its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(bodies))

    def one(body: tuple[bytes, dict[str, str]]) -> requests.Response:
        barrier.wait(timeout=30)
        return server.post(*body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


class Watcher:
    """A watch in a background thread calling ``on_event(type, object)`` for each object listed
    ("ADDED"), then ``on_event(SYNCED, None)``, then for every watch event; stopped on exit."""

    def __init__(self, list_call: Callable[..., Any], on_event: Callable[[str, Any], None], **kwargs: Any) -> None:
        self._list_call = list_call
        self._kwargs = kwargs
        self._on_event = on_event
        self._watch = watch.Watch()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.events = 0
        self.synced = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-watcher", daemon=True)

    def _run(self) -> None:
        try:
            initial = self._list_call(**self._kwargs)
            for item in initial.items:
                self._on_event("ADDED", item)
            self._on_event(SYNCED, None)
            self.synced.set()
            rv = initial.metadata.resource_version
            while not self._stop.is_set():
                for event in self._watch.stream(
                    self._list_call, resource_version=rv, timeout_seconds=5, **self._kwargs
                ):
                    obj = event["object"]
                    rv = obj.metadata.resource_version
                    self._on_event(event["type"], obj)
                    self.events += 1
                    if self._stop.is_set():
                        break
        except BaseException as exc:  # reported by the test: a watcher that died proves nothing
            if not self._stop.is_set():
                self.error = exc

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watch.stop()
        self.thread.join(timeout=10)


@contextmanager
def watching(list_call: Callable[..., Any], on_event: Callable[[str, Any], None], **kwargs: Any) -> Iterator[Watcher]:
    with Watcher(list_call, on_event, **kwargs) as watcher:
        assert wait_until(lambda: watcher.synced.is_set() or watcher.error is not None, timeout=30)
        assert watcher.error is None, f"the watcher died: {watcher.error!r}"
        yield watcher
    assert watcher.error is None, f"the watcher died: {watcher.error!r}"


# ----------------------------------------------------------------- one event, five deliveries
def test_the_same_event_delivered_five_times_at_once_cordons_once_and_evicts_each_pod_once(
    drainer: FunctionServer, cluster: TestCluster
) -> None:
    node = cluster.add_node()
    cluster.replicaset(node.name, 4, name="web")
    cluster.bare_pod(node.name, name="bare")
    cluster.bare_pod(node.name, name="done", exit_code=0)
    cluster.wait_pods(
        lambda pods: len(pods) == 6 and all(p.status.phase in ("Running", "Succeeded") for p in pods), node=node.name
    )
    evictable = {p.metadata.uid: p.metadata.name for p in cluster.pods(node=node.name) if p.status.phase == "Running"}
    assert len(evictable) == 5

    # every version of the drainer's annotations the node ever had, seen by a watch (not sampled)
    cordons: set[tuple[str, str]] = set()

    def on_node(kind: str, seen: Any) -> None:
        if kind == SYNCED:
            return
        notes = seen.metadata.annotations or {}
        if f"{ANN}cordoned-by" in notes:
            cordons.add((notes.get(f"{ANN}event-id", ""), notes.get(f"{ANN}cordoned-at", "")))

    entry = log_entry("delete", instance=node.name, instance_id=node.instance_id)
    eid = event_id(entry)
    body = delivery("binary", entry, message_id="redelivered-5")  # Pub/Sub redelivers with the same id
    with watching(cluster.core.list_node, on_node, field_selector=f"metadata.name={node.name}"):
        responses = post_at_once(drainer, [body] * 5)
        assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
        assert wait_until(lambda: len(drainer.audit_for(action="drain.completed", event_id=eid)) == 5, timeout=20)
        cluster.wait_pods(lambda pods: not pods, node=node.name, timeout=20)
        assert wait_until(lambda: bool(cordons), timeout=10)

    # one cordon: one audited, one version of the cordon annotations ever written
    assert len(drainer.audit_for(action="node.cordoned", event_id=eid)) == 1
    assert cordons == {(eid, cluster.read_node(node.name).metadata.annotations[f"{ANN}cordoned-at"])}
    assert cluster.read_node(node.name).spec.unschedulable is True

    # each pod's eviction counted once over the five deliveries, and every evictable pod evicted
    evicted = Counter(r["pod_uid"] for r in drainer.audit_for(action="pod.evicted", event_id=eid))
    assert {uid: n for uid, n in evicted.items() if n > 1} == {}, "a pod evicted by several deliveries"
    assert set(evicted) == set(evictable)
    reports = drainer.audit_for(action="drain.completed", event_id=eid)
    assert sum(r["counts"].get("evicted", 0) for r in reports) == len(evictable)
    assert sum(r["counts"].get("deleted", 0) for r in reports) == 1  # the finished pod, deleted once


# ------------------------------------------------------------ four drains, one budget
def _ready(pod: Any) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status is not None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )


@pytest.fixture
def patient(server_factory: Callable[..., FunctionServer]) -> FunctionServer:
    """The event function with a delete deadline long enough for a budget-paced drain of four nodes."""
    return server_factory(DRAINER_DEADLINE_DELETE="60")


def _startup_taints(cluster: TestCluster, name: str) -> list[str]:
    node = cluster.read_node(name)
    ready = next((c.status for c in node.status.conditions or [] if c.type == "Ready"), None)
    taints = [t.key for t in node.spec.taints or [] if t.key.startswith("node.kubernetes.io/")]
    return taints if ready == "True" else [*taints, "not Ready"]


def test_four_nodes_drained_at_once_never_violate_their_shared_budget(
    patient: FunctionServer, cluster: TestCluster
) -> None:
    pool = f"shared-{cluster.namespace}"
    victims = [cluster.add_node(pool=pool) for _ in range(4)]
    spare = cluster.add_node(pool=pool, unschedulable=True)  # where the replacements go, opened later
    # schedulable for real: Ready, and the node-lifecycle controller's not-ready taint gone
    assert wait_until(lambda: not any(_startup_taints(cluster, v.name) for v in victims), timeout=30)
    replicas, min_available = 8, 6
    rs = cluster.replicaset(None, replicas, name="spread", node_selector={POOL_LABEL: pool})
    app = rs.metadata.labels["app"]
    cluster.wait_pods(lambda pods: sum(1 for p in pods if _ready(p)) == replicas, label_selector=f"app={app}")
    placed = Counter(p.spec.node_name for p in cluster.pods(label_selector=f"app={app}"))
    assert set(placed) == {v.name for v in victims}, placed  # the set spans the four nodes
    pdb = cluster.pdb({"app": app}, min_available=min_available, name="spread-pdb")

    def budget() -> Any:
        return cluster.policy.read_namespaced_pod_disruption_budget(pdb.metadata.name, cluster.namespace).status

    assert wait_until(
        lambda: (s := budget()) is not None and s.current_healthy == replicas and s.disruptions_allowed == 2,
        timeout=20,
    )
    cluster.core.patch_node(spare.name, {"spec": {"unschedulable": False}})

    # Every pod state and every budget status, as the API server published them, from watches.
    lock = threading.Lock()
    pods: dict[str, bool] = {}
    synced = threading.Event()
    ready_counts: list[int] = []
    healthy_counts: list[int] = []

    def on_pod(kind: str, pod: Any) -> None:
        with lock:
            if kind == SYNCED:
                synced.set()
            elif kind == "DELETED":
                pods.pop(pod.metadata.uid, None)
            else:
                pods[pod.metadata.uid] = _ready(pod)
            if synced.is_set():  # counted over the whole set, not while the listing is read
                ready_counts.append(sum(pods.values()))

    def on_pdb(kind: str, seen: Any) -> None:
        if kind != SYNCED and seen.status is not None and seen.status.current_healthy is not None:
            with lock:
                healthy_counts.append(seen.status.current_healthy)

    entries = [log_entry("delete", instance=v.name, instance_id=v.instance_id) for v in victims]
    with (
        watching(cluster.core.list_namespaced_pod, on_pod, namespace=cluster.namespace, label_selector=f"app={app}"),
        watching(
            cluster.policy.list_namespaced_pod_disruption_budget,
            on_pdb,
            namespace=cluster.namespace,
            field_selector=f"metadata.name={pdb.metadata.name}",
        ),
    ):
        responses = post_at_once(patient, [delivery("binary", e) for e in entries])
        assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
        cluster.wait_pods(
            lambda found: sum(1 for p in found if _ready(p) and p.spec.node_name == spare.name) == replicas,
            label_selector=f"app={app}",
            timeout=30,
        )
        assert wait_until(lambda: budget().current_healthy == replicas, timeout=20)

    for entry, victim in zip(entries, victims, strict=True):
        done = patient.wait_audit(action="drain.completed", event_id=event_id(entry))
        assert done["counts"].get("evicted") == placed[victim.name], done
        assert not [p for p in cluster.pods(node=victim.name) if p.metadata.labels.get("app") == app]
    # the budget held throughout: never fewer than min_available ready pods, by our count or the controller's
    assert ready_counts
    assert healthy_counts
    assert min(ready_counts) >= min_available, ready_counts
    assert min(healthy_counts) >= min_available, healthy_counts
    # and the drains did run concurrently: the budget was used, not left untouched
    assert min(ready_counts) == min_available or min(healthy_counts) == min_available
    ours = {event_id(e) for e in entries}
    evictions = patient.audit(lambda r: r.get("action") == "pod.evicted")
    assert len({r["pod_uid"] for r in evictions if r.get("event_id") in ours}) == replicas
    blocked = [r for r in patient.audit_for(action="pod.blocked") if r.get("event_id") in ours]
    assert blocked, "four drains under a budget of two disruptions were never refused: they did not overlap"
