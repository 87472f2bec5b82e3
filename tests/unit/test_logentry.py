"""Unit tests for the LogEntry parser, its Pub/Sub envelope and the RFC 3339 parser (pure, no cluster)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import from_http

from functions.decisions.envelope import PubsubMessage, unwrap
from functions.decisions.logentry import (
    AUDIT_LOG_TYPE,
    COMPUTE_SERVICE,
    FUTURE_TOLERANCE,
    EventKind,
    IgnoredEvent,
    NodeEvent,
    log_entry_from_message,
    parse_log_entry,
)
from functions.decisions.times import parse_rfc3339
from functions.errors import MalformedEvent, PermanentError
from tests.support.deliveries import rfc3339
from tests.support.forgeries import FORGERIES, Forgery

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

PROJECT = "acme-prod"
SPOT_ZONE = "europe-west4-b"
SPOT_INSTANCE = "gke-payments-spot-pool-3f1c2a9e-x7k2"
SPOT_INSTANCE_ID = "7310455628112203391"
SPOT_INSERT_ID = "k1f9qze3a8b"
SPOT_OPERATION_ID = "systemevent-1759392840201-6400a1b2c3d4e-5f6a7b8c-9d0e1f2a"
SPOT_TIME = datetime(2026, 10, 2, 8, 14, 7, 512331, tzinfo=UTC)

MIG_ZONE = "europe-west4-a"
MIG_INSTANCE = "gke-payments-default-pool-81d0c4f2-q9zt"
MIG_INSTANCE_ID = "5521908431777125013"
MIG_INSERT_ID = "-x3v9kqe2ld1"
MIG_OPERATION_ID = "operation-1759397411090-64011d2e3f4a5-6b7c8d9e-0f1a2b3c"
MIG_PRINCIPAL = "481516234200@cloudservices.gserviceaccount.com"
MIG_TIME = datetime(2026, 10, 2, 9, 30, 11, 104000, tzinfo=UTC)

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
"""The parser's clock in these tests: a little after every fixture's timestamp."""

# The headers of fixtures/cloudevent-pubsub-binary.http (its body is fixtures/cloudevent-pubsub-binary.json).
CLOUDEVENT_HEADERS = {
    "Content-Type": "application/json",
    "ce-id": "16042958821190034",
    "ce-specversion": "1.0",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    "ce-source": "//pubsub.googleapis.com/projects/acme-prod/topics/gke-node-events",
    "ce-time": "2026-10-02T08:14:08.731Z",
}

EXPECTED_PREEMPTED = NodeEvent(
    kind=EventKind.PREEMPTED,
    project=PROJECT,
    zone=SPOT_ZONE,
    instance=SPOT_INSTANCE,
    instance_id=SPOT_INSTANCE_ID,
    event_time=SPOT_TIME,
    operation_id=SPOT_OPERATION_ID,
    insert_id=SPOT_INSERT_ID,
    principal="system@google.com",
    method="compute.instances.preempted",
)

EXPECTED_MIG_DELETE = NodeEvent(
    kind=EventKind.DELETE,
    project=PROJECT,
    zone=MIG_ZONE,
    instance=MIG_INSTANCE,
    instance_id=MIG_INSTANCE_ID,
    event_time=MIG_TIME,
    operation_id=MIG_OPERATION_ID,
    insert_id=MIG_INSERT_ID,
    principal=MIG_PRINCIPAL,
    method="v1.compute.instances.delete",
)


def load_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def preempted_entry() -> dict[str, Any]:
    entry: dict[str, Any] = load_json("logentry-preempted.json")
    return entry


def mig_delete_entry() -> dict[str, Any]:
    entry: dict[str, Any] = load_json("logentry-mig-delete-first.json")
    return entry


def system_event_entry(method: str, operation_prefix: str, *, empty_auth: bool = False) -> dict[str, Any]:
    """Another system event in the preempted entry's shape, as the fixtures README describes."""
    entry = preempted_entry()
    entry["protoPayload"]["methodName"] = method
    entry["protoPayload"]["request"]["@type"] = f"type.googleapis.com/{method}"
    entry["protoPayload"]["status"] = {"message": f"{method} happened."}
    entry["operation"]["producer"] = method
    entry["operation"]["id"] = operation_prefix + SPOT_OPERATION_ID.removeprefix("systemevent-")
    if empty_auth:
        entry["protoPayload"]["authenticationInfo"] = {}
    return entry


def b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def entry_message(entry: Any, **message: Any) -> dict[str, Any]:
    """A messagePublished CloudEvent data carrying ``entry`` as a log sink publishes it."""
    body = {"data": b64(json.dumps(entry).encode("utf-8")), "attributes": {}, **message}
    return {"message": body, "subscription": "projects/acme-prod/subscriptions/node-events"}


def expect_event(result: NodeEvent | IgnoredEvent) -> NodeEvent:
    assert isinstance(result, NodeEvent), f"expected a NodeEvent, got {result!r}"
    return result


def expect_ignored(result: NodeEvent | IgnoredEvent) -> IgnoredEvent:
    assert isinstance(result, IgnoredEvent), f"expected an IgnoredEvent, got {result!r}"
    return result


# --- the golden fixtures -----------------------------------------------------------------------------------------


def test_preempted_fixture_is_a_full_node_event() -> None:
    event = expect_event(parse_log_entry(preempted_entry(), now=NOW))

    assert event == EXPECTED_PREEMPTED
    assert event.instance == "gke-payments-spot-pool-3f1c2a9e-x7k2"
    assert event.instance_id == "7310455628112203391"
    assert event.project == "acme-prod"
    assert event.zone == "europe-west4-b"
    assert event.event_time.tzinfo is UTC
    assert event.event_id == SPOT_OPERATION_ID


