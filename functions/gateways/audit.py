"""The only writer of audit records: JSON lines on stdout, and google-cloud-logging for a dedicated log.

Every decision becomes one structured record: JSON on stdout in the format of google-cloud-logging's
``StructuredLogHandler`` (what Cloud Functions ships to Cloud Logging, and what a local run prints;
written by :class:`StructuredStdoutHandler`, which a unit test holds to the library's output, so
that a cold start does not import the Logging client), and, when an audit log name is configured,
also an entry in that log through the Logging API's ``CloudLoggingHandler`` (batched in the
background; google-cloud-logging is imported only then).

Records carry ``audit: true``, an ``action`` (``event.received``, ``node.cordoned``, ``pod.evicted``
...), and the context they were bound to (trigger, event id, node, cluster, principal).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, TextIO

from functions.decisions.actions import Action, Severity
from functions.decisions.names import COMPONENT

LOGGER_NAME = "gke_node_drainer.audit"
_SECRET_MARKERS = ("token", "authorization", "password", "secret")
_LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.NOTICE: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
}
MAX_STRING = 2048  # longer strings are cut, with a marker and the original length
MAX_ITEMS = 200  # longer lists are cut, with a marker
MAX_DEPTH = 8
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _text(value: str) -> str:
    """A string any JSON encoder and the Logging API accept: lone surrogates and control characters
    escaped, cut at MAX_STRING characters with the original length."""
    safe = value.encode("utf-8", "backslashreplace").decode("utf-8")
    safe = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", safe)
    if len(safe) > MAX_STRING:
        return f"{safe[:MAX_STRING]}...[truncated, {len(value)} characters]"
    return safe


def _clean(value: Any, depth: int = 0) -> Any:
    """JSON-ready copy of ``value``: credentials redacted, strings made safe, size bounded."""
    if depth > MAX_DEPTH:
        return "[nested too deep]"
    if isinstance(value, Mapping):
        return {
            _text(str(k)): ("[redacted]" if any(m in str(k).lower() for m in _SECRET_MARKERS) else _clean(v, depth + 1))
            for k, v in list(value.items())[:MAX_ITEMS]
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [_clean(v, depth + 1) for v in list(value)[:MAX_ITEMS]]
        return items + ([f"[{len(value) - MAX_ITEMS} more]"] if len(value) > MAX_ITEMS else [])
    if isinstance(value, Enum):
        return _clean(value.value, depth)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return _text(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    return _text(str(value))


_TRACEPARENT = re.compile(
    r"^\s?((?!ff)[a-f\d]{2})-((?![0]{32})[a-f\d]{32})-((?![0]{16})[a-f\d]{16})-([a-f\d]{2})(-.*)?\s?$"
)
_XCLOUD_TRACE = re.compile(r"([\w-]+)?(\/?([\w-]+))?(;?o=(\d))?")
# reserved keys of Cloud Logging's structured format: a payload field of that name is dropped
_RESERVED = frozenset(
    {
        "severity",
        "httpRequest",
        "time",
        "timestamp",
        "timestampSeconds",
        "timestampNanos",
        "logging.googleapis.com/insertId",
        "logging.googleapis.com/labels",
        "logging.googleapis.com/operation",
        "logging.googleapis.com/sourceLocation",
        "logging.googleapis.com/spanId",
        "logging.googleapis.com/trace",
        "logging.googleapis.com/trace_sampled",
    }
)


def _request_data() -> tuple[dict[str, Any] | None, str | None, str | None, bool]:
    """The current HTTP request (functions-framework runs handlers in a Flask request context) and its
    trace (W3C ``traceparent`` first, then ``X-Cloud-Trace-Context``), as google-cloud-logging infers them."""
    flask = sys.modules.get("flask")  # never imported here: only a process that serves requests has one
    if flask is None or not flask.has_request_context():
        return None, None, None, False
    request = flask.request
    http_request = {
        "requestMethod": request.method,
        "requestUrl": request.url,
        "userAgent": request.user_agent.string,
        "protocol": request.environ.get("SERVER_PROTOCOL"),
    }
    header = request.headers.get("TRACEPARENT")
    if header and (match := _TRACEPARENT.match(header)):
        return http_request, match.group(2), match.group(3), bool(int(match.group(4), 16) & 1)
    header = request.headers.get("X_CLOUD_TRACE_CONTEXT")
    if not header:
        return http_request, None, None, False
    match = _XCLOUD_TRACE.match(header)
    trace, span, sampled = (match.group(1), match.group(3), match.group(5) == "1") if match else (None, None, False)
    try:
        span_number = int(span) if span is not None else 0
        span = f"{span_number:016x}" if 0 < span_number < 2**64 else None
    except ValueError:
        span = None
    return http_request, trace, span, sampled


class StructuredStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """One JSON line per record, field for field what google-cloud-logging's ``StructuredLogHandler``
    writes for a record with ``json_fields`` (payload, message, severity, labels with the logger's
    name, trace, span, sourceLocation, httpRequest), without importing the Logging client."""

    def __init__(self, *, stream: TextIO, project_id: str | None, labels: Mapping[str, str]) -> None:
        super().__init__(stream=stream)
        self.project_id = project_id
        self.labels = dict(labels)

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "json_fields", None)
        payload = {k: v for k, v in dict(fields or {}).items() if k not in _RESERVED}
        message: Any = record.getMessage()
        if message.startswith("{"):  # the library sends a message that is a JSON object as that object
            try:
                parsed = json.loads(message)
            except ValueError:
                parsed = None
            if isinstance(parsed, Mapping):
                message = parsed
        if message != "None":
            payload["message"] = message
        http_request, trace, span, sampled = _request_data()
        if trace is not None and self.project_id is not None:
            trace = f"projects/{self.project_id}/traces/{trace}"
        location = {"line": record.lineno, "file": record.pathname, "function": record.funcName}
        labels = {**({"python_logger": record.name} if record.name else {}), **self.labels}
        body = json.dumps(payload, ensure_ascii=False)
        return (
            "{" + (body[1:-1] + "," if len(body) > 2 else "") + f'"severity": "{record.levelname}", '
            f'"logging.googleapis.com/labels": {json.dumps(labels, ensure_ascii=False)}, '
            f'"logging.googleapis.com/trace": "{trace or ""}", '
            f'"logging.googleapis.com/spanId": "{span or ""}", '
            f'"logging.googleapis.com/trace_sampled": {"true" if sampled else "false"}, '
            f'"logging.googleapis.com/sourceLocation": {json.dumps(location, ensure_ascii=False)}, '
            f'"httpRequest": {json.dumps(http_request or {}, ensure_ascii=False)} '
            "}"
        )


class AuditWriter:
    """Owns the handlers; one per process (see :func:`writer`)."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        log_name: str | None = None,
        project: str | None = None,
        api_endpoint: str | None = None,
    ) -> None:
        self.logger = logging.Logger(LOGGER_NAME, level=logging.INFO)
        self.logger.propagate = False
        self.logger.addHandler(
            StructuredStdoutHandler(stream=stream or sys.stdout, project_id=project, labels={"component": COMPONENT})
        )
        self.log_name = log_name
        if log_name:
            import google.cloud.logging  # heavy (gRPC, the generated clients): only for the dedicated log
            from google.cloud.logging_v2.handlers import CloudLoggingHandler
            from google.cloud.logging_v2.resource import Resource

            options = {"api_endpoint": api_endpoint} if api_endpoint else None
            client = google.cloud.logging.Client(project=project, client_options=options)
            # An explicit resource: the library's own detection probes a hard-coded metadata host.
            resource = Resource(type="global", labels={"project_id": str(client.project)})
            self.logger.addHandler(
                CloudLoggingHandler(client, name=log_name, resource=resource, labels={"component": COMPONENT})
            )

    def write(self, action: Action, message: str, severity: Severity, fields: Mapping[str, Any]) -> None:
        payload = _clean({**fields, "audit": True, "action": action})
        self.logger.log(_LEVELS.get(severity, logging.INFO), _text(message), extra={"json_fields": payload})

    def flush(self) -> None:
        for handler in self.logger.handlers:
            handler.flush()


_writer: AuditWriter | None = None
_writer_lock = threading.Lock()


def configure(
    *,
    stream: TextIO | None = None,
    log_name: str | None = None,
    project: str | None = None,
    api_endpoint: str | None = None,
) -> AuditWriter:
    global _writer  # noqa: PLW0603 - one writer per process, made on first use
    with _writer_lock:
        _writer = AuditWriter(stream=stream, log_name=log_name, project=project, api_endpoint=api_endpoint)
        return _writer


def flush() -> None:
    """Send what is buffered (the Logging API handler batches in the background)."""
    with _writer_lock:
        current = _writer
    if current is not None:
        current.flush()


def writer() -> AuditWriter:
    with _writer_lock:
        current = _writer
    return current if current is not None else configure()


@dataclass(frozen=True)
class Audit:
    """An audit context: records written through it carry its fields."""

    fields: Mapping[str, Any] = field(default_factory=dict)

    def bind(self, **more: Any) -> Audit:
        return Audit({**self.fields, **{k: v for k, v in more.items() if v is not None}})

    def record(self, action: Action, message: str, /, *, severity: Severity = Severity.INFO, **details: Any) -> None:
        writer().write(action, message, severity, {**self.fields, **details})
