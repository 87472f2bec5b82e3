"""A kubelet (and scheduler) stand-in for the nodes that tests create.

There is no kubelet in the test control plane, so this plays its part for registered nodes:
- pods bound to a live node are marked Running and Ready (or Succeeded/Failed when the pod
  carries ``EXIT_ANNOTATION``), as a kubelet reports them;
- a graceful deletion is completed after ``deletion_delay`` seconds with a grace-0 delete
  (UID precondition), as a kubelet does once the containers are gone;
- live nodes post a Ready heartbeat every ``heartbeat_interval`` seconds and renew their Lease in
  ``kube-node-lease`` every ``lease_interval`` seconds, so that the real node-lifecycle controller
  keeps them Ready (and removes the ``node.kubernetes.io/not-ready`` taint they are created with);
- nodes carry ``volumes.kubernetes.io/controller-managed-attach-detach: "true"`` (the real
  attach/detach controller only manages such nodes), report the CSI volumes of their pods in
  ``status.volumesInUse`` (``kubernetes.io/csi/<driver>^<volumeHandle>``, the attach/detach
  controller's unique volume name) and start a pod's containers only once the VolumeAttachment of
  each of its CSI volumes for that node is attached (a real kubelet waits in ContainerCreating);
- pending pods without a node are bound to a live, schedulable node whose labels match their
  nodeSelector, whose NoSchedule/NoExecute taints they tolerate, once their PVCs are Bound (a
  minimal scheduler, so that controllers' replacements land somewhere).

``kill(node)`` models a VM that is gone: the stand-in stops acting for it (no status, no Lease
renewal; ``volumesInUse`` keeps what it listed last, as a preempted node's does). With
``mark_unknown=False`` the real node-lifecycle controller turns Ready Unknown after its grace
period (``ControlPlane.node_monitor_grace_period``), as in a cluster; the default
``mark_unknown=True`` is a shortcut that writes the controller's verdict at once (Unknown, last
heartbeat kept). ``restart(node)`` brings it back with a new bootID.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client import ApiException

EXIT_ANNOTATION = "kubelet-standin.test/exit-code"
CONTROLLER_MANAGED_ANNOTATION = "volumes.kubernetes.io/controller-managed-attach-detach"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
CSI_PLUGIN = "kubernetes.io/csi"
TOLERATED_EFFECTS = ("NoSchedule", "NoExecute")
LOG = logging.getLogger(__name__)
RETRY_DELAY = 0.5  # an action that failed for want of the API server is tried again after this


def csi_volume_name(driver: str, volume_handle: str) -> str:
    """The attach/detach controller's unique name of a CSI volume, as kubelets list it in
    ``status.volumesInUse`` (pkg/volume/csi: plugin name, "/", driver, "^", volume handle)."""
    return f"{CSI_PLUGIN}/{driver}^{volume_handle}"


def micro_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tolerates(tolerations: list[Any] | None, taint: Any) -> bool:
    """Whether a pod's tolerations tolerate ``taint`` (the scheduler's rule)."""
    for tol in tolerations or []:
        if tol.effect and tol.effect != taint.effect:
            continue
        if tol.operator == "Exists":
            if not tol.key or tol.key == taint.key:
                return True
        elif tol.key == taint.key and (tol.value or "") == (taint.value or ""):
            return True
    return False


def _schedulable_for(pod: Any, node: Any) -> bool:
    taints = node.spec.taints or []
    tolerations = pod.spec.tolerations
    if node.spec.unschedulable and not any(
        tolerates(tolerations, t) for t in taints if t.key == "node.kubernetes.io/unschedulable"
    ):
        return False
    return all(tolerates(tolerations, t) for t in taints if t.effect in TOLERATED_EFFECTS)


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _NodeState:
    name: str
    boot_id: str
    alive: bool = True
    ready_since: str = ""
    last_heartbeat: str = ""
    # pod uid -> unique names of the CSI volumes it has in use on this node
    volumes: dict[str, frozenset[str]] = field(default_factory=dict)

    def volumes_in_use(self) -> list[str]:
        return sorted(set().union(*self.volumes.values())) if self.volumes else []


@dataclass(frozen=True)
class _Attachment:
    pv: str
    node: str
    attached: bool
    deleting: bool


class KubeletStandIn:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        deletion_delay: float = 0.2,
        heartbeat_interval: float = 5.0,
        lease_interval: float = 2.0,
        workers: int = 8,
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.deletion_delay = deletion_delay
        self.heartbeat_interval = heartbeat_interval
        self.lease_interval = lease_interval
        self._attachments: dict[str, _Attachment] = {}  # VolumeAttachment name -> what it says
        self._waiting: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name) awaiting volumes
        self._dirty: set[str] = set()  # nodes whose volumesInUse changed since the last post
        self._wake = threading.Event()  # status thread: post the dirty nodes now
        self._recheck = threading.Event()  # volume thread: an attachment or claim changed
        self._nodes: dict[str, _NodeState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubelet-standin")
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_seq = itertools.count()
        self._timer_cv = threading.Condition()
        self._pending: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name) awaiting a node
        self._placed: dict[str, int] = {}  # node -> pods this scheduler bound there
        self._done: set[tuple[str, str]] = set()  # (uid, action) already applied
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> KubeletStandIn:
        for target, name in (
            (self._watch_pods, "pods"),
            (self._run_timers, "timers"),
            (self._heartbeats, "heartbeats"),
            (self._schedule_loop, "scheduler"),
            (self._watch_attachments, "attachments"),
            (self._volume_loop, "volumes"),
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
        self._wake.set()
        self._recheck.set()
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
        """Act as the node's kubelet: annotate it for controller-managed attach/detach, create its
        Lease and post Ready."""
        now = rfc3339()
        with self._lock:
            self._nodes[name] = _NodeState(name=name, boot_id=boot_id, ready_since=now, last_heartbeat=now)
        node = self.core.patch_node(name, {"metadata": {"annotations": {CONTROLLER_MANAGED_ANNOTATION: "true"}}})
        self._create_lease(name, node.metadata.uid)
        self._post_status(name)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._nodes.pop(name, None)
            self._dirty.discard(name)
        with contextlib.suppress(Exception):
            self.coordination.delete_namespaced_lease(name, LEASE_NAMESPACE)

    def alive(self, name: str) -> bool:
        with self._lock:
            state = self._nodes.get(name)
            return bool(state and state.alive)

    def kill(self, name: str, *, mark_unknown: bool = True) -> None:
        """The VM is gone: stop posting status and renewing the Lease for it, and stop acting for
        its pods (its ``volumesInUse`` keeps what it listed last).

        With ``mark_unknown=False`` the real node-lifecycle controller turns Ready Unknown once its
        grace period has passed since the last heartbeat (await it with
        ``TestCluster.wait_node_ready(name, "Unknown")``). The default writes that verdict at once,
        a shortcut for tests that want the controller's decision without waiting for it."""
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

    def flap(self, name: str) -> None:
        """A Ready flap without a new boot (an API-server outage, a network blip): the node-lifecycle
        controller marks Ready Unknown, then the kubelet, which finds a Ready it did not write, posts
        Ready True again with a new lastTransitionTime, as a real kubelet does."""
        self.mark_unknown(name)
        with self._lock:
            self._nodes[name].ready_since = rfc3339()
        self._post_status(name)

    def restart(self, name: str) -> str:
        """The VM is back (a new boot): new bootID, Ready again; returns the bootID."""
        boot_id = str(uuid.uuid4())
        now = rfc3339()
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items
        present = {p.metadata.uid for p in pods}
        with self._lock:
            state = self._nodes[name]
            state.alive = True
            state.boot_id = boot_id
            state.ready_since = now
            state.last_heartbeat = now
            # the new boot only has the volumes of the pods still bound to it
            state.volumes = {uid: names for uid, names in state.volumes.items() if uid in present}
        self._renew_lease(name)
        self._post_status(name)
        for pod in pods:
            self._handle(pod)
        return boot_id

    def _create_lease(self, name: str, node_uid: str) -> None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": LEASE_NAMESPACE,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": node_uid}],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                "renewTime": micro_time(),
            },
        }
        try:
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self._renew_lease(name)

    def _renew_lease(self, name: str) -> None:
        if not self.alive(name):
            return
        body = {"spec": {"holderIdentity": name, "renewTime": micro_time()}}
        try:
            self.coordination.patch_namespaced_lease(name, LEASE_NAMESPACE, body)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _post_status(self, name: str) -> None:
        with self._lock:
            state = self._nodes.get(name)
            if state is None or not state.alive:
                return
            self._dirty.discard(name)
            state.last_heartbeat = rfc3339()
            beat, since = state.last_heartbeat, state.ready_since
            conditions = [
                {
                    "type": kind,
                    "status": "False",
                    "reason": f"KubeletHasSufficient{suffix}",
                    "message": f"kubelet has sufficient {suffix.lower()} available",
                    "lastHeartbeatTime": beat,
                    "lastTransitionTime": since,
                }
                for kind, suffix in (("MemoryPressure", "Memory"), ("DiskPressure", "Disk"), ("PIDPressure", "PID"))
            ]
            conditions.append(
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": beat,
                    "lastTransitionTime": since,
                }
            )
            body = {
                "status": {
                    "conditions": conditions,
                    "nodeInfo": {"bootID": state.boot_id},
                    "volumesInUse": state.volumes_in_use(),
                }
            }
        with contextlib.suppress(ApiException):
            self.core.patch_node_status(name, body)

    def _mark_dirty(self, name: str) -> None:
        with self._lock:
            self._dirty.add(name)
        self._wake.set()

    def _heartbeats(self) -> None:
        """Status every ``heartbeat_interval`` s (and at once when volumes changed), Leases every
        ``lease_interval`` s; an API error (a dropped connection, a restarting server) is logged and
        the loop goes on, as a kubelet keeps trying."""
        now = time.monotonic()
        next_status, next_lease = now + self.heartbeat_interval, now + self.lease_interval
        while not self._stop.is_set():
            self._wake.wait(max(0.0, min(next_status, next_lease) - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            with self._lock:
                live = [n for n, s in self._nodes.items() if s.alive]
                dirty = [n for n in self._dirty if n in live]
            status_due = now >= next_status
            if status_due:
                next_status = now + self.heartbeat_interval
            lease_due = now >= next_lease
            if lease_due:
                next_lease = now + self.lease_interval
            for name in live if status_due else dirty:
                self._beat(self._post_status, name)
            if lease_due:
                for name in live:
                    self._beat(self._renew_lease, name)

    def _beat(self, action: Callable[[str], None], name: str) -> None:
        try:
            action(name)
        except Exception as exc:  # never let one failed request end the heartbeats
            if not self._stop.is_set():
                LOG.warning("kubelet stand-in: %s of %s failed: %s", action.__name__, name, exc)

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
                if exc.status == 0 or exc.status >= 500:  # the API server is away: try again, as a kubelet does
                    self._after(RETRY_DELAY, action)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # a dropped connection or a stopped API server: an action done once per pod (start,
            # finalize) must not be lost to an outage
            if not self._stop.is_set():
                LOG.warning("kubelet stand-in: %s; tried again in %s s", exc, RETRY_DELAY)
                self._after(RETRY_DELAY, action)
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
                    elif event["type"] == "DELETED":
                        self._forget(event["object"])
            except Exception as exc:  # relist on 410 Gone, a dropped stream, anything
                if self._stop.is_set():
                    return
                LOG.debug("kubelet stand-in: pod watch restarts after %s", exc)
                time.sleep(0.2)

    def handled(self, uid: str, action: str) -> bool:
        """Whether the stand-in has taken up ``action`` ("start", "finalize") for the pod ``uid``."""
        with self._lock:
            return (uid, action) in self._done

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
            return  # a dead node changes nothing, its volumesInUse included
        phase = status.phase or "Pending"
        if phase in ("Succeeded", "Failed"):
            self._forget(pod)  # the containers are gone: their volumes are unmounted
        if meta.deletion_timestamp is not None:
            if self._once(uid, "finalize"):
                self._after(self.deletion_delay, lambda: self._finalize(meta.namespace, meta.name, uid))
            return
        exit_code = (meta.annotations or {}).get(EXIT_ANNOTATION)
        if phase == "Pending" and self._once(uid, "start"):
            self._submit(lambda: self._prepare(pod, exit_code))
        elif (
            phase == "Running"
            and exit_code is None
            and not _ready(pod)
            and self._once(uid, f"ready-{meta.resource_version}")
        ):
            # The node-lifecycle controller marks the pods of a node it lost NotReady; the kubelet
            # of a node that is back reports them ready again.
            self._submit(lambda: self._start(pod, None))

    def _forget(self, pod: Any) -> None:
        """The pod's volumes are no longer in use on its node (a dead node keeps listing them
        until it comes back: nobody posts its status)."""
        node = pod.spec.node_name
        with self._lock:
            self._waiting.pop(pod.metadata.uid, None)
            state = self._nodes.get(node) if node else None
            if state is None or state.volumes.pop(pod.metadata.uid, None) is None:
                return
        self._mark_dirty(node)

    def _finalize(self, namespace: str, name: str, uid: str) -> None:
        self.core.delete_namespaced_pod(
            name,
            namespace,
            body=client.V1DeleteOptions(grace_period_seconds=0, preconditions=client.V1Preconditions(uid=uid)),
        )

    # ---------------------------------------------------------------- volumes
    def _prepare(self, pod: Any, exit_code: str | None) -> None:
        """Mount the pod's volumes, then start its containers: a pod with CSI volumes lists them in
        its node's ``volumesInUse`` and waits until each has an attached VolumeAttachment for the
        node (the attach/detach controller creates it, the external attacher attaches it)."""
        claims = [v.persistent_volume_claim.claim_name for v in pod.spec.volumes or [] if v.persistent_volume_claim]
        if not claims:
            self._start(pod, exit_code)
            return
        node, uid = pod.spec.node_name, pod.metadata.uid
        volumes = self._csi_volumes(pod.metadata.namespace, claims)
        if volumes is not None:
            names = frozenset(name for name, _ in volumes)
            with self._lock:
                state = self._nodes.get(node)
                changed = state is not None and state.alive and state.volumes.get(uid) != names
                if changed and state is not None:
                    state.volumes[uid] = names
            if changed:
                self._mark_dirty(node)
            if all(self._attached(pv, node) for _, pv in volumes):
                with self._lock:
                    self._waiting.pop(uid, None)
                if self.alive(node):
                    self._start(pod, exit_code)
                return
        with self._lock:
            self._waiting[uid] = (pod.metadata.namespace, pod.metadata.name)

    def _csi_volumes(self, namespace: str, claims: list[str]) -> list[tuple[str, str]] | None:
        """(unique volume name, PV name) of each claim's CSI volume; None while a claim is unbound."""
        found = []
        for claim in claims:
            pvc = self.core.read_namespaced_persistent_volume_claim(claim, namespace)
            if pvc.status.phase != "Bound" or not pvc.spec.volume_name:
                return None
            pv = self.core.read_persistent_volume(pvc.spec.volume_name)
            if pv.spec.csi is not None:
                found.append((csi_volume_name(pv.spec.csi.driver, pv.spec.csi.volume_handle), str(pv.metadata.name)))
        return found

    def _attached(self, pv: str, node: str) -> bool:
        with self._lock:
            return any(
                a.pv == pv and a.node == node and a.attached and not a.deleting for a in self._attachments.values()
            )

    def _watch_attachments(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.storage.list_volume_attachment()
                with self._lock:
                    self._attachments = {str(va.metadata.name): _attachment(va) for va in listing.items}
                self._recheck.set()
                stream = watch.Watch().stream(
                    self.storage.list_volume_attachment,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=300,
                    allow_watch_bookmarks=True,
                )
                for event in stream:
                    if self._stop.is_set():
                        return
                    va = event["object"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        with self._lock:
                            self._attachments[va.metadata.name] = _attachment(va)
                    elif event["type"] == "DELETED":
                        with self._lock:
                            self._attachments.pop(va.metadata.name, None)
                    else:
                        continue
                    self._recheck.set()
            except Exception as exc:
                if self._stop.is_set():
                    return
                LOG.debug("kubelet stand-in: VolumeAttachment watch restarts after %s", exc)
                time.sleep(0.2)

    def _volume_loop(self) -> None:
        """Retry the pods waiting for volumes when an attachment changes (and every second, for
        claims that got bound)."""
        while not self._stop.is_set():
            self._recheck.wait(1.0)
            self._recheck.clear()
            with self._lock:
                waiting = list(self._waiting.items())
            for uid, (namespace, name) in waiting:
                try:
                    pod = self.core.read_namespaced_pod(name, namespace)
                except ApiException:
                    pod = None
                except Exception as exc:
                    LOG.debug("kubelet stand-in: reading %s/%s failed: %s", namespace, name, exc)
                    continue
                stale = (
                    pod is None
                    or pod.metadata.uid != uid
                    or pod.metadata.deletion_timestamp is not None
                    or (pod.status.phase or "Pending") != "Pending"
                )
                if stale:
                    with self._lock:
                        self._waiting.pop(uid, None)
                    continue
                if not self.alive(pod.spec.node_name):
                    continue
                exit_code = (pod.metadata.annotations or {}).get(EXIT_ANNOTATION)
                self._guard(functools.partial(self._prepare, pod, exit_code))

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
            try:
                self._schedule_once(rotation)
            except Exception as exc:  # a dropped connection must not end the scheduler
                if not self._stop.is_set():
                    LOG.warning("kubelet stand-in: scheduling pass failed: %s", exc)

    def _schedule_once(self, rotation: Iterator[int]) -> None:
        with self._lock:
            pending = list(self._pending.items())
            live = [n for n, s in self._nodes.items() if s.alive]
        if not pending or not live:
            return
        nodes = []
        for name in live:
            with contextlib.suppress(ApiException):
                nodes.append(self.core.read_node(name))
        for uid, (namespace, name) in pending:
            self._try_bind(uid, namespace, name, nodes, next(rotation))

    def _claims_bound(self, pod: Any) -> bool:
        """The scheduler binds a pod only once its PersistentVolumeClaims are bound (Immediate mode)."""
        for volume in pod.spec.volumes or []:
            if volume.persistent_volume_claim is None:
                continue
            claim = volume.persistent_volume_claim.claim_name
            try:
                pvc = self.core.read_namespaced_persistent_volume_claim(claim, pod.metadata.namespace)
            except ApiException:
                return False
            if pvc.status.phase != "Bound":
                return False
        return True

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
        fits = [
            n
            for n in nodes
            if all((n.metadata.labels or {}).get(k) == v for k, v in selector.items()) and _schedulable_for(pod, n)
        ]
        if not fits or not self._claims_bound(pod):
            return
        # spread as the real scheduler's default scoring does: the fitting node this scheduler gave the
        # fewest pods so far, in turn among equals
        target = min(
            fits, key=lambda n: (self._placed.get(n.metadata.name, 0), (fits.index(n) - turn) % len(fits))
        ).metadata.name
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
            self._placed[target] = self._placed.get(target, 0) + 1


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _attachment(va: Any) -> _Attachment:
    return _Attachment(
        pv=va.spec.source.persistent_volume_name or "",
        node=va.spec.node_name,
        attached=bool(va.status and va.status.attached),
        deleting=va.metadata.deletion_timestamp is not None,
    )