def test_mig_delete_fixture_uses_the_project_id_label_not_the_project_number() -> None:
    entry = mig_delete_entry()
    assert entry["protoPayload"]["resourceName"].startswith("projects/481516234200/")

    event = expect_event(parse_log_entry(entry, now=NOW))

    assert event == EXPECTED_MIG_DELETE
    assert event.project == "acme-prod"
    assert event.event_id == MIG_OPERATION_ID


# --- every kind ------------------------------------------------------------------------------------------------

SYSTEM_EVENTS = [
    pytest.param("compute.instances.preempted", "systemevent-", EventKind.PREEMPTED, id="preempted"),
    pytest.param("compute.instances.repair.recreateInstance", "repair-", EventKind.RECREATE, id="recreate"),
    pytest.param("compute.instances.hostError", "systemevent-", EventKind.HOST_ERROR, id="host-error"),
    pytest.param("compute.instances.guestTerminate", "systemevent-", EventKind.GUEST_TERMINATE, id="guest-terminate"),
    pytest.param(
        "compute.instances.automaticRestart", "systemevent-", EventKind.AUTOMATIC_RESTART, id="automatic-restart"
    ),
    pytest.param(
        "compute.instances.terminateOnHostMaintenance",
        "systemevent-",
        EventKind.TERMINATE_ON_HOST_MAINTENANCE,
        id="terminate-on-host-maintenance",
    ),
]


@pytest.mark.parametrize(("method", "prefix", "kind"), SYSTEM_EVENTS)
def test_system_events_map_to_their_kind(method: str, prefix: str, kind: EventKind) -> None:
    event = expect_event(parse_log_entry(system_event_entry(method, prefix), now=NOW))

    operation_id = prefix + SPOT_OPERATION_ID.removeprefix("systemevent-")
    assert event == dataclasses.replace(EXPECTED_PREEMPTED, kind=kind, method=method, operation_id=operation_id)
    assert event.event_id == operation_id


@pytest.mark.parametrize(("method", "prefix", "kind"), SYSTEM_EVENTS)
def test_system_events_with_empty_authentication_info_have_no_principal(
    method: str, prefix: str, kind: EventKind
) -> None:
    event = expect_event(parse_log_entry(system_event_entry(method, prefix, empty_auth=True), now=NOW))

    assert event.kind is kind
    assert event.principal is None
    assert event.instance == SPOT_INSTANCE


FIRST_DELETE_METHODS = [
    pytest.param("v1.compute.instances.delete", id="v1"),
    pytest.param("beta.compute.instances.delete", id="beta"),
    pytest.param("compute.instances.delete", id="unversioned"),
]


def delete_with_method(method: str) -> dict[str, Any]:
    """The MIG delete entry with another method name."""
    entry = mig_delete_entry()
    entry["protoPayload"]["methodName"] = method
    return entry


@pytest.mark.parametrize("method", FIRST_DELETE_METHODS)
def test_first_entry_of_a_delete_is_a_delete_event(method: str) -> None:
    entry = delete_with_method(method)

    event = expect_event(parse_log_entry(entry, now=NOW))

    assert event == dataclasses.replace(EXPECTED_MIG_DELETE, method=method)


def test_every_kind_is_covered_by_a_method() -> None:
    kinds = {param.values[2] for param in SYSTEM_EVENTS} | {EventKind.DELETE}
    assert kinds == set(EventKind)


@pytest.mark.parametrize(
    ("kind", "value"),
    [pytest.param(kind, kind.value, id=kind.name.lower()) for kind in EventKind],
)
def test_event_kind_is_a_str_enum_whose_text_is_its_value(kind: EventKind, value: str) -> None:
    assert isinstance(kind, str)
    assert kind == value
    assert str(kind) == value
    assert f"{kind}" == value
    assert EventKind(value) is kind


# --- delete rules ------------------------------------------------------------------------------------------------

NOT_FIRST = "not the first entry of the delete operation (operation.first is not true)"


def _not_first_entries() -> list[Any]:
    last = mig_delete_entry()
    last["operation"] = {"id": MIG_OPERATION_ID, "producer": "compute.googleapis.com", "last": True}
    last["insertId"] = "-x3v9kqe2ld9"
    last["protoPayload"].pop("request")
    first_false = mig_delete_entry()
    first_false["operation"]["first"] = False
    first_as_string = mig_delete_entry()
    first_as_string["operation"]["first"] = "true"
    no_first = mig_delete_entry()
    del no_first["operation"]["first"]
    no_operation = mig_delete_entry()
    del no_operation["operation"]
    return [
        pytest.param(last, id="last-entry"),
        pytest.param(first_false, id="first-false"),
        pytest.param(first_as_string, id="first-is-a-string"),
        pytest.param(no_first, id="first-missing"),
        pytest.param(no_operation, id="no-operation"),
    ]


@pytest.mark.parametrize("entry", _not_first_entries())
def test_delete_entries_other_than_the_first_are_ignored(entry: dict[str, Any]) -> None:
    ignored = expect_ignored(parse_log_entry(entry, now=NOW))

    assert ignored == IgnoredEvent(
        reason=NOT_FIRST,
        method="v1.compute.instances.delete",
        project=PROJECT,
        zone=MIG_ZONE,
        instance=MIG_INSTANCE,
        insert_id=entry["insertId"],
    )


