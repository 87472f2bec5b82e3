"""Classify a Compute Engine audit-log entry (the LogEntry a log sink publishes) as a node event.

Pure parsing: no I/O, and the clock is passed in (``now``). :func:`log_entry_from_message` reads the
LogEntry out of a Pub/Sub message (see :mod:`functions.decisions.envelope`), then :func:`parse_log_entry`
returns a :class:`NodeEvent` to act on, an :class:`IgnoredEvent` to acknowledge and audit, or raises
:class:`~functions.errors.MalformedEvent` (acknowledge, audit, never retry).

Only genuine Compute Engine audit entries act, and only they are even classified as ignored: the entry
must be in a Cloud Audit Logs ``activity`` or ``system_event`` log (of a project, folder or organization),
with an AuditLog payload whose serviceName is ``compute.googleapis.com``, about a ``gce_instance``, and not
stamped more than :data:`FUTURE_TOLERANCE` ahead of ``now``. Anyone with ``logging.logEntries.create`` can
write a look-alike entry to another log; Cloud Logging alone writes the audit logs. The log sink's filter
(``terraform/sink-filter.tftpl``) requires the same, so this is the second check.

Example entries: ``tests/fixtures/logentry-preempted.json`` (a Spot preemption, a system event) and
``tests/fixtures/logentry-mig-delete-first.json`` (the first entry of a MIG-issued delete).
Every name taken from an entry is checked against Compute Engine's naming rules before it is used,
so a path segment like ``..`` or ``a%2Fb`` never reaches an API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from functions.decisions import jsonvalue
from functions.decisions.envelope import PubsubMessage
from functions.decisions.jsonvalue import child as _child
from functions.decisions.jsonvalue import described as _described
from functions.decisions.jsonvalue import text as _text
from functions.decisions.jsonvalue import type_name as _type_name
from functions.decisions.times import parse_rfc3339
from functions.errors import MalformedEvent

GCE_INSTANCE = "gce_instance"
COMPUTE_SERVICE = "compute.googleapis.com"
AUDIT_LOG_TYPE = "type.googleapis.com/google.cloud.audit.AuditLog"

AUDIT_LOG_NAME = re.compile(
    r"^(projects|folders|organizations)/[^/]+/logs/cloudaudit[.]googleapis[.]com%2F(activity|system_event)$"
)
"""The logName of a Cloud Audit Logs Admin Activity or System Event entry, as Cloud Logging writes it: the
LOG_ID URL-encoded (``%2F``, never a bare ``/``), in a project, or a folder or organization for aggregated
sinks. The same regular expression is the sink filter's logName restriction (RE2's ``$`` is the end of the
text; here it is used with ``fullmatch``, so Python selects the same names)."""
_AUDIT_LOG_NAME_FORM = (
    "projects/PROJECT/logs/cloudaudit.googleapis.com%2Factivity or %2Fsystem_event "
    "(or of folders/FOLDER or organizations/ORGANIZATION)"
)

FUTURE_TOLERANCE = timedelta(seconds=60)
"""How far ahead of ``now`` an entry's timestamp may be (clock skew); beyond it the entry is malformed."""


class EventKind(StrEnum):
    """What happened to the VM behind a GKE node; str() and f-strings give the value (e.g. "preempted")."""

    PREEMPTED = "preempted"
    RECREATE = "recreate"
    DELETE = "delete"
    HOST_ERROR = "host_error"
    GUEST_TERMINATE = "guest_terminate"
    AUTOMATIC_RESTART = "automatic_restart"
    TERMINATE_ON_HOST_MAINTENANCE = "terminate_on_host_maintenance"


SYSTEM_EVENT_METHODS: Mapping[str, EventKind] = {
    "compute.instances.preempted": EventKind.PREEMPTED,
    "compute.instances.repair.recreateInstance": EventKind.RECREATE,
    "compute.instances.hostError": EventKind.HOST_ERROR,
    "compute.instances.guestTerminate": EventKind.GUEST_TERMINATE,
    "compute.instances.automaticRestart": EventKind.AUTOMATIC_RESTART,
    "compute.instances.terminateOnHostMaintenance": EventKind.TERMINATE_ON_HOST_MAINTENANCE,
}
"""After-the-fact notices: acted on whatever their status or severity says."""

