"""Build Compute Engine log entries and the four shapes in which Pub/Sub delivers them."""

from __future__ import annotations

import base64
import copy
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SYSTEM_EVENT_METHODS = {
    "preempted": "compute.instances.preempted",
    "recreate": "compute.instances.repair.recreateInstance",
    "host_error": "compute.instances.hostError",
    "guest_terminate": "compute.instances.guestTerminate",
    "automatic_restart": "compute.instances.automaticRestart",
    "terminate_on_host_maintenance": "compute.instances.terminateOnHostMaintenance",
}
KINDS = (*SYSTEM_EVENT_METHODS, "delete")


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def log_entry(
    kind: str,
    *,
    instance: str,
    project: str = "acme-prod",
    zone: str = "europe-west4-b",
    instance_id: str | None = None,
    when: datetime | None = None,
    operation_id: str | None = None,
) -> dict[str, Any]:
    """A genuine LogEntry of ``kind`` (an EventKind value) shaped like the shared fixtures: in the project's
    Admin Activity (a delete) or System Event audit log, an AuditLog of compute.googleapis.com about a
    gce_instance."""
    moment = when or datetime.now(UTC)
    if kind == "delete":
        entry = copy.deepcopy(load_fixture("logentry-mig-delete-first.json"))
        entry["operation"]["id"] = operation_id or f"operation-{secrets.token_hex(8)}"
    else:
        entry = copy.deepcopy(load_fixture("logentry-preempted.json"))
        method = SYSTEM_EVENT_METHODS[kind]
        entry["protoPayload"]["methodName"] = method
        entry["protoPayload"]["request"]["@type"] = f"type.googleapis.com/{method}"
        entry["operation"]["producer"] = method
        prefix = "repair" if kind == "recreate" else "systemevent"
        entry["operation"]["id"] = operation_id or f"{prefix}-{secrets.token_hex(8)}"
    log = "activity" if kind == "delete" else "system_event"
    entry["logName"] = f"projects/{project}/logs/cloudaudit.googleapis.com%2F{log}"
    entry["protoPayload"]["resourceName"] = f"projects/{project}/zones/{zone}/instances/{instance}"
    entry["resource"]["labels"] = {
        "instance_id": instance_id or str(secrets.randbelow(10**18)),
        "project_id": project,
        "zone": zone,
    }
    entry["insertId"] = secrets.token_hex(6)
    entry["timestamp"] = rfc3339(moment)
    entry["receiveTimestamp"] = rfc3339(moment)
    return entry


def _b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode()


def _message(data: bytes, message_id: str) -> dict[str, Any]:
    return {
        "attributes": {"logging.googleapis.com/timestamp": rfc3339(datetime.now(UTC))},
        "data": _b64(data),
        "messageId": message_id,
        "publishTime": rfc3339(datetime.now(UTC)),
    }


def delivery(
    shape: str, data: bytes | dict[str, Any], *, message_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of one HTTP delivery of ``data`` (a LogEntry, or raw message bytes).

    shapes: "binary" (Eventarc, binary content mode), "structured" (CloudEvents JSON),
    "push" (a raw Pub/Sub push body), "legacy" (the 1st-gen background-event shape).
    """
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    mid = message_id or str(secrets.randbelow(10**16))
    topic = "projects/acme-prod/topics/gke-node-events"
    message = _message(raw, mid)
    envelope = {"message": message, "subscription": "projects/acme-prod/subscriptions/eventarc-sub"}
    now = rfc3339(datetime.now(UTC))
    if shape == "binary":
        headers = {
            "Content-Type": "application/json",
            "ce-id": mid,
            "ce-specversion": "1.0",
            "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            "ce-source": f"//pubsub.googleapis.com/{topic}",
            "ce-time": now,
        }
        return json.dumps(envelope).encode(), headers
    if shape == "structured":
        event = {
            "specversion": "1.0",
            "id": mid,
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": f"//pubsub.googleapis.com/{topic}",
            "time": now,
            "datacontenttype": "application/json",
            "data": envelope,
        }
        return json.dumps(event).encode(), {"Content-Type": "application/cloudevents+json"}
    if shape == "push":
        return json.dumps(envelope).encode(), {"Content-Type": "application/json"}
    if shape == "legacy":
        body = {
            "context": {
                "eventId": mid,
                "timestamp": now,
                "eventType": "google.pubsub.topic.publish",
                "resource": {
                    "service": "pubsub.googleapis.com",
                    "name": topic,
                    "type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
                },
            },
            "data": {
                "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
                "attributes": message["attributes"],
                "data": message["data"],
            },
        }
        return json.dumps(body).encode(), {"Content-Type": "application/json"}
    raise ValueError(shape)