FAILED_DELETES = [
    pytest.param(
        "ERROR",
        {"code": 3, "message": "Instance is protected from deletion."},
        ["failed", "severity ERROR", "status code 3", "Instance is protected from deletion."],
        id="error-severity-and-code",
    ),
    pytest.param(
        "NOTICE",
        {"code": 7, "message": "Required 'compute.instances.delete' permission"},
        ["failed", "status code 7", "Required 'compute.instances.delete' permission"],
        id="status-code-only",
    ),
    pytest.param("ERROR", None, ["failed", "severity ERROR", "no status message"], id="error-severity-only"),
    pytest.param(
        "ERROR",
        {"message": "The resource is not ready"},
        ["failed", "severity ERROR", "The resource is not ready"],
        id="error-severity-message-only",
    ),
    pytest.param("CRITICAL", {"code": 13}, ["failed", "severity CRITICAL", "status code 13"], id="critical"),
]


def failed_delete(severity: str, status: dict[str, Any] | None) -> dict[str, Any]:
    entry = mig_delete_entry()
    entry["severity"] = severity
    if status is not None:
        entry["protoPayload"]["status"] = status
    return entry


@pytest.mark.parametrize(("severity", "status", "expected_parts"), FAILED_DELETES)
def test_failed_delete_is_ignored_with_the_failure_in_the_reason(
    severity: str, status: dict[str, Any] | None, expected_parts: list[str]
) -> None:
    entry = failed_delete(severity, status)

    ignored = expect_ignored(parse_log_entry(entry, now=NOW))

    for part in expected_parts:
        assert part in ignored.reason
    assert ignored.method == "v1.compute.instances.delete"
    assert (ignored.project, ignored.zone, ignored.instance) == (PROJECT, MIG_ZONE, MIG_INSTANCE)
    assert ignored.insert_id == MIG_INSERT_ID


SUCCESSFUL_STATUSES = [
    pytest.param({"code": 0}, id="code-zero"),
    pytest.param({"code": 0, "message": "OK"}, id="code-zero-with-message"),
    pytest.param({}, id="empty-status"),
]


def delete_with_status(status: dict[str, Any]) -> dict[str, Any]:
    entry = mig_delete_entry()
    entry["protoPayload"]["status"] = status
    return entry


@pytest.mark.parametrize("status", SUCCESSFUL_STATUSES)
def test_successful_status_on_a_delete_is_acted_on(status: dict[str, Any]) -> None:
    entry = delete_with_status(status)

    assert parse_log_entry(entry, now=NOW) == EXPECTED_MIG_DELETE


def system_event_with_error(method: str, prefix: str) -> dict[str, Any]:
    entry = system_event_entry(method, prefix)
    entry["severity"] = "ERROR"
    entry["protoPayload"]["status"] = {"code": 13, "message": "Instance terminated."}
    return entry


@pytest.mark.parametrize(("method", "prefix", "kind"), SYSTEM_EVENTS)
def test_system_events_are_acted_on_despite_error_severity_or_status(method: str, prefix: str, kind: EventKind) -> None:
    entry = system_event_with_error(method, prefix)

    event = expect_event(parse_log_entry(entry, now=NOW))

    assert event.kind is kind
    assert event.instance == SPOT_INSTANCE


# --- ignored methods ---------------------------------------------------------------------------------------------


def live_migration_entry() -> dict[str, Any]:
    return system_event_entry("compute.instances.migrateOnHostMaintenance", "systemevent-")


def test_live_migration_is_ignored() -> None:
    entry = live_migration_entry()

    ignored = expect_ignored(parse_log_entry(entry, now=NOW))

    assert "live migration" in ignored.reason
    assert "keeps running" in ignored.reason
    assert ignored == IgnoredEvent(
        reason=ignored.reason,
        method="compute.instances.migrateOnHostMaintenance",
        project=PROJECT,
        zone=SPOT_ZONE,
        instance=SPOT_INSTANCE,
        insert_id=SPOT_INSERT_ID,
    )


OTHER_METHODS = [
    pytest.param("v1.compute.instances.insert", id="insert"),
    pytest.param("v1.compute.instances.stop", id="stop"),
    pytest.param("v1.compute.instances.setMetadata", id="set-metadata"),
    pytest.param("v1.compute.instances.reset", id="reset"),
    pytest.param("compute.instances.preempted.extra", id="suffix-of-a-known-method"),
    pytest.param("Compute.Instances.Preempted", id="different-case"),
    pytest.param("v1.compute.instanceGroupManagers.resize", id="mig-resize"),
]


@pytest.mark.parametrize("method", OTHER_METHODS)
def test_other_methods_are_ignored(method: str) -> None:
    entry = delete_with_method(method)

    ignored = expect_ignored(parse_log_entry(entry, now=NOW))

    assert ignored == IgnoredEvent(
        reason=f"method {method} is not an event that drains a node",
        method=method,
        project=PROJECT,
        zone=MIG_ZONE,
        instance=MIG_INSTANCE,
        insert_id=MIG_INSERT_ID,
    )


def list_entry() -> dict[str, Any]:
    """An entry about no single instance, without the fields only a NodeEvent needs."""
    entry = delete_with_method("v1.compute.instances.list")
    entry["protoPayload"]["resourceName"] = "projects/481516234200/zones/europe-west4-a/instances"
    del entry["timestamp"]
    del entry["resource"]["labels"]
    return entry


def test_ignored_entry_reports_what_it_can_without_requiring_node_fields() -> None:
    entry = list_entry()

    ignored = expect_ignored(parse_log_entry(entry, now=NOW))

    assert ignored == IgnoredEvent(
        reason="method v1.compute.instances.list is not an event that drains a node",
        method="v1.compute.instances.list",
        project=None,
        zone=None,
        instance=None,
        insert_id=MIG_INSERT_ID,
    )


