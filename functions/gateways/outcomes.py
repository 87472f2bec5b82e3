"""Outcome events: CloudEvents JSON on a Pub/Sub topic after each audited outcome.

One batching publisher per instance, made on first use. Publishing never fails, retries or
repeats the work it reports on: a failure is audited (``outcome.publish_failed``) and dropped.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from functions.decisions.actions import Action, Severity
from functions.decisions.names import COMPONENT
from functions.gateways.audit import Audit

DRAINED = "node.drained"
DRAIN_FAILED = "node.drain_failed"
UNCORDONED = "node.uncordoned"
JOBS_CLEANED = "jobs.cleaned"
FLUSH_SECONDS = 10.0


def cloud_event(
    *, type_prefix: str, kind: str, source: str, subject: str | None, data: Mapping[str, Any]
) -> dict[str, Any]:
    """A CloudEvents 1.0 structured-mode JSON object (pure)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": f"{type_prefix}.{kind}",
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    if subject:
        event["subject"] = subject
    return event


class OutcomePublisher:
    """Publishes outcome events to one topic; ``topic`` None turns it into a no-op."""

    def __init__(self, *, topic: str | None, type_prefix: str) -> None:
        self.topic = topic
        self.type_prefix = type_prefix
        self._client: Any = None
        self._lock = threading.Lock()
        self._pending: list[tuple[Future[Any], str, Audit]] = []

    def _publisher(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # heavy: only when configured

                self._client = pubsub_v1.PublisherClient(
                    batch_settings=pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.05)
                )
            return self._client

    def publish(self, kind: str, *, cluster: str, node: str | None, data: Mapping[str, Any], audit: Audit) -> None:
        if not self.topic:
            return
        event = cloud_event(
            type_prefix=self.type_prefix,
            kind=kind,
            source=f"//{COMPONENT}/clusters/{cluster}",
            subject=node,
            data=data,
        )
        attributes = {"type": event["type"], "cluster": cluster, "content-type": "application/cloudevents+json"}
        if node:
            attributes["node"] = node
        try:
            future = self._publisher().publish(self.topic, json.dumps(event, default=str).encode(), **attributes)
        except Exception as exc:  # a bad topic name, no credentials: report, never fail the work
            audit.record(
                Action.OUTCOME_PUBLISH_FAILED,
                f"could not publish {event['type']}: {exc}",
                severity=Severity.WARNING,
                topic=self.topic,
                error=str(exc),
            )
            return
        with self._lock:
            self._pending.append((future, event["type"], audit))

    def flush(self, timeout: float = FLUSH_SECONDS) -> None:
        """Wait (bounded) for what was published, auditing failures; called before a handler returns."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future, kind, audit in pending:
            try:
                message_id = future.result(timeout=timeout)
            except Exception as exc:  # NotFound topic, permission, timeout
                audit.record(
                    Action.OUTCOME_PUBLISH_FAILED,
                    f"could not publish {kind}: {exc}",
                    severity=Severity.WARNING,
                    topic=self.topic,
                    error=str(exc)[:300],
                )
            else:
                audit.record(
                    Action.OUTCOME_PUBLISHED,
                    f"published {kind}",
                    topic=self.topic,
                    message_id=message_id,
                    outcome_type=kind,
                )
