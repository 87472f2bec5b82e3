"""The schedule Lease judged as client-go's leader election judges its lock (pure, ``now`` passed in)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.decisions import lease
from functions.decisions.lease import LeaseRecord, LeaseState

NOW = datetime(2026, 10, 2, 8, 14, 7, 512331, tzinfo=UTC)
US = "gke-node-drainer-schedule-fn-00012-abc-1a2b3c4d"
OTHER = "gke-node-drainer-schedule-fn-00012-xyz-9e8f7a6b"


def held(holder: str, *, renewed: timedelta, duration: int = 60, transitions: int = 3) -> LeaseRecord:
    """A Lease held by ``holder``, last renewed ``renewed`` before NOW."""
    return LeaseRecord(
        holder=holder,
        duration_seconds=duration,
        acquire_time=NOW - timedelta(minutes=10),
        renew_time=NOW - renewed,
        transitions=transitions,
        resource_version="4711",
    )


RELEASED = LeaseRecord(
    holder="",
    duration_seconds=1,
    acquire_time=NOW - timedelta(seconds=5),
    renew_time=NOW - timedelta(seconds=5),
    transitions=3,
    resource_version="4712",
)


@pytest.mark.parametrize(
    ("record", "state", "may_take"),
    [
        pytest.param(None, LeaseState.ABSENT, True, id="absent"),
        pytest.param(held(OTHER, renewed=timedelta(seconds=61)), LeaseState.EXPIRED, True, id="expired"),
        pytest.param(held(OTHER, renewed=timedelta(minutes=30)), LeaseState.EXPIRED, True, id="expired-long-ago"),
        pytest.param(held(OTHER, renewed=timedelta(seconds=5)), LeaseState.HELD, False, id="held-live-by-other"),
        pytest.param(held(OTHER, renewed=timedelta(seconds=60)), LeaseState.HELD, False, id="other-last-second"),
        pytest.param(held(OTHER, renewed=-timedelta(seconds=2)), LeaseState.HELD, False, id="other-clock-ahead"),
        pytest.param(held(US, renewed=timedelta(seconds=5)), LeaseState.OURS, True, id="held-by-us"),
        pytest.param(held(US, renewed=timedelta(minutes=30)), LeaseState.OURS, True, id="held-by-us-expired"),
        pytest.param(RELEASED, LeaseState.RELEASED, True, id="released"),
        pytest.param(
            LeaseRecord(holder=OTHER, duration_seconds=60, resource_version="1"),
            LeaseState.EXPIRED,
            True,
            id="held-never-renewed",
        ),
    ],
)
def test_who_may_take_the_lease(record: LeaseRecord | None, state: LeaseState, may_take: bool) -> None:
    verdict = lease.judge(record, identity=US, now=NOW)
    assert verdict.state is state
    assert verdict.may_take is may_take
    assert verdict.reason


def test_a_live_holder_is_named_with_when_it_expires() -> None:
    verdict = lease.judge(held(OTHER, renewed=timedelta(seconds=5)), identity=US, now=NOW)
    assert OTHER in verdict.reason
    assert lease.microtime(NOW + timedelta(seconds=55)) in verdict.reason


@pytest.mark.parametrize(
    ("previous", "acquired", "transitions"),
    [
        pytest.param(None, NOW, 0, id="absent-created"),
        pytest.param(held(OTHER, renewed=timedelta(minutes=5)), NOW, 4, id="expired-taken-over"),
        pytest.param(RELEASED, NOW, 4, id="released-taken"),
        pytest.param(held(US, renewed=timedelta(seconds=20)), NOW - timedelta(minutes=10), 3, id="ours-renewed"),
    ],
)
def test_the_spec_written_when_taking_or_renewing(
    previous: LeaseRecord | None, acquired: datetime, transitions: int
) -> None:
    spec = lease.held_spec(previous, identity=US, now=NOW, duration_seconds=60)
    assert spec == {
        "holderIdentity": US,
        "leaseDurationSeconds": 60,
        "acquireTime": lease.microtime(acquired),
        "renewTime": "2026-10-02T08:14:07.512331Z",
        "leaseTransitions": transitions,
    }


def test_release_clears_the_holder_and_keeps_the_transitions() -> None:
    spec = lease.released_spec(held(US, renewed=timedelta(seconds=3), transitions=7), now=NOW)
    assert spec == {
        "holderIdentity": "",
        "leaseDurationSeconds": 1,
        "acquireTime": "2026-10-02T08:14:07.512331Z",
        "renewTime": "2026-10-02T08:14:07.512331Z",
        "leaseTransitions": 7,
    }
    released = LeaseRecord.from_json(lease.lease_body(spec, resource_version="9"))
    later = NOW + timedelta(seconds=2)
    assert lease.judge(released, identity=OTHER, now=later).state is LeaseState.RELEASED


def test_a_lease_read_back_from_the_api_server_shape() -> None:
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "gke-node-drainer-schedule", "namespace": "kube-system", "resourceVersion": "812"},
        "spec": {
            "holderIdentity": OTHER,
            "leaseDurationSeconds": 60,
            "acquireTime": "2026-10-02T08:04:07.000000Z",
            "renewTime": "2026-10-02T08:14:01.250000Z",
            "leaseTransitions": 2,
        },
    }
    record = LeaseRecord.from_json(body)
    assert record == LeaseRecord(
        namespace="kube-system",
        name="gke-node-drainer-schedule",
        holder=OTHER,
        duration_seconds=60,
        acquire_time=datetime(2026, 10, 2, 8, 4, 7, tzinfo=UTC),
        renew_time=datetime(2026, 10, 2, 8, 14, 1, 250000, tzinfo=UTC),
        transitions=2,
        resource_version="812",
    )
    assert record.key == "kube-system/gke-node-drainer-schedule"
    assert record.expires_at == datetime(2026, 10, 2, 8, 15, 1, 250000, tzinfo=UTC)
    # odd values never make a live holder of a Lease nobody renews
    odd = LeaseRecord.from_json({"spec": {"holderIdentity": OTHER, "leaseDurationSeconds": True, "renewTime": 5}})
    assert odd.duration_seconds is None
    assert odd.renew_time is None
    assert lease.judge(odd, identity=US, now=NOW).state is LeaseState.EXPIRED


def test_the_body_to_update_is_guarded_by_the_version_read() -> None:
    spec = lease.held_spec(None, identity=US, now=NOW)
    created = lease.lease_body(spec)
    assert "resourceVersion" not in created["metadata"]
    assert created["metadata"]["namespace"] == lease.LEASE_NAMESPACE == "kube-system"
    assert created["metadata"]["name"] == lease.LEASE_NAME == "gke-node-drainer-schedule"
    assert lease.lease_body(spec, resource_version="17")["metadata"]["resourceVersion"] == "17"


def test_timings_renew_well_before_expiry() -> None:
    # two renewals may fail before the holder stops taking on work, and it stops before it expires
    assert lease.RENEW_INTERVAL_SECONDS * 2 <= lease.RENEW_DEADLINE_SECONDS < lease.LEASE_DURATION_SECONDS
