"""Turn Pub/Sub deliveries of Compute Engine audit-log entries into typed node events.

Pure parsing: no I/O, no clock, no side effects at import. The entry point unwraps the trigger with
:func:`pubsub_message_from_cloudevent_data` and :func:`log_entry_from_message`, then calls
:func:`parse_log_entry`, which returns a :class:`NodeEvent` to act on, an :class:`IgnoredEvent` to acknowledge
and audit, or raises :class:`~functions.errors.MalformedEvent` (a permanent error: acknowledge, audit, never retry).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from functions.errors import MalformedEvent

__all__ = [
    "DELETE_METHODS",
    "LIVE_MIGRATION_METHOD",
    "SYSTEM_EVENT_METHODS",
    "EventKind",
    "IgnoredEvent",
    "NodeEvent",
    "PubsubMessage",
    "log_entry_from_message",
    "parse_log_entry",
    "parse_rfc3339",
    "pubsub_message_from_cloudevent_data",
]

GCE_INSTANCE = "gce_instance"


class EventKind(str, Enum):  # noqa: UP042 - the declared API; __str__ below gives StrEnum's str()/format()
    """What happened to the VM behind a GKE node; str() and f-strings give the value (e.g. "preempted")."""

    PREEMPTED = "preempted"
    RECREATE = "recreate"
    DELETE = "delete"
    HOST_ERROR = "host_error"
    GUEST_TERMINATE = "guest_terminate"
    AUTOMATIC_RESTART = "automatic_restart"
    TERMINATE_ON_HOST_MAINTENANCE = "terminate_on_host_maintenance"

    def __str__(self) -> str:
        return self.value


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

_RFC3339 = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"[Tt ]"
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.(?P<fraction>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


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
    log_name: str

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


@dataclass(frozen=True, kw_only=True)
class PubsubMessage:
    """A Pub/Sub message, whatever envelope it arrived in; ``data`` is already base64-decoded."""

    data: bytes
    attributes: Mapping[str, str] = field(hash=False)
    message_id: str | None
    publish_time: str | None


# --- timestamps ------------------------------------------------------------------------------------------------


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Accepts any number of fractional digits (Cloud Logging writes up to 9; extra digits are truncated to
    microseconds, never rounded up into the next second) and ``Z`` or a numeric offset. Raises ValueError
    with the reason otherwise.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp like 2026-10-02T08:14:07.512331Z")
    fraction = match["fraction"] or ""
    microsecond = int(fraction[:6].ljust(6, "0"))
    offset = match["offset"]
    if offset in {"Z", "z"}:
        tz = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{value!r} has an invalid UTC offset {offset}")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    try:
        parsed = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            microsecond,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time: {exc}") from exc
    return parsed.astimezone(UTC)


# --- small typed accessors over JSON ---------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _child(parent: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    return _mapping(parent.get(key)) if parent is not None else None


def _text(parent: Mapping[str, Any] | None, key: str) -> str | None:
    """A non-empty string field, else None."""
    if parent is None:
        return None
    value = parent.get(key)
    return value if isinstance(value, str) and value else None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _described(value: Any) -> str:
    """The JSON type of ``value`` with its article, for messages like "timestamp is a number"."""
    name = _type_name(value)
    if name == "null":
        return name
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


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


def parse_log_entry(entry: Mapping[str, Any]) -> NodeEvent | IgnoredEvent:
    """Classify one Compute Engine audit-log entry (the JSON LogEntry a log sink publishes).

    Returns a :class:`NodeEvent` for an event that drains a node, an :class:`IgnoredEvent` for a well-formed
    entry we deliberately do not act on, and raises :class:`MalformedEvent` for an entry that cannot be parsed.
    The fields only a NodeEvent needs (resourceName, timestamp, project, zone) are required only for entries
    that are acted on; an ignored entry reports what it can.
    """
    if not isinstance(entry, Mapping):
        raise MalformedEvent(f"LogEntry is not a JSON object: got {_type_name(entry)}")
    payload = _child(entry, "protoPayload")
    if payload is None:
        raise MalformedEvent("LogEntry has no protoPayload (expected a Cloud Audit Log entry with an AuditLog payload)")
    method = _text(payload, "methodName")
    if method is None:
        raise MalformedEvent("LogEntry has no protoPayload.methodName")
    resource = _child(entry, "resource")
    resource_type = resource.get("type") if resource is not None else None
    if resource_type is None:
        raise MalformedEvent(f"LogEntry has no resource.type (expected {GCE_INSTANCE!r})")
    if resource_type != GCE_INSTANCE:
        raise MalformedEvent(f"LogEntry resource.type is {resource_type!r}, expected {GCE_INSTANCE!r}")
    insert_id = _text(entry, "insertId")
    if insert_id is None:
        raise MalformedEvent("LogEntry has no insertId")

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

    timestamp = entry.get("timestamp")
    if timestamp is None:
        raise MalformedEvent("LogEntry has no timestamp (expected RFC 3339, e.g. 2026-10-02T08:14:07.512331Z)")
    if not isinstance(timestamp, str):
        raise MalformedEvent(f"LogEntry timestamp is {_described(timestamp)}, expected an RFC 3339 string")
    try:
        event_time = parse_rfc3339(timestamp)
    except ValueError as exc:
        raise MalformedEvent(f"LogEntry timestamp is invalid: {exc}") from exc

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

    return NodeEvent(
        kind=kind,
        project=project,
        zone=zone,
        instance=match["instance"],
        instance_id=_text(labels, "instance_id"),
        event_time=event_time,
        operation_id=_text(operation, "id"),
        insert_id=insert_id,
        principal=_text(_child(payload, "authenticationInfo"), "principalEmail"),
        method=method,
        log_name=_text(entry, "logName") or "",
    )


# --- Pub/Sub envelopes -----------------------------------------------------------------------------------------


def _decode_base64(value: str, *, where: str) -> bytes:
    """Decode standard or URL-safe base64, strictly (no stray characters)."""
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        pass
    if "+" in value or "/" in value:
        raise MalformedEvent(f"{where} is not valid base64 (neither the standard nor the URL-safe alphabet)")
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEvent(f"{where} is not valid base64: {exc}") from exc


def _optional_text(message: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = message.get(key)
        if value is not None and value != "":
            return str(value)
    return None


def _message_from(
    message: Mapping[str, Any], *, where: str, default_id: str | None = None, default_time: str | None = None
) -> PubsubMessage:
    if "data" not in message or message["data"] is None:
        raise MalformedEvent(f"{where} has no data field (expected the base64-encoded LogEntry)")
    raw = message["data"]
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("ascii")
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"{where}.data is not valid base64: {exc}") from exc
    if not isinstance(raw, str):
        raise MalformedEvent(f"{where}.data is {_described(raw)}, expected a base64 string")
    data = _decode_base64(raw, where=f"{where}.data")

    attributes = message.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise MalformedEvent(f"{where}.attributes is {_described(attributes)}, expected an object")

    return PubsubMessage(
        data=data,
        attributes={str(key): str(value) for key, value in attributes.items()},
        message_id=_optional_text(message, "messageId", "message_id") or default_id,
        publish_time=_optional_text(message, "publishTime", "publish_time") or default_time,
    )


def pubsub_message_from_cloudevent_data(data: Any) -> PubsubMessage:
    """Extract the Pub/Sub message from a delivery, whatever its envelope.

    Accepts the data of a ``google.cloud.pubsub.topic.v1.messagePublished`` CloudEvent (which is also the body
    of a raw Pub/Sub push): ``{"message": {"data": <base64>, "attributes": ..., "messageId": ...,
    "publishTime": ...}, "subscription": ...}`` (snake_case keys too), as a mapping or as its JSON in bytes or
    str; the 1st-gen background-event payload, which is the PubsubMessage itself (``{"@type": ...,
    "data": <base64>, "attributes": ...}``); and the legacy wrapper ``{"context": ..., "data": {PubsubMessage}}``.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"CloudEvent data is not UTF-8 JSON: {exc}") from exc
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise MalformedEvent(f"CloudEvent data is not JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise MalformedEvent(
            f"CloudEvent data is not a JSON object: got {_type_name(data)} "
            '(expected {"message": {"data": <base64>, ...}, "subscription": ...})'
        )

    if "message" in data:
        message = _mapping(data["message"])
        if message is None:
            raise MalformedEvent(
                f"CloudEvent data.message is {_described(data['message'])}, expected a Pub/Sub message object"
            )
        return _message_from(message, where="Pub/Sub message")

    inner = _mapping(data.get("data"))
    if inner is not None:
        # 1st-gen background event: message id and publish time live in the context.
        context = _child(data, "context")
        return _message_from(
            inner,
            where="background event data",
            default_id=_text(context, "eventId"),
            default_time=_text(context, "timestamp"),
        )

    if "data" in data or str(data.get("@type", "")).endswith("PubsubMessage"):
        return _message_from(data, where="Pub/Sub message")

    raise MalformedEvent(
        "CloudEvent data has no message field "
        '(expected {"message": {"data": <base64>, ...}, "subscription": ...} or a legacy PubsubMessage)'
    )


def log_entry_from_message(message: PubsubMessage) -> dict[str, Any]:
    """The JSON LogEntry a log sink published as ``message``."""
    try:
        text = message.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"Pub/Sub message data is not a JSON LogEntry: not UTF-8 ({exc})") from exc
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"Pub/Sub message data is not a JSON LogEntry: invalid JSON ({exc})") from exc
    if not isinstance(entry, dict):
        raise MalformedEvent(
            f"Pub/Sub message data is not a JSON LogEntry: got a JSON {_type_name(entry)}, expected an object"
        )
    return entry
