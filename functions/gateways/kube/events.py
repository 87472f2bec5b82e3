"""Kubernetes Events where the drainer acts, written best effort.

One :class:`EventRecorder` per cluster client. :meth:`EventRecorder.emit` never raises and never
waits on the API server: it updates an in-memory cache of the Events already seen (keyed like
client-go's EventCorrelator: regarding + type + reason + action + note) and puts the key on a
bounded queue, which one background thread per recorder drains. The first occurrence is created
(``events.k8s.io/v1``, ``POST``); a repeat increments the cached ``series`` (count,
lastObservedTime) and is written as a JSON merge patch of that one object, so retries never make
one object each; repeats that pile up while a write is in flight become one patch. When the queue
is full the Event is dropped. A write the API server refuses (RBAC, a namespace that does not
exist, a timeout) or a drop is audited once per recorder (``k8s_event.write_failed``) and never
reaches the caller. Handlers call :meth:`EventRecorder.flush` (bounded) before they return.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.decisions import kube_events
from functions.decisions.actions import Action, Severity
from functions.decisions.kube_events import EventKey, KubeEvent
from functions.decisions.model import Node, Pod
from functions.decisions.names import COMPONENT
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ApiError, Conflict, NotFound

QUEUE_SIZE = 1000  # Events waiting to be written; more are dropped
CACHE_SIZE = 4096  # Events remembered for aggregation (client-go's correlator keeps as many)
WRITE_TIMEOUT = 5.0  # seconds for one write: an Event is not worth a long wait
FLUSH_SECONDS = 2.0  # how long a handler waits for its Events before it returns


def reporting_instance() -> str:
    """A stable id of this instance for ``reportingInstance``: the host name (a pod's name in
    worker mode) and a random part made once per process."""
    return f"{COMPONENT}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"[: kube_events.FIELD_MAX]


@dataclass
class _Series:
    """One Event object: what it says, its name, and how often it happened (vs. was written)."""

    event: KubeEvent
    name: str
    first: datetime
    last: datetime
    count: int = 1
    written: int = 0  # the count the API server has; 0 until the object exists
    queued: bool = False


class EventRecorder:
    def __init__(
        self,
        client: ClusterClient,
        *,
        audit: Audit,
        instance: str,
        queue_size: int = QUEUE_SIZE,
        cache_size: int = CACHE_SIZE,
        write_timeout: float = WRITE_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.audit = audit
        self.instance = instance
        self.write_timeout = write_timeout
        self.lost = 0  # Events dropped or refused since this recorder was made
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[EventKey, _Series] = OrderedDict()
        self._queue: queue.Queue[EventKey] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Condition()
        self._pending = 0  # keys queued or being written
        self._audited = False
        self._thread: threading.Thread | None = None

    # --------------------------------------------------------------- emit
    def emit(self, event: KubeEvent) -> None:
        """Record ``event`` (or one more occurrence of it); never raises, never blocks on the API."""
        try:
            self._emit(event)
        except Exception as exc:  # best effort: an Event never fails the work it reports on
            self._lost(event, f"{type(exc).__name__}: {exc}")

    def _emit(self, event: KubeEvent) -> None:
        now = self._clock()
        key = event.key
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                name = kube_events.event_name(key, instance=self.instance)
                entry = self._cache[key] = _Series(event=event, name=name, first=now, last=now)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            else:
                entry.count += 1
                entry.last = now
                self._cache.move_to_end(key)
            if entry.queued:  # the write already waiting will carry this occurrence too
                return
            entry.queued = True
            self._pending += 1
            self._start()
        try:
            self._queue.put_nowait(key)
        except queue.Full:
            with self._lock:
                entry.queued = False
                self._pending -= 1
                self._lock.notify_all()
            self._lost(event, "the queue of Events to write is full: dropped")

    def _start(self) -> None:  # under the lock
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="k8s-events", daemon=True)
            self._thread.start()

    # -------------------------------------------------------------- write
    def _run(self) -> None:
        while True:
            key = self._queue.get()
            try:
                self._write(key)
            except Exception as exc:  # the thread must live on
                with self._lock:
                    entry = self._cache.get(key)
                if entry is not None:
                    self._lost(entry.event, f"{type(exc).__name__}: {exc}")
            finally:
                with self._lock:
                    self._pending -= 1
                    self._lock.notify_all()

    def _write(self, key: EventKey) -> None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:  # forgotten (the cache is bounded)
                return
            entry.queued = False
            count, last, written = entry.count, entry.last, entry.written
        if written >= count:
            return
        event = entry.event
        namespace = event.regarding.event_namespace
        try:
            if written:
                try:
                    self._patch(namespace, entry.name, count, last)
                except NotFound:  # expired (the API server keeps Events an hour): write it anew
                    written = 0
            if not written:
                body = kube_events.event_body(
                    event,
                    name=entry.name,
                    instance=self.instance,
                    event_time=entry.first,
                    count=count,
                    last_observed=last,
                )
                try:
                    self.client.create_event(namespace=namespace, body=body, timeout=self.write_timeout)
                except Conflict:  # the object exists (this cache forgot it): count on it
                    self._patch(namespace, entry.name, count, last)
        except ApiError as exc:
            self._lost(event, str(exc), status=exc.status.as_dict())
            return
        with self._lock:
            entry.written = max(entry.written, count)

    def _patch(self, namespace: str, name: str, count: int, last: datetime) -> None:
        self.client.patch_event(
            namespace=namespace,
            name=name,
            patch=kube_events.series_patch(count, last),
            timeout=self.write_timeout,
        )

    def _lost(self, event: KubeEvent, why: str, *, status: Mapping[str, object] | None = None) -> None:
        """Count a dropped or refused Event; audit the first one of this recorder only."""
        with self._lock:
            self.lost += 1
            if self._audited:
                return
            self._audited = True
        regarding = event.regarding
        with contextlib.suppress(Exception):  # best effort all the way down
            self.audit.record(
                Action.EVENT_WRITE_FAILED,
                f"could not write the Kubernetes Event {event.reason.value} about {regarding.kind} "
                f"{'/'.join(p for p in (regarding.namespace, regarding.name) if p)}: {why} "
                "(the work goes on; further Events this instance cannot write are not audited)",
                severity=Severity.WARNING,
                event_reason=event.reason.value,
                event_action=event.action.value,
                regarding=regarding.as_json(),
                event_namespace=regarding.event_namespace,
                error=why,
                status=dict(status) if status else None,
            )

    # -------------------------------------------------------------- flush
    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait at most ``timeout`` seconds for the Events emitted so far; True when all were handled."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    # --------------------------------------------------- the Events we write
    def cordoned(self, node: Node, *, event_kind: str, event_id: str, was_unschedulable: bool) -> None:
        self.emit(
            kube_events.cordoned(node, event_kind=event_kind, event_id=event_id, was_unschedulable=was_unschedulable)
        )

    def drain_completed(
        self, node: Node, *, event_kind: str, event_id: str, counts: Mapping[str, int], seconds: float
    ) -> None:
        self.emit(
            kube_events.drain_completed(node, event_kind=event_kind, event_id=event_id, counts=counts, seconds=seconds)
        )

    def drain_incomplete(
        self,
        node: Node,
        *,
        event_kind: str,
        event_id: str,
        blocked: Mapping[str, str | None],
        remaining: Iterable[str],
        why: str,
    ) -> None:
        self.emit(
            kube_events.drain_incomplete(
                node, event_kind=event_kind, event_id=event_id, blocked=blocked, remaining=remaining, why=why
            )
        )

    def verified_down(self, node: Node, *, signal: str) -> None:
        """``signal``: the rule that verified it (``kube_events.SIGNAL_NODE_READY_UNKNOWN``, ...)."""
        self.emit(kube_events.verified_down(node, signal=signal))

    def out_of_service_taint_added(self, node: Node, *, why: str) -> None:
        self.emit(kube_events.out_of_service_taint_added(node, why=why))

    def out_of_service_taint_removed(self, node: Node, *, why: str) -> None:
        self.emit(kube_events.out_of_service_taint_removed(node, why=why))

    def force_cleanup(self, node: Node, *, pods: Iterable[str]) -> None:
        self.emit(kube_events.force_cleanup(node, pods=pods))

    def uncordoned(self, node: Node, *, why: str) -> None:
        self.emit(kube_events.uncordoned(node, why=why))

    def released(self, node: Node, *, why: str) -> None:
        self.emit(kube_events.released(node, why=why))

    def evicted(self, pod: Pod, *, node: str, why: str) -> None:
        self.emit(kube_events.evicted(pod, node=node, why=why))

    def eviction_blocked(self, pod: Pod, *, node: str, pdb: str | None, message: str) -> None:
        self.emit(kube_events.eviction_blocked(pod, node=node, pdb=pdb, message=message))

    def force_deleted(self, pod: Pod, *, node: str) -> None:
        self.emit(kube_events.force_deleted(pod, node=node))

    def skipped(self, pod: Pod, *, node: str, why: str) -> None:
        self.emit(kube_events.skipped(pod, node=node, why=why))