# --- optional fields and fallbacks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authentication_info",
    [
        pytest.param(None, id="absent"),
        pytest.param({}, id="empty-object"),
        pytest.param({"principalEmail": ""}, id="empty-email"),
    ],
)
def test_principal_is_none_when_absent_or_empty(authentication_info: dict[str, Any] | None) -> None:
    entry = mig_delete_entry()
    if authentication_info is None:
        del entry["protoPayload"]["authenticationInfo"]
    else:
        entry["protoPayload"]["authenticationInfo"] = authentication_info

    assert parse_log_entry(entry, now=NOW) == dataclasses.replace(EXPECTED_MIG_DELETE, principal=None)


def test_missing_instance_id_label_gives_none() -> None:
    entry = preempted_entry()
    del entry["resource"]["labels"]["instance_id"]

    assert parse_log_entry(entry, now=NOW) == dataclasses.replace(EXPECTED_PREEMPTED, instance_id=None)


def test_missing_zone_label_falls_back_to_the_resource_name() -> None:
    entry = mig_delete_entry()
    del entry["resource"]["labels"]["zone"]

    assert expect_event(parse_log_entry(entry, now=NOW)).zone == MIG_ZONE


def test_zone_label_is_preferred_over_the_resource_name() -> None:
    entry = preempted_entry()
    entry["resource"]["labels"]["zone"] = "europe-west4-c"

    assert expect_event(parse_log_entry(entry, now=NOW)).zone == "europe-west4-c"


def test_missing_project_label_falls_back_to_a_project_id_in_the_resource_name() -> None:
    entry = preempted_entry()
    del entry["resource"]["labels"]["project_id"]

    assert parse_log_entry(entry, now=NOW) == EXPECTED_PREEMPTED


# --- event_id ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(None, id="no-operation"),
        pytest.param({"producer": "compute.instances.preempted", "first": True}, id="no-operation-id"),
        pytest.param({"id": "", "first": True}, id="empty-operation-id"),
    ],
)
def test_event_id_falls_back_to_the_insert_id(operation: dict[str, Any] | None) -> None:
    entry = preempted_entry()
    if operation is None:
        del entry["operation"]
    else:
        entry["operation"] = operation

    event = expect_event(parse_log_entry(entry, now=NOW))

    assert event.operation_id is None
    assert event.event_id == SPOT_INSERT_ID


def test_event_id_is_stable_across_redelivery() -> None:
    first = unwrap(entry_message(preempted_entry(), messageId="1"))
    again = unwrap(entry_message(preempted_entry(), messageId="2"))

    one = expect_event(parse_log_entry(log_entry_from_message(first), now=NOW))
    two = expect_event(parse_log_entry(log_entry_from_message(again), now=NOW))

    assert first.message_id != again.message_id
    assert one == two
    assert one.event_id == two.event_id == SPOT_OPERATION_ID


def test_event_id_of_a_delete_is_its_operation_not_the_entry() -> None:
    first = mig_delete_entry()
    other_entry_of_same_operation = mig_delete_entry()
    other_entry_of_same_operation["insertId"] = "-x3v9kqe2zzz"
    other_entry_of_same_operation["timestamp"] = "2026-10-02T09:30:11.200Z"

    one = expect_event(parse_log_entry(first, now=NOW))
    two = expect_event(parse_log_entry(other_entry_of_same_operation, now=NOW))

    assert one.insert_id != two.insert_id
    assert one.event_id == two.event_id == MIG_OPERATION_ID


def test_events_are_frozen() -> None:
    event = expect_event(parse_log_entry(preempted_entry(), now=NOW))

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.instance = "other"  # type: ignore[misc]
    assert hash(event) == hash(EXPECTED_PREEMPTED)


# --- malformed entries -------------------------------------------------------------------------------------------


_DELETE = object()