DELETE_METHODS: frozenset[str] = frozenset(
    {"v1.compute.instances.delete", "beta.compute.instances.delete", "compute.instances.delete"}
)
"""Requests to delete an instance: acted on for the first entry of a delete that did not fail."""

LIVE_MIGRATION_METHOD = "compute.instances.migrateOnHostMaintenance"

_FAILURE_SEVERITIES = frozenset({"ERROR", "CRITICAL", "ALERT", "EMERGENCY"})

_RESOURCE_NAME = re.compile(r"projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances/(?P<instance>[^/]+)")
_RESOURCE_NAME_FORM = "projects/PROJECT/zones/ZONE/instances/NAME"

# Compute Engine's naming rules: a project ID (optionally domain-scoped, "example.com:name"), a
# zone, an instance name (RFC 1035 label) and an instance id (an unsigned 64-bit number).
PROJECT_ID = re.compile(r"(?:[a-z][-a-z0-9.]{0,61}[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]", re.ASCII)
ZONE = re.compile(r"[a-z]+(?:-[a-z]+)*[0-9]+-[a-z]", re.ASCII)
INSTANCE_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
INSTANCE_ID = re.compile(r"[0-9]{1,20}", re.ASCII)


@dataclass(frozen=True, kw_only=True)
class NodeEvent:
    """A Compute Engine event that affects the GKE node named ``instance`` (node name equals instance name)."""

    kind: EventKind
    project: str
    """Project ID (not number): GKE's providerID is ``gce://PROJECT/ZONE/NAME``."""
    zone: str
    instance: str
    instance_id: str | None
    event_time: datetime
    """When the event was logged, timezone-aware UTC (microsecond precision)."""
    operation_id: str | None
    insert_id: str
    principal: str | None
    method: str

    @property
    def event_id(self) -> str:
        """Identity of the event for idempotency: the operation id when there is one, else the log insertId."""
        return self.operation_id if self.operation_id is not None else self.insert_id


@dataclass(frozen=True, kw_only=True)
class IgnoredEvent:
    """A well-formed entry that we deliberately do not act on; ``reason`` says why (for the audit record)."""

    reason: str
    method: str | None
    project: str | None
    zone: str | None
    instance: str | None
    insert_id: str | None


# --- LogEntry --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Location:
    project: str | None
    zone: str | None
    instance: str | None


def _location(entry: Mapping[str, Any], payload: Mapping[str, Any]) -> _Location:
    """Best-effort project, zone and instance, for ignored entries (never raises)."""
    labels = _child(_child(entry, "resource"), "labels")
    resource_name = _text(payload, "resourceName")
    match = _RESOURCE_NAME.fullmatch(resource_name) if resource_name is not None else None
    return _Location(
        project=_text(labels, "project_id") or (match["project"] if match else None),
        zone=_text(labels, "zone") or (match["zone"] if match else None),
        instance=match["instance"] if match else None,
    )


def _ignored(reason: str, *, method: str, insert_id: str, location: _Location) -> IgnoredEvent:
    return IgnoredEvent(
        reason=reason,
        method=method,
        project=location.project,
        zone=location.zone,
        instance=location.instance,
        insert_id=insert_id,
    )


def _delete_failure(entry: Mapping[str, Any], payload: Mapping[str, Any]) -> str | None:
    """Why a delete entry records a failed request, or None when it did not fail."""
    status = _child(payload, "status")
    code = status.get("code") if status is not None else None
    failed_code = code is not None and code not in (0, "0", "")
    severity = _text(entry, "severity")
    failed_severity = severity is not None and severity.upper() in _FAILURE_SEVERITIES
    if not failed_code and not failed_severity:
        return None
    details = []
    if failed_severity:
        details.append(f"severity {severity}")
    if failed_code:
        details.append(f"status code {code}")
    message = _text(status, "message") or "no status message"
    return f"the delete request failed ({', '.join(details)}: {message}); the instance was not deleted"


