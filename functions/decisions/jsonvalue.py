"""Reading untrusted JSON: a bounded loader and small typed accessors (pure, never raise on shape)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 64  # no payload we read nests deeper; deeper input is hostile or broken


class JsonError(ValueError):
    """Input that is not JSON we can read; the message says why."""


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True when containers nest deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are no JSON (RFC 8259), though Python's parser takes them."""
    raise ValueError(f"{name} is not a JSON value")


def load(raw: bytes | bytearray | memoryview | str, *, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text from an untrusted source; JsonError names ``what`` and the problem (nesting
    deeper than ``max_depth`` included, so that nothing downstream recurses on hostile input)."""
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError(f"{what} is not UTF-8 JSON: {exc}") from None
    else:
        text = raw
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise JsonError(f"{what} nests deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise JsonError(f"{what} is not valid JSON: {exc}") from None
    if _depth_exceeds(value, max_depth):
        raise JsonError(f"{what} nests deeper than {max_depth} levels")
    return value


def mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def child(parent: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    return mapping(parent.get(key)) if parent is not None else None


def text(parent: Mapping[str, Any] | None, key: str) -> str | None:
    """A non-empty string field, else None."""
    if parent is None:
        return None
    value = parent.get(key)
    return value if isinstance(value, str) and value else None


def type_name(value: Any) -> str:
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


def described(value: Any) -> str:
    """The JSON type of ``value`` with its article, for messages like "timestamp is a number"."""
    name = type_name(value)
    if name == "null":
        return name
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"
