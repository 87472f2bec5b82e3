"""A kubelet (and scheduler) stand-in for the nodes that tests create.

There is no kubelet in the test control plane, so this plays its part for registered nodes:
- pods bound to a live node are marked Running and Ready (or Succeeded/Failed when the pod
  carries ``EXIT_ANNOTATION``), as a kubelet reports them;
- a graceful deletion is completed after ``deletion_delay`` seconds with a grace-0 delete
  (UID precondition), as a kubelet does once the containers are gone;
- live nodes post a Ready heartbeat every ``heartbeat_interval`` seconds;
- pending pods without a node are bound to a live, schedulable, Ready node whose labels match
  their nodeSelector (a minimal scheduler, so that controllers' replacements land somewhere).

``kill(node)`` models a VM that is gone: the stand-in stops acting for it and the node's Ready
condition turns Unknown with the last heartbeat kept, as the node-lifecycle controller does.
``restart(node)`` brings it back with a new bootID.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiException

EXIT_ANNOTATION = "kubelet-standin.test/exit-code"
LOG = logging.getLogger(__name__)


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _NodeState:
    name: str
    boot_id: str
    alive: bool = True
    ready_since: str = ""
    last_heartbeat: str = ""


class KubeletStandIn:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        deletion_delay: float = 0.2,
        heartbeat_interval: float = 5.0,
        workers: int = 8,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.deletion_delay = deletion_delay
        self.heartbeat_interval = heartbeat_interval
        self._nodes: dict[str, _NodeState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubelet-standin")
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._timer_cv = threading.Condition()
        self._pending: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name) awaiting a node
        self._done: set[tuple[str, str]] = set()  # (uid, action) already applied
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> KubeletStandIn:
        for target, name in (
            (self._watch_pods, "pods"),
            (self._run_timers, "timers"),
            (self._heartbeats, "heartbeats"),
            (self._schedule_loop, "scheduler"),
        ):
            thread = threading.Thread(target=target, name=f"kubelet-standin-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop acting; the loops that call the API server on their own (heartbeats, scheduler, timers)
        and the actions in flight are done before this returns (bounded by ``timeout``), so that the
        control plane can be stopped next without a stand-in call failing against it. The pod watch
        ends quietly whenever its stream does."""
        self._stop.set()
        with self._timer_cv:
            self._timer_cv.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.name != "kubelet-standin-pods" and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        for worker in list(getattr(self._pool, "_threads", ())):
            worker.join(max(0.0, deadline - time.monotonic()))

    # ---------------------------------------------------------------- nodes
    def register(self, name: str, boot_id: str) -> None:
        now = rfc3339()
        with self._lock:
            self._nodes[name] = _NodeState(name=name, boot_id=boot_id, ready_since=now, last_heartbeat=now)
        self._post_status(name)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._nodes.pop(name, None)

    def alive(self, name: str) -> bool:
        with self._lock:
            state = self._nodes.get(name)
            return bool(state and state.alive)

    def kill(self, name: str, *, mark_unknown: bool = True) -> None:
        """The VM is gone: stop acting for it and (unless told not to, to model the node-lifecycle
        controller's 40 s grace) mark its Ready condition Unknown."""
        with self._lock:
            state = self._nodes[name]
            state.alive = False
        if mark_unknown:
            self.mark_unknown(name)

    def mark_unknown(self, name: str) -> None:
        """What the node-lifecycle controller does once the kubelet has been silent too long."""
        with self._lock:
            heartbeat = self._nodes[name].last_heartbeat
        condition = {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": rfc3339(),
        }
        self.core.patch_node_status(name, {"status": {"conditions": [condition]}})

    def restart(self, name: str) -> str:
        """The VM is back (a new boot): new bootID, Ready again; returns the bootID."""
        boot_id = str(uuid.uuid4())
        now = rfc3339()
        with self._lock:
            state = self._nodes[name]
            state.alive = True
            state.boot_id = boot_id
            state.ready_since = now
            state.last_heartbeat = now
        self._post_status(name)
        for pod in self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items:
            self._handle(pod)
        return boot_id

    def _post_status(self, name: str) -> None:
        with self._lock:
            state = self._nodes.get(name)
            if state is None or not state.alive:
                return
            state.last_heartbeat = rfc3339()
            body = {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": state.last_heartbeat,
                            "lastTransitionTime": state.ready_since,
                        }
                    ],
                    "nodeInfo": {"bootID": state.boot_id},
                }
            }
        with contextlib.suppress(ApiException):
            self.core.patch_node_status(name, body)

    def _heartbeats(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            with self._lock:
                names = [n for n, s in self._nodes.items() if s.alive]
            for name in names:
                self._post_status(name)

    # ----------------------------------------------------------------- timers
    def _after(self, delay: float, action: Callable[[], None]) -> None:
        with self._timer_cv:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), action))
            self._timer_cv.notify()

    def _run_timers(self) -> None:
        while not self._stop.is_set():
            with self._timer_cv:
                while not self._stop.is_set() and (not self._timers or self._timers[0][0] > time.monotonic()):
                    timeout = self._timers[0][0] - time.monotonic() if self._timers else None
                    self._timer_cv.wait(timeout)
                if self._stop.is_set():
                    return
                _, _, action = heapq.heappop(self._timers)
            self._submit(action)

    def _submit(self, action: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # shut down
            self._pool.submit(self._guard, action)

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except ApiException as exc:
            if exc.status not in (404, 409) and not self._stop.is_set():
                LOG.warning("kubelet stand-in: %s", exc)
        except Exception:  # keep the stand-in alive whatever one pod does
            if not self._stop.is_set():
                LOG.exception("kubelet stand-in action failed")

    # ------------------------------------------------------------------- pods
    def _watch_pods(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.core.list_pod_for_all_namespaces()
                for pod in listing.items:
                    self._handle(pod)
                stream = watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    if self._stop.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._handle(event["object"])
            except Exception as exc:  # relist on 410 Gone, a dropped stream, anything
                if self._stop.is_set():
                    return
                LOG.debug("kubelet stand-in: pod watch restarts after %s", exc)
                time.sleep(0.2)

    def _once(self, uid: str, action: str) -> bool:
        key = (uid, action)
        with self._lock:
            if key in self._done:
                return False
            self._done.add(key)
            return True

    def _handle(self, pod: Any) -> None:
        meta, spec, status = pod.metadata, pod.spec, pod.status
        uid = meta.uid
        if not spec.node_name:
            if meta.deletion_timestamp is None and (status.phase or "Pending") == "Pending":
                with self._lock:
                    self._pending[uid] = (meta.namespace, meta.name)
            return
        if not self.alive(spec.node_name):
            return
        if meta.deletion_timestamp is not None:
            if self._once(uid, "finalize"):
                self._after(self.deletion_delay, lambda: self._finalize(meta.namespace, meta.name, uid))
            return
        phase = status.phase or "Pending"
        if phase == "Pending" and self._once(uid, "start"):
            exit_code = (meta.annotations or {}).get(EXIT_ANNOTATION)
            self._submit(lambda: self._start(pod, exit_code))

    def _finalize(self, namespace: str, name: str, uid: str) -> None:
        self.core.delete_namespaced_pod(
            name,
            namespace,
            body=client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)),
        )

    def _start(self, pod: Any, exit_code: str | None) -> None:
        now = rfc3339()
        containers = pod.spec.containers or []
        if exit_code is None:
            phase, ready = "Running", "True"
            states = [
                {
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
            ]
        else:
            code = int(exit_code)
            phase, ready = ("Succeeded" if code == 0 else "Failed"), "False"
            states = [
                {
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": code,
                            "reason": "Completed" if code == 0 else "Error",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
                for c in containers
            ]
        body = {
            "status": {
                "phase": phase,
                "hostIP": "10.128.0.2",
                "podIP": "10.4.0.10",
                "startTime": now,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                    {"type": "Ready", "status": ready, "lastTransitionTime": now},
                ],
                "containerStatuses": states,
            }
        }
        self.core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, body)

    # -------------------------------------------------------------- scheduler
    def _schedule_loop(self) -> None:
        rotation = itertools.count()
        while not self._stop.wait(0.1):
            with self._lock:
                pending = list(self._pending.items())
                live = [n for n, s in self._nodes.items() if s.alive]
            if not pending or not live:
                continue
            nodes = []
            for name in live:
                with contextlib.suppress(ApiException):
                    node = self.core.read_node(name)
                    if not node.spec.unschedulable:
                        nodes.append(node)
            for uid, (namespace, name) in pending:
                self._try_bind(uid, namespace, name, nodes, next(rotation))

    def _try_bind(self, uid: str, namespace: str, name: str, nodes: list[Any], turn: int) -> None:
        try:
            pod = self.core.read_namespaced_pod(name, namespace)
        except ApiException:
            pod = None
        if pod is None or pod.metadata.uid != uid or pod.spec.node_name or pod.metadata.deletion_timestamp:
            with self._lock:
                self._pending.pop(uid, None)
            return
        selector = pod.spec.node_selector or {}
        fits = [n for n in nodes if all((n.metadata.labels or {}).get(k) == v for k, v in selector.items())]
        if not fits:
            return
        target = fits[turn % len(fits)].metadata.name
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": target},
        }
        with contextlib.suppress(ApiException):
            # The generated client cannot deserialize a Binding response: skip decoding.
            self.core.create_namespaced_pod_binding(name, namespace, binding, _preload_content=False)
        with self._lock:
            self._pending.pop(uid, None)
