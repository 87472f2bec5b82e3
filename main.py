"""Cloud Functions entry points: adapt the trigger, call one use case, map the outcome.

- ``on_node_event``: CloudEvent (Eventarc Pub/Sub messagePublished; functions-framework also
  converts raw Pub/Sub push bodies and legacy background events to this shape). A handled,
  ignored or permanently bad event returns normally (acknowledged; each is audited); a transient
  failure raises, so that Pub/Sub redelivers.
- ``on_schedule``: HTTP for Cloud Scheduler, ``{"action": "cleanup" | "recover" | "all"}``.
- ``on_manual``: HTTP JSON API for operators, ``{"action": "drain" | "uncordon" | "cleanup" |
  "status", "cluster": ..., "node": ..., "dry_run": ...}``.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import flask
import functions_framework

from functions.decisions.settings import ConfigError
from functions.errors import PermanentError
from functions.usecases.node_events import NodeEvents
from functions.usecases.runtime import Runtime

if TYPE_CHECKING:  # the HTTP API is imported by the HTTP entry points at their first call, not by a cold start
    from cloudevents.http.event import CloudEvent

    from functions.entry.http_api import Api, HttpResult

_runtime: Runtime | None = None
_events: NodeEvents | None = None
_api: Api | None = None
_lock = threading.Lock()


def runtime() -> Runtime:
    """The instance's Runtime, created at the first call (never at import)."""
    global _runtime  # noqa: PLW0603 - one per instance
    with _lock:
        if _runtime is None:
            _runtime = Runtime.from_environment()
        return _runtime


def node_events() -> NodeEvents:
    global _events  # noqa: PLW0603 - one per instance
    current = runtime()
    with _lock:
        if _events is None:
            _events = NodeEvents(current)
        return _events


def api() -> Api:
    global _api  # noqa: PLW0603 - one per instance
    from functions.entry.http_api import Api

    current = runtime()
    with _lock:
        if _api is None:
            _api = Api(current)
        return _api


def _with_delivery_attempt(data: object) -> object:
    """A raw Pub/Sub push body carries ``deliveryAttempt`` (with a dead-letter policy), which
    functions-framework's conversion to a CloudEvent leaves out: put it back from the request."""
    if not isinstance(data, dict) or "deliveryAttempt" in data or not flask.has_request_context():
        return data
    raw = flask.request.get_json(silent=True)
    attempt = raw.get("deliveryAttempt") if isinstance(raw, dict) else None
    return {**data, "deliveryAttempt": attempt} if attempt is not None else data


@functions_framework.cloud_event
def on_node_event(cloud_event: CloudEvent) -> None:
    try:
        data = _with_delivery_attempt(cloud_event.data)
        node_events().handle_delivery(data, trigger="pubsub", delivery_id=cloud_event.get("id"))
    except PermanentError:
        return  # bad input or nothing to do: audited, acknowledged, never retried


def _respond(result: HttpResult) -> flask.Response:
    return flask.Response(
        json.dumps(result.body, default=str) + "\n",
        status=result.status,
        mimetype="application/json",
        headers=dict(result.headers),
    )


def _http(request: flask.Request, call: str) -> flask.Response:
    from functions.entry.http_api import MAX_BODY_BYTES, HttpResult

    try:
        handler = getattr(api(), call)
    except ConfigError as exc:
        return _respond(HttpResult(500, {"error": f"the function is misconfigured: {exc}"}))
    declared = request.content_length
    # never more than one byte past the limit is read: a larger body is refused (413) unread
    body = b"" if declared is not None and declared > MAX_BODY_BYTES else request.stream.read(MAX_BODY_BYTES + 1)
    return _respond(handler(method=request.method, headers=dict(request.headers), body=body, declared_length=declared))


@functions_framework.http
def on_schedule(request: flask.Request) -> flask.Response:
    return _http(request, "scheduled")


@functions_framework.http
def on_manual(request: flask.Request) -> flask.Response:
    return _http(request, "manual")
