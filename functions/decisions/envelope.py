"""Unwrap a Pub/Sub delivery into the message it carries (pure).

functions-framework hands the CloudEvent handler the same shape for every way a message arrives
(an Eventarc ``messagePublished`` CloudEvent, a raw Pub/Sub push body, a 1st-gen background
event, all converted before our code runs), and the pull worker builds it too::

    {"message": {"data": "<base64 LogEntry>", "attributes": {...}, "messageId": "...",
                 "publishTime": "..."}, "subscription": "..."}

Example: ``tests/fixtures/cloudevent-pubsub-binary.json``. ``data`` arrives as a mapping; a
CloudEvent whose content type is not JSON hands it over as bytes, which are read as JSON here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.decisions import jsonvalue
from functions.errors import MalformedEvent

EXPECTED_SHAPE = '{"message": {"data": <base64>, ...}, "subscription": ...}'


@dataclass(frozen=True, kw_only=True)
class PubsubMessage:
    """A Pub/Sub message; ``data`` is already base64-decoded."""

    data: bytes
    attributes: Mapping[str, str] = field(hash=False)
    message_id: str | None
    publish_time: str | None
    delivery_attempt: int | None = None  # Pub/Sub's count, sent with a dead-letter policy


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
        raise MalformedEvent(f"{where} is not valid base64: {exc}") from None


def _optional_text(message: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = message.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def unwrap(data: Any) -> PubsubMessage:
    """The Pub/Sub message of a delivery; MalformedEvent says what is wrong and what was expected."""
    if isinstance(data, bytes | bytearray | memoryview | str):
        try:
            data = jsonvalue.load(data, what="CloudEvent data")
        except jsonvalue.JsonError as exc:
            raise MalformedEvent(str(exc)) from None
    if not isinstance(data, Mapping):
        raise MalformedEvent(
            f"CloudEvent data is not a JSON object: got {jsonvalue.type_name(data)} (expected {EXPECTED_SHAPE})"
        )
    if "message" not in data:
        raise MalformedEvent(f"CloudEvent data has no message field (expected {EXPECTED_SHAPE})")
    message = jsonvalue.mapping(data["message"])
    if message is None:
        raise MalformedEvent(
            f"CloudEvent data.message is {jsonvalue.described(data['message'])}, expected a Pub/Sub message object"
        )
    where = "Pub/Sub message"
    raw = message.get("data")
    if raw is None:
        raise MalformedEvent(f"{where} has no data field (expected the base64-encoded LogEntry)")
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("ascii")
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"{where}.data is not valid base64: {exc}") from None
    if not isinstance(raw, str):
        raise MalformedEvent(f"{where}.data is {jsonvalue.described(raw)}, expected a base64 string")
    attributes = message.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise MalformedEvent(f"{where}.attributes is {jsonvalue.described(attributes)}, expected an object")
    return PubsubMessage(
        data=_decode_base64(raw, where=f"{where}.data"),
        attributes={str(key): str(value) for key, value in attributes.items()},
        message_id=_optional_text(message, "messageId", "message_id"),
        publish_time=_optional_text(message, "publishTime", "publish_time"),
        delivery_attempt=_attempt(data.get("deliveryAttempt")),
    )


def _attempt(value: Any) -> int | None:
    """Pub/Sub's deliveryAttempt (a push body's top-level field); anything but a positive count is None."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        count = int(value)
    except ValueError:
        return None
    return count if 0 < count < 1_000_000 else None