def parse_log_entry(entry: Mapping[str, Any], *, now: datetime) -> NodeEvent | IgnoredEvent:
    """Classify one Compute Engine audit-log entry (the JSON LogEntry a log sink publishes).

    Returns a :class:`NodeEvent` for an event that drains a node, an :class:`IgnoredEvent` for a well-formed
    entry we deliberately do not act on, and raises :class:`MalformedEvent` for an entry that cannot be parsed
    or is not a genuine Compute Engine audit entry (see the module docstring; checked before anything else,
    so a look-alike is never even ignored). A timestamp more than :data:`FUTURE_TOLERANCE` after ``now``
    (timezone-aware) is malformed. The fields only a NodeEvent needs (resourceName, timestamp, project, zone)
    are required only for entries that are acted on; an ignored entry reports what it can.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(entry, Mapping):
        raise MalformedEvent(f"LogEntry is not a JSON object: got {_type_name(entry)}")
    payload = _genuine_payload(entry)
    method = _text(payload, "methodName")
    if method is None:
        raise MalformedEvent("LogEntry has no protoPayload.methodName")
    resource = _child(entry, "resource")
    insert_id = _text(entry, "insertId")
    if insert_id is None:
        raise MalformedEvent("LogEntry has no insertId")
    event_time = _event_time(entry, now=now)

    operation = _child(entry, "operation")
    kind = SYSTEM_EVENT_METHODS.get(method)
    if kind is None:
        location = _location(entry, payload)
        if method == LIVE_MIGRATION_METHOD:
            return _ignored(
                f"method {method} is a live migration: the VM keeps running, so the node is not drained",
                method=method,
                insert_id=insert_id,
                location=location,
            )
        if method not in DELETE_METHODS:
            return _ignored(
                f"method {method} is not an event that drains a node",
                method=method,
                insert_id=insert_id,
                location=location,
            )
        failure = _delete_failure(entry, payload)
        if failure is not None:
            return _ignored(failure, method=method, insert_id=insert_id, location=location)
        if operation is None or operation.get("first") is not True:
            return _ignored(
                "not the first entry of the delete operation (operation.first is not true)",
                method=method,
                insert_id=insert_id,
                location=location,
            )
        kind = EventKind.DELETE

    resource_name = _text(payload, "resourceName")
    if resource_name is None:
        raise MalformedEvent(f"LogEntry has no protoPayload.resourceName (expected {_RESOURCE_NAME_FORM})")
    match = _RESOURCE_NAME.fullmatch(resource_name)
    if match is None:
        raise MalformedEvent(
            f"LogEntry protoPayload.resourceName {resource_name!r} is not of the form {_RESOURCE_NAME_FORM}"
        )

    if event_time is None:
        raise MalformedEvent("LogEntry has no timestamp (expected RFC 3339, e.g. 2026-10-02T08:14:07.512331Z)")

    labels = _child(resource, "labels")
    project = _text(labels, "project_id")
    if project is None:
        # The resourceName of a MIG-issued delete names the project by number, which is not what providerIDs use.
        if match["project"].isdigit():
            raise MalformedEvent(
                "LogEntry has no resource.labels.project_id and protoPayload.resourceName names the project only "
                f"by number ({match['project']}); expected the project ID"
            )
        project = match["project"]
    zone = _text(labels, "zone") or match["zone"]
    instance_id = _text(labels, "instance_id")
    _check_name("project ID", project, PROJECT_ID)
    _check_name("zone", zone, ZONE)
    _check_name("instance name", match["instance"], INSTANCE_NAME)
    if instance_id is not None:
        _check_name("instance id", instance_id, INSTANCE_ID)

    return NodeEvent(
        kind=kind,
        project=project,
        zone=zone,
        instance=match["instance"],
        instance_id=instance_id,
        event_time=event_time,
        operation_id=_text(operation, "id"),
        insert_id=insert_id,
        principal=_text(_child(payload, "authenticationInfo"), "principalEmail"),
        method=method,
    )


def _shown(value: Any) -> str:
    """A field's value for a message: a string quoted and cut short, anything else by its JSON type."""
    return repr(value[:200]) if isinstance(value, str) else _described(value)


