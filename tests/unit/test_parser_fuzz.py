"""A bounded property-based fuzz of the event parser (fixed seed): whatever Pub/Sub hands over,
envelope.unwrap + log_entry_from_message + parse_log_entry either give a result or raise
MalformedEvent, never another exception (pure, no cluster)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.decisions.envelope import unwrap
from functions.decisions.logentry import (
    AUDIT_LOG_NAME,
    AUDIT_LOG_TYPE,
    COMPUTE_SERVICE,
    FUTURE_TOLERANCE,
    GCE_INSTANCE,
    IgnoredEvent,
    NodeEvent,
    log_entry_from_message,
    parse_log_entry,
)
from functions.errors import MalformedEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ENTRIES = [
    json.loads((FIXTURES / name).read_text()) for name in ("logentry-preempted.json", "logentry-mig-delete-first.json")
]
NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)  # a little after the fixtures' timestamps
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=600,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "\ud800",
            "",
            "../../x",
            "projects//zones//instances/",
            "projects/p/zones/z/instances/UPPER",
            "9" * 400,
            "2026-13-45T99:99:99Z",
            "1970-01-01T00:00:00Z",
            "compute.instances.preempted",
            "v1.compute.instances.delete",
            "gce_instance",
            "projects/p/logs/my-log",
            "projects/acme-prod/logs/cloudaudit.googleapis.com%2Fdata_access",
            "projects/acme-prod/logs/cloudaudit.googleapis.com/activity",
            "compute.googleapis.com",
            "container.googleapis.com",
            "type.googleapis.com/google.cloud.audit.AuditLog",
            "2099-01-01T00:00:00Z",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_entries(draw: st.DrawFn) -> Any:
    """A real LogEntry with a few of its nodes replaced by arbitrary values or removed."""
    entry = copy.deepcopy(draw(st.sampled_from(ENTRIES)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(entry) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = entry
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    return entry


def _data(payload: bytes) -> str:
    return base64.b64encode(payload).decode()


deliveries = st.one_of(
    values,  # anything at all as the CloudEvent data
    mutated_entries().map(lambda e: {"message": {"data": _data(json.dumps(e).encode()), "messageId": "1"}}),
    mutated_entries().map(lambda e: {"message": {"data": _data(json.dumps(e).encode())}, "subscription": "s"}),
    st.binary(max_size=300).map(lambda b: {"message": {"data": _data(b)}}),
    st.text(max_size=60).map(lambda t: {"message": {"data": t}}),  # not base64, or base64 of junk
    values.map(lambda v: {"message": v}),
    values.map(lambda v: {"message": {"data": v, "attributes": v}}),
    mutated_entries().map(lambda e: {"message": {"data": _data(json.dumps(e).encode("utf-8")), "attributes": e}}),
)


def parse(data: Any) -> NodeEvent | IgnoredEvent:
    return parse_log_entry(log_entry_from_message(unwrap(data)), now=NOW)


@FUZZ
@given(data=deliveries)
def test_parser_gives_a_result_or_malformed_event_only(data: Any) -> None:
    try:
        result: NodeEvent | IgnoredEvent | MalformedEvent = parse(data)
    except MalformedEvent as exc:
        result = exc
    if isinstance(result, MalformedEvent):
        assert str(result)  # says what is wrong
    else:
        assert isinstance(result, NodeEvent | IgnoredEvent)


@settings(FUZZ, max_examples=400)
@given(entry=mutated_entries())
def test_mutated_log_entries_parse_or_are_malformed(entry: Any) -> None:
    data = {"message": {"data": _data(json.dumps(entry).encode())}}
    try:
        result = parse(data)
    except MalformedEvent:
        return
    assert isinstance(result, NodeEvent | IgnoredEvent)
    # acted on or ignored, it is a genuine Compute Engine audit entry
    assert isinstance(entry["logName"], str)
    assert AUDIT_LOG_NAME.fullmatch(entry["logName"])
    assert entry["protoPayload"]["@type"] == AUDIT_LOG_TYPE
    assert entry["protoPayload"]["serviceName"] == COMPUTE_SERVICE
    assert entry["resource"]["type"] == GCE_INSTANCE
    if isinstance(result, NodeEvent):  # what is acted on was validated
        assert result.instance
        assert result.zone
        assert result.project
        assert result.event_time <= NOW + FUTURE_TOLERANCE


def test_the_unmutated_fixtures_parse() -> None:
    for entry in ENTRIES:
        assert isinstance(parse({"message": {"data": _data(json.dumps(entry).encode())}}), NodeEvent)
