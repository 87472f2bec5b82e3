"""Pure parts of outcome events and the worker's message envelope."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from functions.decisions.envelope import unwrap
from functions.decisions.logentry import log_entry_from_message
from functions.entry.worker import envelope
from functions.gateways.audit import Audit
from functions.gateways.outcomes import OutcomePublisher, cloud_event


def test_cloud_event_is_cloudevents_1_0_structured_json() -> None:
    event = cloud_event(
        type_prefix="io.gke-node-drainer",
        kind="node.drained",
        source="//gke-node-drainer/clusters/payments",
        subject="gke-a",
        data={"counts": {"evicted": 3}},
    )
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.gke-node-drainer.node.drained"
    assert event["source"] == "//gke-node-drainer/clusters/payments"
    assert event["subject"] == "gke-a"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == {"counts": {"evicted": 3}}
    assert event["time"].endswith("Z")
    assert len(event["id"]) == 36
    json.dumps(event)  # serializable as it stands


def test_cloud_event_without_subject_has_no_subject_key() -> None:
    event = cloud_event(type_prefix="p", kind="jobs.cleaned", source="s", subject=None, data={})
    assert "subject" not in event
    assert event["type"] == "p.jobs.cleaned"


def test_publisher_without_topic_is_a_no_op() -> None:
    publisher = OutcomePublisher(topic=None, type_prefix="io.gke-node-drainer")
    publisher.publish("node.drained", cluster="c", node="n", data={}, audit=Audit())
    publisher.flush()
    assert publisher._client is None  # never even created


@dataclass
class Pulled:
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = "42"
    publish_time: datetime | None = None


def test_worker_envelope_round_trips_through_the_event_parser() -> None:
    entry: dict[str, Any] = {"insertId": "x", "protoPayload": {"methodName": "compute.instances.preempted"}}
    message = Pulled(
        data=json.dumps(entry).encode(),
        attributes={"logging.googleapis.com/timestamp": "2026-10-02T08:14:07Z"},
        publish_time=datetime(2026, 10, 2, 8, 14, 8, tzinfo=UTC),
    )
    wrapped = envelope(message)
    assert wrapped["message"]["messageId"] == "42"
    assert wrapped["message"]["publishTime"] == "2026-10-02T08:14:08+00:00"
    assert base64.b64decode(wrapped["message"]["data"]) == message.data
    parsed = unwrap(wrapped)
    assert parsed.message_id == "42"
    assert parsed.attributes == message.attributes
    assert log_entry_from_message(parsed) == entry


def test_worker_envelope_without_publish_time() -> None:
    assert envelope(Pulled(data=b"{}"))["message"]["publishTime"] is None