def _genuine_payload(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The AuditLog payload of a genuine Compute Engine audit entry; MalformedEvent says what is not genuine."""
    payload = _child(entry, "protoPayload")
    if payload is None:
        raise MalformedEvent("LogEntry has no protoPayload (expected a Cloud Audit Log entry with an AuditLog payload)")
    log_name = entry.get("logName")
    if log_name is None:
        raise MalformedEvent(f"LogEntry has no logName (expected {_AUDIT_LOG_NAME_FORM})")
    if not isinstance(log_name, str) or not AUDIT_LOG_NAME.fullmatch(log_name):
        raise MalformedEvent(
            f"LogEntry logName is {_shown(log_name)}, expected {_AUDIT_LOG_NAME_FORM}: "
            "only Compute Engine's own audit entries act, and any identity with logging.logEntries.create "
            "can write look-alikes to other logs"
        )
    payload_type = payload.get("@type")
    if payload_type != AUDIT_LOG_TYPE:
        found = "no protoPayload.@type" if payload_type is None else f"protoPayload.@type {_shown(payload_type)}"
        raise MalformedEvent(f"LogEntry has {found}, expected {AUDIT_LOG_TYPE!r}")
    service = payload.get("serviceName")
    if service != COMPUTE_SERVICE:
        found = "no protoPayload.serviceName" if service is None else f"protoPayload.serviceName {_shown(service)}"
        raise MalformedEvent(f"LogEntry has {found}, expected {COMPUTE_SERVICE!r} (a Compute Engine audit entry)")
    resource = _child(entry, "resource")
    resource_type = resource.get("type") if resource is not None else None
    if resource_type is None:
        raise MalformedEvent(f"LogEntry has no resource.type (expected {GCE_INSTANCE!r})")
    if resource_type != GCE_INSTANCE:
        raise MalformedEvent(f"LogEntry resource.type is {_shown(resource_type)}, expected {GCE_INSTANCE!r}")
    return payload


def _event_time(entry: Mapping[str, Any], *, now: datetime) -> datetime | None:
    """The entry's timestamp (None when absent); MalformedEvent when invalid or too far in the future."""
    timestamp = entry.get("timestamp")
    if timestamp is None:
        return None
    if not isinstance(timestamp, str):
        raise MalformedEvent(f"LogEntry timestamp is {_described(timestamp)}, expected an RFC 3339 string")
    try:
        event_time = parse_rfc3339(timestamp)
    except ValueError as exc:
        raise MalformedEvent(f"LogEntry timestamp is invalid: {exc}") from exc
    if event_time > now + FUTURE_TOLERANCE:
        ahead = event_time - now
        raise MalformedEvent(
            f"LogEntry timestamp {timestamp[:40]!r} is {ahead} ahead of now ({now.isoformat()}), more than the "
            f"{FUTURE_TOLERANCE.total_seconds():g} s of clock skew allowed: Cloud Logging does not write entries "
            "of the future, so it is not acted on (nor stored)"
        )
    return event_time


def _check_name(what: str, value: str, rule: re.Pattern[str]) -> None:
    if not rule.fullmatch(value):
        raise MalformedEvent(f"LogEntry names the {what} {value[:100]!r}, which is not a valid Compute Engine {what}")


def log_entry_from_message(message: PubsubMessage) -> dict[str, Any]:
    """The JSON LogEntry a log sink published as ``message``."""
    try:
        entry = jsonvalue.load(message.data, what="Pub/Sub message data")
    except jsonvalue.JsonError as exc:
        raise MalformedEvent(f"Pub/Sub message data is not a JSON LogEntry ({exc})") from None
    if not isinstance(entry, dict):
        raise MalformedEvent(
            f"Pub/Sub message data is not a JSON LogEntry: got a JSON {_type_name(entry)}, expected an object"
        )
    return entry
