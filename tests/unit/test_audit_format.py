"""The audit records on stdout are, field for field, what google-cloud-logging's StructuredLogHandler
writes: our own handler exists only so that a cold start need not import the Logging client."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import flask
import pytest
from google.cloud import logging_v2
from google.cloud.logging_v2.handlers import StructuredLogHandler

from functions.gateways.audit import StructuredStdoutHandler

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "fields": ("node n1 cordoned", {"audit": True, "action": "node.cordoned", "node": "n1", "count": 3}),
    "unicode": ("évincé \u2603", {"audit": True, "nested": {"a": [1, 2.5, None, True]}, "name": "ü"}),
    "reserved field dropped": ("m", {"severity": "DEBUG", "time": "x", "audit": True}),
    "json message": ('{"a": 1}', {"audit": True}),
    "no fields": ("just text", {}),
}
HEADERS: dict[str, dict[str, str]] = {
    "traceparent": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    "cloud trace": {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"},
    "cloud trace, bad span": {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/x;o=0"},
    "bad traceparent, cloud trace": {
        "traceparent": "ff-bad",
        "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000",
        "User-Agent": "probe/1",
    },
    "none": {},
}


def _line(handler: logging.Handler, stream: io.StringIO, message: str, fields: dict[str, Any]) -> dict[str, Any]:
    logger = logging.Logger("gke_node_drainer.audit", level=logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning(message, extra={"json_fields": fields})
    parsed: dict[str, Any] = json.loads(stream.getvalue().strip().splitlines()[-1])
    return parsed


def _both(message: str, fields: dict[str, Any], project: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    logging_v2._instrumentation_emitted = True  # the library's one-off diagnostic entry is not a record
    theirs_stream, ours_stream = io.StringIO(), io.StringIO()
    labels = {"component": "gke-node-drainer"}
    theirs = _line(
        StructuredLogHandler(stream=theirs_stream, project_id=project, labels=labels), theirs_stream, message, fields
    )
    ours = _line(
        StructuredStdoutHandler(stream=ours_stream, project_id=project, labels=labels), ours_stream, message, fields
    )
    return ours, theirs


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("project", [None, "acme-prod"], ids=["no project", "project"])
def test_same_record_as_the_library_outside_a_request(case: str, project: str | None) -> None:
    ours, theirs = _both(*CASES[case], project)
    # sourceLocation names the logging call: the same line in both
    assert ours == theirs


@pytest.mark.parametrize("headers", HEADERS, ids=str)
@pytest.mark.parametrize("project", [None, "acme-prod"], ids=["no project", "project"])
def test_same_record_as_the_library_inside_a_request(headers: str, project: str | None) -> None:
    app = flask.Flask("probe")
    with app.test_request_context("/path?q=1", method="POST", headers=HEADERS[headers]):
        ours, theirs = _both(*CASES["fields"], project)
    assert ours["httpRequest"]["requestMethod"] == "POST"
    assert ours == theirs
