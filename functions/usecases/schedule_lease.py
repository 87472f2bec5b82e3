"""Holding one cluster's schedule Lease as client-go's leader election holds its lock: taken once
at the start of a run (a run never waits for it), renewed while the run works, released at the end.

The decisions (may it be taken, what the Lease says then) are :mod:`functions.decisions.lease`;
the HTTP calls are the cluster client's; this module puts them in order and keeps what was last
written, whose resourceVersion guards the next write.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.decisions import lease
from functions.decisions.lease import LeaseRecord
from functions.errors import TransientError
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.errors import ApiError, Conflict, NotFound

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Overlap:
    """The Lease is held by a live holder (or another run won the race to take it)."""

    holder: str
    lease: str  # namespace/name
    reason: str


class LeaseHold:
    """One cluster's Lease while this run holds it. :meth:`renew` and :meth:`release` may be called
    from different threads; ``lost`` says why the hold ended early (None while it holds)."""

    def __init__(
        self,
        client: ClusterClient,
        record: LeaseRecord,
        *,
        identity: str,
        duration: int,
        renew_deadline: float,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.identity = identity
        self.duration = duration
        self.renew_deadline = renew_deadline
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self.record = record
        self.renewed_at = monotonic()
        self.renewals = 0
        self.lost: str | None = None
        self.taken_by: str | None = None  # the holder that took the Lease over, when that is why it was lost

    @property
    def key(self) -> str:
        return self.record.key

    def renew(self) -> bool:
        """Renew the Lease (guarded by the resourceVersion last written); True while it is held. A
        conflict is read again: still ours (someone changed only what we do not own), renewed with
        the new version; someone else's, lost. A failure is retried at the next renewal until the
        renew deadline has passed since the last success, then the hold is lost."""
        with self._lock:
            if self.lost is not None:
                return False
            record = self.record
            try:
                try:
                    self.record = self._renewed(record)
                except Conflict:
                    fresh = self.client.get_lease(namespace=record.namespace, name=record.name)
                    if fresh is None or fresh.holder != self.identity:
                        self.taken_by = fresh.holder if fresh is not None else None
                        self.lost = f"the Lease {record.key} was " + (
                            "deleted" if fresh is None else f"taken by {fresh.holder or 'nobody'}"
                        )
                        return False
                    self.record = self._renewed(fresh)
            except NotFound:
                self.lost = f"the Lease {record.key} was deleted"
                return False
            except (ApiError, TransientError) as exc:
                silent = self._monotonic() - self.renewed_at
                if silent >= self.renew_deadline:
                    self.lost = f"the Lease {record.key} could not be renewed for {silent:.0f} s: {exc}"
                return self.lost is None
            self.renewed_at = self._monotonic()
            self.renewals += 1
            return True

    def release(self) -> bool:
        """Release the Lease (client-go's ReleaseOnCancel), guarded by the resourceVersion last
        written: a Lease someone else took meanwhile is left alone. False when it was not released
        (it then expires by itself)."""
        with self._lock:
            if self.lost is not None:
                return False
            record = self.record
            try:
                self.record = self._write(lease.released_spec(record, now=self._clock()), record)
            except (ApiError, TransientError):
                return False
            self.lost = "released"
            return True

    def _renewed(self, previous: LeaseRecord) -> LeaseRecord:
        spec = lease.held_spec(previous, identity=self.identity, now=self._clock(), duration_seconds=self.duration)
        return self._write(spec, previous)

    def _write(self, spec: dict[str, object], previous: LeaseRecord) -> LeaseRecord:
        body = lease.lease_body(
            spec, namespace=previous.namespace, name=previous.name, resource_version=previous.resource_version
        )
        return self.client.update_lease(namespace=previous.namespace, name=previous.name, body=body)


def take(
    client: ClusterClient,
    *,
    identity: str,
    duration: int = lease.LEASE_DURATION_SECONDS,
    renew_deadline: float = lease.RENEW_DEADLINE_SECONDS,
    namespace: str = lease.LEASE_NAMESPACE,
    name: str = lease.LEASE_NAME,
    clock: Clock = utc_now,
) -> LeaseHold | Overlap:
    """Take the Lease once (client-go's tryAcquireOrRenew): create it when absent (409: someone
    else created it first), or update it, guarded by the version just read, when it is released,
    expired or ours (409: someone else took it first). Raises the API's errors otherwise."""
    key = f"{namespace}/{name}"
    current = client.get_lease(namespace=namespace, name=name)
    now = clock()
    verdict = lease.judge(current, identity=identity, now=now)
    if not verdict.may_take:
        return Overlap(holder=current.holder if current else "", lease=key, reason=verdict.reason)
    spec = lease.held_spec(current, identity=identity, now=now, duration_seconds=duration)
    try:
        if current is None:
            body = lease.lease_body(spec, namespace=namespace, name=name)
            taken = client.create_lease(namespace=namespace, body=body)
        else:
            body = lease.lease_body(spec, namespace=namespace, name=name, resource_version=current.resource_version)
            taken = client.update_lease(namespace=namespace, name=name, body=body)
    except (Conflict, NotFound):
        return _lost_race(client, key=key, namespace=namespace, name=name)
    return LeaseHold(client, taken, identity=identity, duration=duration, renew_deadline=renew_deadline, clock=clock)


def _lost_race(client: ClusterClient, *, key: str, namespace: str, name: str) -> Overlap:
    """Another run wrote the Lease between our read and our write: it won. Its holder, when it can
    be read."""
    try:
        winner = client.get_lease(namespace=namespace, name=name)
    except (ApiError, TransientError):
        winner = None
    holder = winner.holder if winner is not None else ""
    return Overlap(holder=holder, lease=key, reason=f"another run took the Lease first ({holder or 'unknown holder'})")


class Renewer:
    """Renews the holds of one run every ``every`` seconds, in one thread, until stopped or until
    the run's deadline (``until``, time.monotonic()): a run that overstays its deadline stops
    renewing, and its Lease expires one duration later."""

    def __init__(self, holds: Iterable[LeaseHold], *, every: float, until: float) -> None:
        self.holds = list(holds)
        self.every = every
        self.until = until
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="schedule-lease-renewer", daemon=True)

    def start(self) -> Renewer:
        if self.holds:
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the renewals to end (stopped, or the deadline passed); True when they have."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            if time.monotonic() >= self.until:
                return
            for hold in self.holds:
                if self._stop.is_set():
                    return
                hold.renew()