def _with(entry: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``entry`` with the dotted ``path`` set to ``value`` (or removed when value is _DELETE)."""
    changed = copy.deepcopy(entry)
    *parents, leaf = path.split(".")
    node = changed
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[leaf]
    else:
        node[leaf] = value
    return changed


def _malformed_entries() -> list[Any]:
    spot = preempted_entry()
    mig = mig_delete_entry()
    cases: list[tuple[str, Any, str]] = [
        ("json-array", [spot], "LogEntry is not a JSON object: got array"),
        ("json-string", "compute.instances.preempted", "LogEntry is not a JSON object: got string"),
        ("null", None, "LogEntry is not a JSON object: got null"),
        ("no-proto-payload", _with(spot, "protoPayload", _DELETE), "LogEntry has no protoPayload"),
        ("proto-payload-not-object", _with(spot, "protoPayload", "x"), "LogEntry has no protoPayload"),
        ("json-payload-instead", {**_with(spot, "protoPayload", _DELETE), "jsonPayload": {}}, "no protoPayload"),
        ("no-method", _with(spot, "protoPayload.methodName", _DELETE), "LogEntry has no protoPayload.methodName"),
        ("empty-method", _with(spot, "protoPayload.methodName", ""), "LogEntry has no protoPayload.methodName"),
        ("method-not-string", _with(spot, "protoPayload.methodName", 7), "LogEntry has no protoPayload.methodName"),
        ("no-resource", _with(spot, "resource", _DELETE), "LogEntry has no resource.type"),
        ("no-resource-type", _with(spot, "resource.type", _DELETE), "LogEntry has no resource.type"),
        (
            "wrong-resource-type",
            _with(spot, "resource.type", "gce_instance_group_manager"),
            "LogEntry resource.type is 'gce_instance_group_manager', expected 'gce_instance'",
        ),
        (
            "k8s-node-resource-type",
            _with(spot, "resource.type", "k8s_node"),
            "LogEntry resource.type is 'k8s_node', expected 'gce_instance'",
        ),
        ("no-insert-id", _with(spot, "insertId", _DELETE), "LogEntry has no insertId"),
        ("empty-insert-id", _with(spot, "insertId", ""), "LogEntry has no insertId"),
        ("no-resource-name", _with(spot, "protoPayload.resourceName", _DELETE), "no protoPayload.resourceName"),
        ("no-timestamp", _with(spot, "timestamp", _DELETE), "LogEntry has no timestamp"),
        ("timestamp-not-string", _with(spot, "timestamp", 1759392847), "LogEntry timestamp is a number"),
        ("timestamp-no-offset", _with(spot, "timestamp", "2026-10-02T08:14:07.512331"), "timestamp is invalid"),
        ("timestamp-date-only", _with(spot, "timestamp", "2026-10-02"), "timestamp is invalid"),
        ("timestamp-month-13", _with(spot, "timestamp", "2026-13-02T08:14:07Z"), "timestamp is invalid"),
        ("timestamp-garbage", _with(spot, "timestamp", "yesterday"), "timestamp is invalid"),
        (
            "delete-without-project-id-label",
            _with(mig, "resource.labels.project_id", _DELETE),
            "LogEntry has no resource.labels.project_id",
        ),
        ("delete-without-resource-name", _with(mig, "protoPayload.resourceName", _DELETE), "resourceName"),
    ]
    for name in [
        "projects/acme-prod/zones/europe-west4-b/instances/",
        "projects/acme-prod/zones/europe-west4-b/instances",
        "projects/acme-prod/zones/europe-west4-b/instanceGroupManagers/gke-payments-spot-pool-3f1c2a9e-grp",
        "projects/acme-prod/regions/europe-west4/instances/gke-payments-spot-pool-3f1c2a9e-x7k2",
        "projects/acme-prod/zones/europe-west4-b/instances/gke-a/extra",
        "//compute.googleapis.com/projects/acme-prod/zones/europe-west4-b/instances/gke-a",
        "gke-payments-spot-pool-3f1c2a9e-x7k2",
    ]:
        cases.append(
            (
                f"resource-name-{name.replace('/', '_')[:60]}",
                _with(spot, "protoPayload.resourceName", name),
                "is not of the form projects/PROJECT/zones/ZONE/instances/NAME",
            )
        )
    # Names that would become other paths (or other objects) if they reached an API unchecked.
    hostile = {
        "instance": [
            "..",
            ".",
            "a%2Fb",
            "gke-a%2F..%2Fb",
            "Gke-Upper",
            "gke-a?watch=true",
            "gke-\u00e9",
            "a" * 64,
            "-a",
        ],
        "zone": ["..", "europe-west4-b%2F..", "EUROPE-WEST4-B", "europe-west4"],
        "project": ["..", "acme%2Fprod", "ACME", "a"],
    }
    for instance in hostile["instance"]:
        cases.append(
            (
                f"hostile-instance-{instance[:20]}",
                _with(
                    spot, "protoPayload.resourceName", f"projects/acme-prod/zones/europe-west4-b/instances/{instance}"
                ),
                "not a valid Compute Engine instance name",
            )
        )
    for zone in hostile["zone"]:
        cases.append(
            (f"hostile-zone-{zone}", _with(spot, "resource.labels.zone", zone), "not a valid Compute Engine zone")
        )
    for project in hostile["project"]:
        cases.append(
            (
                f"hostile-project-{project}",
                _with(spot, "resource.labels.project_id", project),
                "not a valid Compute Engine project ID",
            )
        )
    for instance_id in ["12a", "-1", "1" * 21, "../1"]:
        cases.append(
            (
                f"hostile-instance-id-{instance_id}",
                _with(spot, "resource.labels.instance_id", instance_id),
                "not a valid Compute Engine instance id",
            )
        )
    return [pytest.param(entry, message, id=case_id) for case_id, entry, message in cases]


@pytest.mark.parametrize(("entry", "message"), _malformed_entries())
def test_malformed_entries_raise_with_a_message_naming_the_field(entry: Any, message: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_log_entry(entry, now=NOW)

    assert message in str(caught.value)
    assert isinstance(caught.value, PermanentError)


def test_wrong_resource_type_message_names_the_type_found() -> None:
    entry = _with(preempted_entry(), "resource.type", "gce_disk")

    with pytest.raises(MalformedEvent, match="gce_disk"):
        parse_log_entry(entry, now=NOW)


# --- only genuine Compute Engine audit entries act ---------------------------------------------------------------

AUDIT_LOG_CONTAINERS = ["projects/acme-prod", "folders/123456789012", "organizations/987654321098"]
GENUINE_LOG_NAMES = [
    pytest.param(f"{container}/logs/cloudaudit.googleapis.com%2F{log}", id=f"{container.split('/')[0]}-{log}")
    for container in AUDIT_LOG_CONTAINERS
    for log in ("activity", "system_event")
]


def with_log_name(entry: dict[str, Any], log_name: str) -> dict[str, Any]:
    """``entry`` as an aggregated sink of a folder or organization (or another project's sink) delivers it."""
    entry["logName"] = log_name
    return entry


def test_the_fixtures_are_genuine_compute_engine_audit_entries() -> None:
    for entry in (preempted_entry(), mig_delete_entry()):
        assert entry["logName"].startswith("projects/acme-prod/logs/cloudaudit.googleapis.com%2F")
        assert entry["protoPayload"]["serviceName"] == COMPUTE_SERVICE
        assert entry["protoPayload"]["@type"] == AUDIT_LOG_TYPE
        assert entry["resource"]["type"] == "gce_instance"


@pytest.mark.parametrize("log_name", GENUINE_LOG_NAMES)
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(preempted_entry, EXPECTED_PREEMPTED, id="preempted"),
        pytest.param(mig_delete_entry, EXPECTED_MIG_DELETE, id="mig-delete"),
    ],
)
def test_audit_logs_of_a_project_folder_or_organization_act(make: Any, expected: NodeEvent, log_name: str) -> None:
    assert parse_log_entry(with_log_name(make(), log_name), now=NOW) == expected


