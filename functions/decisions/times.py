"""The one RFC 3339 parser and formatter of the project (LogEntry timestamps, API times, annotations)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d+))?(?P<offset>[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime; ValueError (naming the value) otherwise.

    Any number of fractional digits (Cloud Logging writes 9) is truncated to microseconds, never
    rounded into the next second; ``Z``, ``z`` or a numeric offset. The shape is checked here and
    the calendar by :meth:`datetime.fromisoformat` once the input is normalized.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp like 2026-10-02T08:14:07.512331Z")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = "+00:00" if match["offset"] in ("Z", "z") else match["offset"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date and time: {exc}") from None
    return parsed.astimezone(UTC)


def parse_time(value: object) -> datetime | None:
    """A timestamp read from the API or an annotation: None when absent or unreadable (never raises)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def format_time(moment: datetime) -> str:
    """Whole seconds in UTC with ``Z``, as the Kubernetes API writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
