"""Cloud Functions entry points: adapt the trigger, call one use case, map the outcome.

- ``on_node_event``: CloudEvent (Eventarc Pub/Sub messagePublished; functions-framework also
  converts raw Pub/Sub push bodies and legacy background events to this shape).

A handled, ignored or permanently bad event returns normally (acknowledged; each is audited);
a transient failure raises, so that Pub/Sub redelivers.
"""

from __future__ import annotations

import threading

import functions_framework
from cloudevents.http.event import CloudEvent

from functions.errors import PermanentError
from functions.service import Service

_service: Service | None = None
_service_lock = threading.Lock()


def service() -> Service:
    """The instance's Service, created at the first event (never at import)."""
    global _service  # noqa: PLW0603 - one per instance
    with _service_lock:
        if _service is None:
            _service = Service.from_environment()
        return _service


@functions_framework.cloud_event
def on_node_event(cloud_event: CloudEvent) -> None:
    try:
        service().handle_pubsub(cloud_event.data, trigger="pubsub", delivery_id=cloud_event.get("id"))
    except PermanentError:
        return  # bad input or nothing to do: audited, acknowledged, never retried