# Genuine entries of every outcome: acted on, and ignored (with and without the fields only a NodeEvent needs).
# A forgery of any of them is malformed: it is never acted on, nor even classified as ignored.
GENUINE_BASES = [
    pytest.param(preempted_entry, id="preempted"),
    pytest.param(mig_delete_entry, id="mig-delete"),
    pytest.param(live_migration_entry, id="ignored-live-migration"),
    pytest.param(lambda: delete_with_method("v1.compute.instances.stop"), id="ignored-other-method"),
    pytest.param(list_entry, id="ignored-without-node-fields"),
]


@pytest.mark.parametrize("make", GENUINE_BASES)
@pytest.mark.parametrize("forgery", FORGERIES, ids=[f.id for f in FORGERIES])
def test_forgeries_are_malformed_and_say_what_was_wrong(forgery: Forgery, make: Any) -> None:
    genuine = make()
    parse_log_entry(genuine, now=NOW)  # the genuine entry parses (acted on or ignored)

    with pytest.raises(MalformedEvent) as caught:
        parse_log_entry(forgery.apply(genuine, now=NOW), now=NOW)

    assert forgery.error in str(caught.value)
    assert isinstance(caught.value, PermanentError)


def test_the_forgeries_cover_every_property_of_a_genuine_entry() -> None:
    changed = {path for f in FORGERIES for path in (*f.set, *f.delete)}
    assert changed == {"logName", "protoPayload.serviceName", "protoPayload.@type", "resource.type"}
    assert any(f.timestamp_ahead is not None for f in FORGERIES)
    assert len({f.id for f in FORGERIES}) == len(FORGERIES)
    assert all(f.why for f in FORGERIES)


def test_a_wrong_log_name_message_says_what_is_expected_and_why() -> None:
    entry = _with(preempted_entry(), "logName", "projects/acme-prod/logs/my-log")

    with pytest.raises(MalformedEvent) as caught:
        parse_log_entry(entry, now=NOW)

    message = str(caught.value)
    assert "'projects/acme-prod/logs/my-log'" in message
    assert "cloudaudit.googleapis.com%2Factivity or %2Fsystem_event" in message
    assert "folders/FOLDER or organizations/ORGANIZATION" in message
    assert "logging.logEntries.create" in message


def test_a_huge_forged_value_is_cut_short_in_the_message() -> None:
    entry = _with(preempted_entry(), "protoPayload.serviceName", "compute." + "x" * 100_000)

    with pytest.raises(MalformedEvent) as caught:
        parse_log_entry(entry, now=NOW)

    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("ahead", "acts"),
    [
        pytest.param(timedelta(days=-30), True, id="a-month-old"),
        pytest.param(timedelta(0), True, id="now"),
        pytest.param(FUTURE_TOLERANCE, True, id="at-the-tolerance"),
        pytest.param(FUTURE_TOLERANCE + timedelta(microseconds=1), False, id="just-past-the-tolerance"),
        pytest.param(timedelta(hours=3), False, id="hours-ahead"),
        pytest.param(timedelta(days=3650), False, id="years-ahead"),
    ],
)
def test_a_timestamp_more_than_the_tolerance_ahead_of_now_is_malformed(ahead: timedelta, acts: bool) -> None:
    entry = preempted_entry()
    entry["timestamp"] = rfc3339(NOW + ahead)

    if acts:
        assert expect_event(parse_log_entry(entry, now=NOW)).event_time == NOW + ahead
    else:
        with pytest.raises(MalformedEvent, match="ahead of now"):
            parse_log_entry(entry, now=NOW)


def test_the_future_tolerance_is_one_minute_and_the_message_says_so() -> None:
    assert timedelta(minutes=1) == FUTURE_TOLERANCE
    entry = preempted_entry()
    entry["timestamp"] = "2026-10-02T15:00:00Z"

    with pytest.raises(MalformedEvent) as caught:
        parse_log_entry(entry, now=NOW)

    message = str(caught.value)
    assert "'2026-10-02T15:00:00Z' is 3:00:00 ahead of now (2026-10-02T12:00:00+00:00)" in message
    assert "60 s" in message


def test_a_future_timestamp_is_malformed_even_on_an_entry_that_would_be_ignored() -> None:
    entry = live_migration_entry()
    entry["timestamp"] = rfc3339(NOW + timedelta(hours=1))

    with pytest.raises(MalformedEvent, match="ahead of now"):
        parse_log_entry(entry, now=NOW)


def test_the_clock_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_log_entry(preempted_entry(), now=NOW.replace(tzinfo=None))


