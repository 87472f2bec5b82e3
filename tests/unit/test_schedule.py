"""The scheduled run's single flight, without a cluster: its Lease taken, renewed, lost and released
against an in-memory Lease store that keeps resourceVersions as the API server does."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from functions.decisions import lease
from functions.decisions.actions import Action, Severity
from functions.decisions.lease import LeaseRecord
from functions.decisions.settings import ClusterConfig, Settings
from functions.gateways.audit import Audit
from functions.gateways.kube.errors import ApiStatus, ApiUnavailable, Conflict, NotFound
from functions.usecases.runtime import Runtime
from functions.usecases.schedule import Schedule
from functions.usecases.schedule_lease import LeaseHold, Renewer

ALPHA = ClusterConfig(name="alpha", project="acme-prod", location="europe-west4")
BETA = ClusterConfig(name="beta", project="acme-prod", location="europe-west4")
KEY = f"{lease.LEASE_NAMESPACE}/{lease.LEASE_NAME}"
WAIT = 10.0  # seconds a condition may take to come true


def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


class FakeLeases:
    """One cluster's Lease objects as the API server keeps them: create fails when the Lease exists
    (409), update when its resourceVersion is not the stored one (409) or it is gone (404)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 100
        self.down = False  # every call fails as an unreachable API server
        self.writes: list[str] = []
        self._lock = threading.Lock()

    def _check(self, request: str) -> None:
        if self.down:
            raise ApiUnavailable(ApiStatus(code=0, message="connection refused"), request=request)

    def get_lease(self, *, namespace: str, name: str) -> LeaseRecord | None:
        self._check("GET lease")
        with self._lock:
            found = self.objects.get((namespace, name))
            return LeaseRecord.from_json(found) if found else None

    def create_lease(self, *, namespace: str, body: dict[str, Any]) -> LeaseRecord:
        self._check("POST lease")
        with self._lock:
            key = (namespace, body["metadata"]["name"])
            if key in self.objects:
                raise Conflict(ApiStatus(code=409, reason="AlreadyExists"), request="POST lease")
            return self._store(key, body, "create")

    def update_lease(self, *, namespace: str, name: str, body: dict[str, Any]) -> LeaseRecord:
        self._check("PUT lease")
        with self._lock:
            current = self.objects.get((namespace, name))
            if current is None:
                raise NotFound(ApiStatus(code=404, reason="NotFound"), request="PUT lease")
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                raise Conflict(ApiStatus(code=409, reason="Conflict"), request="PUT lease")
            return self._store((namespace, name), body, "update")

    def _store(self, key: tuple[str, str], body: dict[str, Any], verb: str) -> LeaseRecord:
        self.version += 1
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = stored
        self.writes.append(f"{verb} {stored['spec']['holderIdentity'] or '-'}")
        return LeaseRecord.from_json(stored)

    # --- test helpers
    def put(self, *, holder: str, renewed: datetime, duration: int = 60, transitions: int = 0) -> None:
        """The Lease as another instance left it."""
        spec = {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration,
            "acquireTime": lease.microtime(renewed),
            "renewTime": lease.microtime(renewed),
            "leaseTransitions": transitions,
        }
        with self._lock:
            self._store((lease.LEASE_NAMESPACE, lease.LEASE_NAME), lease.lease_body(spec), "put")

    def record(self) -> LeaseRecord | None:
        with self._lock:
            found = self.objects.get((lease.LEASE_NAMESPACE, lease.LEASE_NAME))
            return LeaseRecord.from_json(found) if found else None


@dataclass(frozen=True)
class Recording(Audit):
    records: list[tuple[Action, str, Severity, dict[str, Any]]] = field(default_factory=list)

    def bind(self, **more: Any) -> Audit:
        return self

    def record(self, action: Action, message: str, /, *, severity: Severity = Severity.INFO, **details: Any) -> None:
        self.records.append((action, message, severity, details))

    def of(self, action: Action) -> list[dict[str, Any]]:
        return [details for a, _, _, details in self.records if a is action]


