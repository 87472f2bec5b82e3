"""The event function and ``explain`` reach the same verdict on the same delivery (issue: one verdict).

Every fixture, every forged look-alike and a fuzzed set of deliveries (every kind, ages on both
sides of the maximum, publish times and delivery attempts, other methods, broken fields) go through
the function's use case in-process (no cluster is configured, so an event that would act ends at
"no configured cluster can own it") and through ``explain``; their verdicts must be equal. And the
explain fix: an old preemption is stale for both, and a plan never names the taint when it is off.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.decisions.logentry import EventKind
from functions.decisions.settings import DEFAULT_DEADLINES, Settings
from functions.entry import explain as explaining
from functions.errors import PermanentError
from functions.gateways import audit as audit_log
from functions.usecases.node_events import NodeEvents
from functions.usecases.runtime import Runtime
from tests.support.deliveries import FIXTURES, KINDS, load_fixture, log_entry, rfc3339
from tests.support.forgeries import FORGERIES

SETTINGS = Settings(clusters=(), deadlines=DEFAULT_DEADLINES, compute_fence=False)
MAX_AGE = timedelta(seconds=SETTINGS.max_event_age)


def push_body(entry: Any, *, published: datetime | None = None, attempt: int | None = None) -> dict[str, Any]:
    raw = entry if isinstance(entry, bytes) else json.dumps(entry).encode()
    body: dict[str, Any] = {
        "message": {
            "data": base64.b64encode(raw).decode(),
            "messageId": "1",
            "publishTime": rfc3339(published or datetime.now(UTC)),
        },
        "subscription": "projects/acme-prod/subscriptions/s",
    }
    if attempt is not None:
        body["deliveryAttempt"] = attempt
    return body


def function_verdict(body: Any) -> str:
    """What the function did, read back from its audit records."""
    stream = io.StringIO()
    audit_log.configure(stream=stream)
    try:
        with contextlib.suppress(PermanentError):
            NodeEvents(Runtime(SETTINGS)).handle_delivery(copy.deepcopy(body), trigger="pubsub", delivery_id="x")
    finally:
        audit_log.configure()
    actions = [json.loads(line)["action"] for line in stream.getvalue().splitlines() if line.startswith("{")]
    for action, verdict in (
        ("event.malformed", "malformed"),
        ("event.expired", "expired"),
        ("event.stale", "stale"),
    ):
        if action in actions:
            return verdict
    if "event.ignored" in actions:
        # ignored before the cluster was asked (the parser), or for want of a cluster: the event acts
        return "act" if "event.received" in actions else "ignored"
    raise AssertionError(f"no verdict in {actions}")


def explain_verdict(body: Any) -> str:
    config = explaining.ExplainSettings(settings=SETTINGS, source="test")
    [result] = explaining.explain(json.dumps(body).encode(), config=config, env={}, now=datetime.now(UTC))
    return result.verdict.value


def agree(body: Any) -> str:
    ours, theirs = function_verdict(body), explain_verdict(body)
    assert ours == theirs, (ours, theirs, body)
    return ours


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_every_fixture(name: str) -> None:
    value = load_fixture(name)
    body = value if "message" in value else push_body(value, published=datetime.now(UTC))
    if "context" in value:  # the 1st-gen shape: its PubsubMessage
        body = {"message": value["data"], "subscription": "s"}
    # the fixtures are from 2026-10-02: stale or expired by now, never acted on, by both
    assert agree(body) in ("stale", "expired")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_fresh(kind: str) -> None:
    assert agree(push_body(log_entry(kind, instance="gke-pool-a-1"))) == "act"


@pytest.mark.parametrize("forged", FORGERIES, ids=lambda f: f.id)
def test_every_forgery(forged: Any) -> None:
    entry = forged.apply(log_entry("preempted", instance="gke-pool-a-1"), now=datetime.now(UTC))
    assert agree(push_body(entry)) == "malformed"


AGES = [timedelta(0), timedelta(minutes=30), MAX_AGE - timedelta(minutes=5), MAX_AGE + timedelta(minutes=5)]
AGES += [timedelta(days=3 * 365), -timedelta(hours=2), -timedelta(seconds=10)]
METHODS = [None, "compute.instances.migrateOnHostMaintenance", "compute.instances.insert", "v1.compute.instances.stop"]


@settings(
    derandomize=True, database=None, deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    kind=st.sampled_from(KINDS),
    age=st.sampled_from(AGES),
    published_after=st.sampled_from([None, timedelta(seconds=3), MAX_AGE + timedelta(hours=1)]),
    attempt=st.sampled_from([None, 1, 2, 9]),
    method=st.sampled_from(METHODS),
    broken=st.sampled_from([None, "timestamp", "resourceName", "insertId", "instance_id"]),
)
def test_a_fuzzed_set(
    kind: str,
    age: timedelta,
    published_after: timedelta | None,
    attempt: int | None,
    method: str | None,
    broken: str | None,
) -> None:
    when = datetime.now(UTC) - age
    entry = log_entry(kind, instance="gke-pool-a-1", when=when)
    if method is not None:
        entry["protoPayload"]["methodName"] = method
    if broken == "timestamp":
        entry["timestamp"] = "yesterday"
    elif broken == "resourceName":
        entry["protoPayload"]["resourceName"] = "projects/p/zones/z/instances/UPPER"
    elif broken == "insertId":
        del entry["insertId"]
    elif broken == "instance_id":
        entry["resource"]["labels"]["instance_id"] = "not-a-number"
    published = when + published_after if published_after is not None else None
    agree(push_body(entry, published=published, attempt=attempt))


def test_an_old_preemption_is_stale_for_explain_too() -> None:
    """The explain fix: a three-year-old preemption, replayed now, is stale, not a plan to act on."""
    old = datetime.now(UTC) - timedelta(days=3 * 365)
    body = push_body(log_entry("preempted", instance="gke-pool-a-1", when=old))
    assert agree(body) == "stale"
    config = explaining.ExplainSettings(settings=SETTINGS, source="test")
    [result] = explaining.explain(json.dumps(body).encode(), config=config, env={}, now=datetime.now(UTC))
    assert "older" in result.fields["reason"] or "old" in result.fields["reason"]
    assert "acknowledge and audit event.stale" in result.fields["decision"]


def test_the_plan_names_the_taint_only_when_it_is_on() -> None:
    body = push_body(log_entry("preempted", instance="gke-pool-a-1"))
    for taint in (True, False):
        config = explaining.ExplainSettings(
            settings=Settings(clusters=(), deadlines=DEFAULT_DEADLINES, out_of_service_taint=taint), source="test"
        )
        [result] = explaining.explain(json.dumps(body).encode(), config=config, env={}, now=datetime.now(UTC))
        assert result.verdict is explaining.Verdict.ACT
        assert result.fields["out_of_service_taint"] is taint
        assert ("out-of-service" in result.fields["decision"]) is taint
    assert EventKind.PREEMPTED in DEFAULT_DEADLINES