# --- timestamps --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-10-02T08:14:07Z", datetime(2026, 10, 2, 8, 14, 7, tzinfo=UTC), id="no-fraction"),
        pytest.param("2026-10-02T08:14:07.5Z", datetime(2026, 10, 2, 8, 14, 7, 500000, tzinfo=UTC), id="1-digit"),
        pytest.param("2026-10-02T09:30:11.104Z", datetime(2026, 10, 2, 9, 30, 11, 104000, tzinfo=UTC), id="3-digits"),
        pytest.param("2026-10-02T08:14:07.512331Z", SPOT_TIME, id="6-digits"),
        pytest.param(
            "2026-10-02T08:14:08.020114871Z", datetime(2026, 10, 2, 8, 14, 8, 20114, tzinfo=UTC), id="9-digits"
        ),
        pytest.param(
            "2026-10-02T08:14:07.999999999Z",
            datetime(2026, 10, 2, 8, 14, 7, 999999, tzinfo=UTC),
            id="9-digits-truncated-not-rounded",
        ),
        pytest.param("2026-10-02T10:14:07.512331+02:00", SPOT_TIME, id="positive-offset"),
        pytest.param("2026-10-02T02:44:07.512331-05:30", SPOT_TIME, id="negative-half-hour-offset"),
        pytest.param("2026-10-02T08:14:07.512331+00:00", SPOT_TIME, id="zero-offset"),
        pytest.param("2026-10-02T08:14:07.512331-00:00", SPOT_TIME, id="unknown-local-offset"),
        pytest.param(
            "2026-10-02T23:30:00.123456789-01:00",
            datetime(2026, 10, 3, 0, 30, 0, 123456, tzinfo=UTC),
            id="9-digits-offset-crossing-midnight",
        ),
        pytest.param("2026-10-02t08:14:07.512331z", SPOT_TIME, id="lowercase-t-and-z"),
        pytest.param("2026-10-02 08:14:07.512331Z", SPOT_TIME, id="space-separator"),
    ],
)
def test_parse_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)

    assert parsed == expected
    assert parsed.tzinfo is UTC
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2026-10-02T08:14:07", id="no-offset"),
        pytest.param("2026-10-02T08:14:07.Z", id="dot-without-digits"),
        pytest.param("2026-10-02T08:14Z", id="no-seconds"),
        pytest.param("2026-10-02T24:00:00Z", id="hour-24"),
        pytest.param("2026-02-30T08:14:07Z", id="february-30"),
        pytest.param("2026-10-02T08:14:60Z", id="leap-second"),
        pytest.param("2026-10-02T08:14:07+24:00", id="offset-24h"),
        pytest.param("2026-10-02T08:14:07+0200", id="offset-without-colon"),
        pytest.param("2026-10-02T08:14:07.512331Z ", id="trailing-space"),
        pytest.param("2026-10-02T08:14:07.5123٣1Z", id="non-ascii-digit"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_rfc3339_rejects_invalid_timestamps(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_rfc3339(text)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param("2026-10-02T08:14:07.512331789Z", SPOT_TIME, id="9-digits"),
        pytest.param("2026-10-02T08:14:07Z", SPOT_TIME.replace(microsecond=0), id="0-digits"),
        pytest.param("2026-10-02T10:14:07.512331+02:00", SPOT_TIME, id="offset"),
    ],
)
def test_entry_timestamps_become_aware_utc(timestamp: str, expected: datetime) -> None:
    entry = preempted_entry()
    entry["timestamp"] = timestamp

    event = expect_event(parse_log_entry(entry, now=NOW))

    assert event.event_time == expected
    assert event.event_time.tzinfo is UTC


# --- Pub/Sub envelopes -------------------------------------------------------------------------------------------


def _cloudevent_body() -> bytes:
    return (FIXTURES / "cloudevent-pubsub-binary.json").read_bytes()


def test_cloudevent_fixture_message_fields() -> None:
    message = unwrap(json.loads(_cloudevent_body()))

    assert message.message_id == "16042958821190034"
    assert message.publish_time == "2026-10-02T08:14:08.731Z"
    assert message.attributes == {"logging.googleapis.com/timestamp": "2026-10-02T08:14:07.512331Z"}
    assert json.loads(message.data) == preempted_entry()


def _raw_push_converted() -> dict[str, Any]:
    """A raw push body as functions-framework hands it on: snake_case message keys only."""
    body: dict[str, Any] = json.loads(_cloudevent_body())
    message = body["message"]
    for camel in ("messageId", "publishTime"):
        del message[camel]
    return body


def _urlsafe_alphabet() -> dict[str, Any]:
    entry = preempted_entry()
    entry["labels"] = {"note": "\u00ff\u00fe\u00fd>>>???"}  # bytes that encode to '+' and '/' in standard base64
    encoded = base64.urlsafe_b64encode(json.dumps(entry).encode("utf-8")).decode("ascii")
    assert "-" in encoded or "_" in encoded
    return {"message": {"data": encoded, "messageId": "9"}}


def _unpadded() -> dict[str, Any]:
    body = entry_message(preempted_entry(), messageId="10")
    body["message"]["data"] = body["message"]["data"].rstrip("=")
    return body


ENVELOPES = [
    pytest.param(lambda: json.loads(_cloudevent_body()), id="cloudevent-data-object"),
    pytest.param(_cloudevent_body, id="cloudevent-data-bytes"),
    pytest.param(lambda: _cloudevent_body().decode("utf-8"), id="cloudevent-data-str"),
    pytest.param(lambda: from_http(CLOUDEVENT_HEADERS, _cloudevent_body()).data, id="cloudevents-sdk-binary-mode"),
    pytest.param(_raw_push_converted, id="raw-push-converted"),
    pytest.param(_urlsafe_alphabet, id="urlsafe-base64"),
    pytest.param(_unpadded, id="unpadded-base64"),
]


@pytest.mark.parametrize("make_data", ENVELOPES)
def test_every_envelope_yields_the_fixture_node_event(make_data: Any) -> None:
    message = unwrap(make_data())

    event = parse_log_entry(log_entry_from_message(message), now=NOW)

    assert event == EXPECTED_PREEMPTED
    assert expect_event(event).event_id == SPOT_OPERATION_ID