class FakeOps:
    """Recovery and cleanup that only say they ran; a cluster in ``hold`` waits in its recovery
    until ``release`` is set (a slow run)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []
        self.hold: set[str] = set()
        self.working = threading.Event()
        self.release = threading.Event()

    def recover(self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit, deadline: float) -> list[dict[str, str]]:
        self.calls.append(("recover", cluster.name, dry_run))
        if cluster.name in self.hold:
            self.working.set()
            assert self.release.wait(WAIT)
        return []

    def cleanup(
        self, cluster: ClusterConfig, *, dry_run: bool, audit: Audit, now: datetime, budget: float | None = None
    ) -> dict[str, Any]:
        self.calls.append(("cleanup", cluster.name, dry_run))
        return {"cluster": cluster.name}


@dataclass
class Instance:
    schedule: Schedule
    ops: FakeOps
    audit: Recording

    @property
    def identity(self) -> str:
        return self.schedule.identity

    def run(self, action: str = "all", *, dry_run: bool = False, seconds: float = 60.0) -> dict[str, Any]:
        report = self.schedule.run(
            action=action, dry_run=dry_run, audit=self.audit, deadline=time.monotonic() + seconds
        )
        return report.as_dict()

    def run_in_thread(self, action: str = "all", **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
        out: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: out.update(self.run(action, **kwargs)), daemon=True)
        thread.start()
        return thread, out


@pytest.fixture
def leases() -> dict[str, FakeLeases]:
    return {ALPHA.name: FakeLeases(), BETA.name: FakeLeases()}


@pytest.fixture
def instance(leases: dict[str, FakeLeases]) -> Callable[..., Instance]:
    """A function instance (its own holder identity) on the shared clusters."""

    def make(**options: Any) -> Instance:
        runtime = Runtime(
            Settings(clusters=(ALPHA, BETA), deadlines={}, api_timeout=2.0),
            client_factory=lambda cluster: leases[cluster.name],  # type: ignore[return-value]
        )
        ops = FakeOps()
        return Instance(Schedule(runtime, ops, **options), ops, Recording())

    return make


@pytest.fixture
def ending() -> Iterator[list[FakeOps]]:
    """Slow runs still waiting are let go at the end of a test."""
    held: list[FakeOps] = []
    yield held
    for ops in held:
        ops.release.set()


def _states(leases: dict[str, FakeLeases]) -> dict[str, tuple[str, int | None]]:
    out = {}
    for name, store in leases.items():
        record = store.record()
        assert record is not None
        out[name] = (record.holder, record.duration_seconds)
    return out


def test_a_run_takes_each_clusters_lease_and_releases_it(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases]
) -> None:
    one = instance()
    result = one.run()
    assert result["clusters"] == [{"cluster": "alpha", "result": "ok"}, {"cluster": "beta", "result": "ok"}]
    assert one.ops.calls == [
        ("recover", "alpha", False),
        ("recover", "beta", False),
        ("cleanup", "alpha", False),
        ("cleanup", "beta", False),
    ]
    assert leases["alpha"].writes == [f"create {one.identity}", "update -"]
    assert _states(leases) == {"alpha": ("", 1), "beta": ("", 1)}
    again = one.run()  # released: the next run takes it again, as a new holder
    assert [c["result"] for c in again["clusters"]] == ["ok", "ok"]
    record = leases["alpha"].record()
    assert record is not None
    assert record.transitions == 1


def test_a_live_holder_keeps_its_cluster_and_the_run_goes_on(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases]
) -> None:
    leases["alpha"].put(holder="other-instance", renewed=datetime.now(UTC))
    one = instance()
    result = one.run()
    assert result["clusters"] == [
        {"cluster": "alpha", "result": "overlap", "holder": "other-instance", "lease": KEY},
        {"cluster": "beta", "result": "ok"},
    ]
    assert [c for c in one.ops.calls if c[1] == "alpha"] == []
    [overlap] = one.audit.of(Action.SCHEDULE_OVERLAP)
    assert overlap["holder"] == "other-instance"
    assert overlap["lease"] == KEY
    assert overlap["cluster"] == "alpha"
    assert leases["alpha"].writes == ["put other-instance"]  # never written, never released by us


def test_a_crashed_runs_lease_is_taken_over(instance: Callable[..., Instance], leases: dict[str, FakeLeases]) -> None:
    leases["alpha"].put(holder="crashed", renewed=datetime(2026, 1, 1, tzinfo=UTC), transitions=4)
    one = instance()
    assert [c["result"] for c in one.run()["clusters"]] == ["ok", "ok"]
    assert leases["alpha"].writes == ["put crashed", f"update {one.identity}", "update -"]
    record = leases["alpha"].record()
    assert record is not None
    assert record.transitions == 5


def test_overlapping_runs_of_two_instances(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases], ending: list[FakeOps]
) -> None:
    first, second = instance(), instance()
    ending.append(first.ops)
    first.ops.hold.add("beta")
    thread, answer = first.run_in_thread()
    assert first.ops.working.wait(WAIT)
    result = second.run()  # answers while the first is still working
    assert thread.is_alive()
    assert [c["result"] for c in result["clusters"]] == ["overlap", "overlap"]
    assert {c["holder"] for c in result["clusters"]} == {first.identity}
    assert second.ops.calls == []
    assert len(second.audit.of(Action.SCHEDULE_OVERLAP)) == 2
    first.ops.release.set()
    thread.join(WAIT)
    assert [c["result"] for c in answer["clusters"]] == ["ok", "ok"]
    assert _states(leases) == {"alpha": ("", 1), "beta": ("", 1)}


def test_overlapping_runs_of_one_instance(instance: Callable[..., Instance], ending: list[FakeOps]) -> None:
    one = instance()
    ending.append(one.ops)
    one.ops.hold.add("alpha")
    thread, _ = one.run_in_thread("recover")
    assert one.ops.working.wait(WAIT)
    # the same holder identity: the Lease alone would let it in; the instance keeps it out
    result = one.schedule.run(action="cleanup", dry_run=False, audit=Recording(), deadline=time.monotonic() + 60)
    assert [c["result"] for c in result.clusters] == ["overlap", "overlap"]
    assert [c for c in one.ops.calls if c[0] == "cleanup"] == []
    one.ops.release.set()
    thread.join(WAIT)
    assert [c["result"] for c in one.run()["clusters"]] == ["ok", "ok"]  # free again once it ended


def test_the_lease_is_renewed_while_the_run_works(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases], ending: list[FakeOps]
) -> None:
    one = instance(renew_every=0.02)
    ending.append(one.ops)
    one.ops.hold.add("alpha")
    thread, _ = one.run_in_thread()
    assert one.ops.working.wait(WAIT)
    taken = leases["alpha"].record()
    assert taken is not None
    wait_for(lambda: len(leases["alpha"].writes) >= 4 and len(leases["beta"].writes) >= 4)
    renewed = leases["alpha"].record()
    assert renewed is not None
    assert renewed.holder == one.identity
    assert renewed.acquire_time == taken.acquire_time
    assert renewed.renew_time is not None
    assert taken.renew_time is not None
    assert renewed.renew_time > taken.renew_time
    assert renewed.transitions == taken.transitions
    one.ops.release.set()
    thread.join(WAIT)
    assert _states(leases) == {"alpha": ("", 1), "beta": ("", 1)}


def test_a_lease_taken_over_meanwhile_stops_the_work_and_is_not_released(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases], ending: list[FakeOps]
) -> None:
    one = instance(renew_every=0.02)
    ending.append(one.ops)
    one.ops.hold.add("alpha")
    thread, answer = one.run_in_thread()
    assert one.ops.working.wait(WAIT)
    leases["beta"].put(holder="thief", renewed=datetime.now(UTC))  # e.g. after a long pause of this instance
    wait_for(lambda: _lost(one, "beta") is not None)
    assert _lost(one, "beta") == f"the Lease {KEY} was taken by thief"
    one.ops.release.set()
    thread.join(WAIT)
    assert answer["clusters"][0] == {"cluster": "alpha", "result": "ok"}
    assert answer["clusters"][1]["result"] == "overlap"
    assert answer["clusters"][1]["holder"] == "thief"
    assert ("cleanup", "alpha", False) in one.ops.calls
    assert ("cleanup", "beta", False) not in one.ops.calls
    record = leases["beta"].record()
    assert record is not None
    assert record.holder == "thief"  # our release, guarded by our last version, left it alone
    assert leases["beta"].writes[-1] == "put thief"


def test_a_lease_that_cannot_be_renewed_stops_the_work(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases], ending: list[FakeOps]
) -> None:
    one = instance(renew_every=0.01, renew_deadline=0.05)
    ending.append(one.ops)
    one.ops.hold.add("alpha")
    thread, answer = one.run_in_thread()
    assert one.ops.working.wait(WAIT)
    leases["beta"].down = True
    wait_for(lambda: _lost(one, "beta") is not None)
    one.ops.release.set()
    thread.join(WAIT)
    assert answer["clusters"][0] == {"cluster": "alpha", "result": "ok"}
    assert answer["clusters"][1]["result"] == "failed"
    assert "could not be renewed" in answer["clusters"][1]["error"]
    assert ("cleanup", "beta", False) not in one.ops.calls


def _lost(one: Instance, cluster: str) -> str | None:
    hold = one.schedule.holding(cluster)
    assert hold is not None
    return hold.lost


def test_a_lease_that_cannot_be_taken_fails_only_its_cluster(
    instance: Callable[..., Instance], leases: dict[str, FakeLeases]
) -> None:
    leases["alpha"].down = True
    one = instance()
    result = one.run()
    assert result["clusters"][0]["result"] == "failed"
    assert "connection refused" in result["clusters"][0]["error"]
    assert result["clusters"][1] == {"cluster": "beta", "result": "ok"}
    assert [c[1] for c in one.ops.calls] == ["beta", "beta"]
    [failure] = one.audit.of(Action.CLUSTER_UNREACHABLE)
    assert failure["cluster"] == "alpha"


def test_a_dry_run_takes_no_lease(instance: Callable[..., Instance], leases: dict[str, FakeLeases]) -> None:
    one = instance()
    result = one.run(dry_run=True)
    assert [c["result"] for c in result["clusters"]] == ["ok", "ok"]
    assert one.ops.calls[0] == ("recover", "alpha", True)
    assert leases["alpha"].writes == []
    assert leases["alpha"].record() is None


class CountingHold:
    def __init__(self) -> None:
        self.renewals = 0

    def renew(self) -> bool:
        self.renewals += 1
        return True


def test_renewals_end_at_the_runs_deadline() -> None:
    hold = CountingHold()
    renewer = Renewer([hold], every=0.01, until=time.monotonic() + 0.2).start()  # type: ignore[list-item]
    assert renewer.wait(WAIT)  # it ends by itself at the deadline, not when the run ends
    count = hold.renewals
    assert count >= 1
    renewer.stop()
    assert hold.renewals == count


def test_a_hold_is_renewed_with_the_version_it_last_wrote() -> None:
    store = FakeLeases()
    store.put(holder="me", renewed=datetime.now(UTC))
    first = store.record()
    assert first is not None
    hold = LeaseHold(store, first, identity="me", duration=60, renew_deadline=1.0)
    assert hold.renew()
    assert hold.renew()
    assert store.writes == ["put me", "update me", "update me"]
    assert hold.release()
    assert not hold.renew()  # released: never renewed again
    assert store.writes[-1] == "update -"
