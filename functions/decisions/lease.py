"""The scheduled run's Lease, judged as client-go's leader election judges its lock (pure).

One ``coordination.k8s.io/v1`` Lease per cluster (:data:`LEASE_NAMESPACE`/:data:`LEASE_NAME`)
makes scheduled runs single-flight. A run may take it when it is absent, released (no holder),
expired (``renewTime + leaseDurationSeconds < now``) or already held by this instance; a holder
that renewed within its duration is live and the run leaves the cluster to it. Taking, renewing
and releasing write the fields client-go's ``LeaseLock`` writes (holderIdentity,
leaseDurationSeconds, acquireTime, renewTime, leaseTransitions); the gateway sends them guarded
by the Lease's resourceVersion, so of two runs that read the same Lease only one succeeds.

Expiry is judged from the holder's own ``renewTime`` (client-go uses the time it last saw the
record change, which a run that lives for one call cannot know): the clocks of the instances are
NTP-synchronized, and the duration is long against their skew.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from functions.decisions.names import COMPONENT
from functions.decisions.times import parse_time

LEASE_API_VERSION = "coordination.k8s.io/v1"
LEASE_NAMESPACE = "kube-system"  # terraform/rbac/drainer-rbac.yaml grants the Role there
LEASE_NAME = f"{COMPONENT}-schedule"  # the Role's only resourceName
# A run renews its Lease every RENEW_INTERVAL_SECONDS while it works (and never after its own
# deadline), so the duration only has to outlast a few missed renewals: a Lease left by a crashed
# or frozen run expires at most LEASE_DURATION_SECONDS after its last renewal, and the next
# scheduled run (one a minute) takes it over. It is not tied to the function's timeout, which would
# keep a crashed run's clusters unrecovered for up to an hour.
LEASE_DURATION_SECONDS = 60
RENEW_INTERVAL_SECONDS = 20.0  # a third of the duration: two renewals may fail before it expires
# Like client-go's RenewDeadline: a holder that could not renew for this long stops taking on work
# (before the Lease expires and another run may take it over).
RENEW_DEADLINE_SECONDS = 40.0
RELEASED_DURATION_SECONDS = 1  # client-go's release: the Lease is free at once for anyone


class LeaseState(StrEnum):
    ABSENT = "absent"  # no Lease yet: create it
    RELEASED = "released"  # no holder: the last run released it
    EXPIRED = "expired"  # its holder stopped renewing (a crashed run)
    OURS = "ours"  # held by this instance: renew it
    HELD = "held"  # held by another live holder: leave the cluster to it


@dataclass(frozen=True, kw_only=True)
class LeaseRecord:
    """A Lease as read from the API server (client-go's LeaderElectionRecord, plus its version)."""

    namespace: str = LEASE_NAMESPACE
    name: str = LEASE_NAME
    holder: str = ""  # "" when nobody holds it
    duration_seconds: int | None = None
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    resource_version: str = ""

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> LeaseRecord:
        metadata = body.get("metadata") or {}
        spec = body.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        transitions = spec.get("leaseTransitions")
        return cls(
            namespace=str(metadata.get("namespace") or LEASE_NAMESPACE),
            name=str(metadata.get("name") or LEASE_NAME),
            holder=str(spec.get("holderIdentity") or ""),
            duration_seconds=duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
            acquire_time=parse_time(spec.get("acquireTime")),
            renew_time=parse_time(spec.get("renewTime")),
            transitions=transitions if isinstance(transitions, int) and not isinstance(transitions, bool) else 0,
            resource_version=str(metadata.get("resourceVersion") or ""),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def expires_at(self) -> datetime | None:
        """When the holder's claim ends unless renewed; None when it cannot be told (never renewed)."""
        if self.renew_time is None or self.duration_seconds is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_seconds)


@dataclass(frozen=True, kw_only=True)
class LeaseVerdict:
    state: LeaseState
    reason: str

    @property
    def may_take(self) -> bool:
        return self.state is not LeaseState.HELD


def judge(record: LeaseRecord | None, *, identity: str, now: datetime) -> LeaseVerdict:
    """Whether a run of ``identity`` may take (or renew) the Lease ``record`` at ``now``."""
    if record is None:
        return LeaseVerdict(state=LeaseState.ABSENT, reason="no Lease yet")
    if not record.holder:
        return LeaseVerdict(state=LeaseState.RELEASED, reason="released by its last holder")
    if record.holder == identity:
        return LeaseVerdict(state=LeaseState.OURS, reason="held by this instance")
    expires = record.expires_at
    if expires is None:
        return LeaseVerdict(
            state=LeaseState.EXPIRED, reason=f"held by {record.holder} with no renewTime or duration: nobody renews it"
        )
    if expires < now:
        return LeaseVerdict(
            state=LeaseState.EXPIRED,
            reason=f"held by {record.holder}, not renewed since {microtime(record.renew_time or expires)}: "
            f"expired {(now - expires).total_seconds():.0f} s ago",
        )
    return LeaseVerdict(
        state=LeaseState.HELD,
        reason=f"held by {record.holder}, renewed {microtime(record.renew_time or now)}, "
        f"live until {microtime(expires)}",
    )


def held_spec(
    previous: LeaseRecord | None, *, identity: str, now: datetime, duration_seconds: int = LEASE_DURATION_SECONDS
) -> dict[str, Any]:
    """The Lease's spec when ``identity`` takes or renews it at ``now`` (client-go's
    tryAcquireOrRenew): the holder keeps its acquireTime and the transition count on a renewal; a
    new holder starts a new acquireTime and counts one more transition (none on creation)."""
    renewal = previous is not None and previous.holder == identity
    if previous is None:
        acquired, transitions = now, 0
    elif renewal:
        acquired, transitions = previous.acquire_time or now, previous.transitions
    else:
        acquired, transitions = now, previous.transitions + 1
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration_seconds,
        "acquireTime": microtime(acquired),
        "renewTime": microtime(now),
        "leaseTransitions": transitions,
    }


def released_spec(previous: LeaseRecord, *, now: datetime) -> dict[str, Any]:
    """The spec that releases the Lease (client-go's ReleaseOnCancel): no holder, a duration of one
    second, renewed now; the transition count is kept."""
    return {
        "holderIdentity": "",
        "leaseDurationSeconds": RELEASED_DURATION_SECONDS,
        "acquireTime": microtime(now),
        "renewTime": microtime(now),
        "leaseTransitions": previous.transitions,
    }


def lease_body(
    spec: Mapping[str, Any],
    *,
    namespace: str = LEASE_NAMESPACE,
    name: str = LEASE_NAME,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """The whole Lease object to create, or to update (PUT) guarded by ``resource_version``."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/name": COMPONENT},
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": LEASE_API_VERSION, "kind": "Lease", "metadata": metadata, "spec": dict(spec)}


def microtime(moment: datetime) -> str:
    """A ``metav1.MicroTime`` as the API server writes it: microseconds in UTC with ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