def test_raw_push_converted_uses_snake_case_ids() -> None:
    message = unwrap(_raw_push_converted())

    assert message.message_id == "16042958821190034"
    assert message.publish_time == "2026-10-02T08:14:08.731Z"


def test_message_without_attributes_or_ids() -> None:
    message = unwrap({"message": {"data": b64(b"{}")}})

    assert message == PubsubMessage(data=b"{}", attributes={}, message_id=None, publish_time=None)
    assert log_entry_from_message(message) == {}


def test_mig_delete_through_an_envelope() -> None:
    message = unwrap(entry_message(mig_delete_entry(), messageId="42"))

    assert message.message_id == "42"
    assert parse_log_entry(log_entry_from_message(message), now=NOW) == EXPECTED_MIG_DELETE


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([1, 2], "CloudEvent data is not a JSON object: got array", id="array"),
        pytest.param(None, "CloudEvent data is not a JSON object: got null", id="null"),
        pytest.param(b"\xff\xfe{}", "CloudEvent data is not UTF-8 JSON", id="bytes-not-utf8"),
        pytest.param(b"{not json", "CloudEvent data is not valid JSON", id="bytes-not-json"),
        pytest.param("[]", "CloudEvent data is not a JSON object: got array", id="str-json-array"),
        pytest.param({"subscription": "projects/p/subscriptions/s"}, "has no message field", id="no-message"),
        pytest.param({"message": "aGVsbG8="}, "data.message is a string", id="message-not-object"),
        pytest.param({"message": {"attributes": {}}}, "Pub/Sub message has no data field", id="no-data"),
        pytest.param({"message": {"data": None}}, "Pub/Sub message has no data field", id="null-data"),
        pytest.param({"message": {"data": 12}}, "Pub/Sub message.data is a number", id="data-not-string"),
        pytest.param({"message": {"data": "not base64!"}}, "Pub/Sub message.data is not valid base64", id="bad-b64"),
        pytest.param({"message": {"data": "ab+c-d=="}}, "is not valid base64", id="mixed-alphabets"),
        pytest.param({"message": {"data": "abcde"}}, "is not valid base64", id="bad-length"),
        pytest.param({"message": {"data": b"\xff"}}, "is not valid base64", id="data-bytes-not-ascii"),
        pytest.param(
            {"message": {"data": "e30=", "attributes": ["a"]}},
            "Pub/Sub message.attributes is an array, expected an object",
            id="attributes-not-object",
        ),
        pytest.param(
            {"context": {"eventId": "1"}, "data": {"data": "e30="}},
            "has no message field",
            id="legacy-wrapper-is-converted-by-the-framework-not-here",
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, "nests deeper than", id="deeply-nested-str"),
        pytest.param(b"[" * 100_000, "nests deeper than", id="deeply-nested-unterminated"),
    ],
)
def test_bad_envelopes_are_malformed(data: Any, message: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        unwrap(data)

    assert message in str(caught.value)


def _message(data: bytes) -> PubsubMessage:
    return PubsubMessage(data=data, attributes={}, message_id="1", publish_time=None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\xff\xfe\x00", "Pub/Sub message data is not UTF-8", id="not-utf8"),
        pytest.param(b"protoPayload: {}", "Pub/Sub message data is not valid JSON", id="not-json"),
        pytest.param(b"", "Pub/Sub message data is not valid JSON", id="empty"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nests deeper than", id="deeply-nested"),
        pytest.param(b"[{}]", "Pub/Sub message data is not a JSON LogEntry: got a JSON array", id="json-array"),
        pytest.param(b'"entry"', "Pub/Sub message data is not a JSON LogEntry: got a JSON string", id="json-string"),
        pytest.param(b"null", "Pub/Sub message data is not a JSON LogEntry: got a JSON null", id="json-null"),
    ],
)
def test_log_entry_from_message_rejects_non_object_data(data: bytes, message: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        log_entry_from_message(_message(data))

    assert message in str(caught.value)


def test_bad_data_through_the_whole_pipeline_is_malformed() -> None:
    body = {"message": {"data": b64(b"\xc3\x28 not utf-8"), "messageId": "5"}}

    message = unwrap(body)
    with pytest.raises(MalformedEvent, match="not UTF-8"):
        log_entry_from_message(message)


def test_log_entry_from_message_returns_the_entry() -> None:
    entry = preempted_entry()

    assert log_entry_from_message(_message(json.dumps(entry).encode("utf-8"))) == entry


# --- the corpus ---------------------------------------------------------------------------------------------------


def log_entry_corpus() -> list[dict[str, Any]]:
    """Every well-formed LogEntry shape these tests parse, built by the same helpers from the same tables
    (test_terraform checks the log sink's filter against each of them)."""
    entries = [preempted_entry(), mig_delete_entry(), live_migration_entry(), list_entry()]
    for param in SYSTEM_EVENTS:
        method, prefix, _ = param.values
        entries += [
            system_event_entry(method, prefix),
            system_event_entry(method, prefix, empty_auth=True),
            system_event_with_error(method, prefix),
        ]
    entries += [delete_with_method(p.values[0]) for p in FIRST_DELETE_METHODS + OTHER_METHODS]
    entries += [failed_delete(p.values[0], p.values[1]) for p in FAILED_DELETES]
    entries += [delete_with_status(p.values[0]) for p in SUCCESSFUL_STATUSES]
    entries += [p.values[0] for p in _not_first_entries()]
    for param in GENUINE_LOG_NAMES:  # as aggregated sinks of folders and organizations deliver them
        (log_name,) = param.values
        entries += [
            with_log_name(make(), log_name) for make in (preempted_entry, mig_delete_entry, live_migration_entry)
        ]
    return entries
