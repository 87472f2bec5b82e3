"""An audit record is never lost because of what it carries: lone surrogates, control characters,
invalid UTF-8, very long strings, deep nesting and odd types all end as one parseable JSON line."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from functions.decisions.actions import Action, Severity
from functions.gateways.audit import MAX_STRING, AuditWriter

HOSTILE: list[Any] = [
    pytest.param("lone \ud800 surrogate", id="lone-surrogate"),
    pytest.param("nul\x00 bell\x07 escape\x1b", id="control-characters"),
    pytest.param(b"\xff\xfe not utf-8 \xc3\x28", id="invalid-utf8-bytes"),
    pytest.param("x" * 100_000, id="very-long"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="infinity"),
    pytest.param({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": "deep"}}}}}}}}}}, id="deep"),
    pytest.param(list(range(10_000)), id="long-list"),
    pytest.param(object(), id="arbitrary-object"),
    pytest.param({"\ud800key": "value"}, id="surrogate-key"),
]


def _write(value: Any, message: str = "m") -> dict[str, Any]:
    stream = io.StringIO()
    writer = AuditWriter(stream=stream)
    writer.write(Action.EVENT_MALFORMED, message, Severity.WARNING, {"error": value})
    writer.flush()
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    [record] = [r for r in records if r.get("audit") is True]
    found: dict[str, Any] = record
    return found


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_field_still_makes_one_json_record(value: Any) -> None:
    record = _write(value)
    assert record["action"] == "event.malformed"
    assert "error" in record
    json.dumps(record, ensure_ascii=False).encode("utf-8")  # encodable as UTF-8 (no lone surrogate left)


@pytest.mark.parametrize("value", HOSTILE[:4])
def test_a_hostile_message_still_makes_one_json_record(value: Any) -> None:
    text = value
    record = _write("fine", message=text if isinstance(text, str) else text.decode("utf-8", "replace"))
    assert record["message"]
    json.dumps(record, ensure_ascii=False).encode("utf-8")


def test_a_long_string_is_cut_with_a_marker_and_the_original_length() -> None:
    record = _write("x" * 100_000)
    assert len(record["error"]) < MAX_STRING + 100
    assert record["error"].endswith("[truncated, 100000 characters]")
