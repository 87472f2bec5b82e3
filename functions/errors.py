"""The project's error hierarchy; only the entry points map these to ack, retry or an HTTP status."""

from __future__ import annotations


class DrainerError(Exception):
    """Base of the project's errors."""


class PermanentError(DrainerError):
    """Bad input: acknowledge, audit, never retry."""


class TransientError(DrainerError):
    """API down, 5xx, timeouts: raise so that Pub/Sub redelivers."""


class MalformedEvent(PermanentError):
    """An event that cannot be parsed; str(exc) says what is wrong and what was expected."""
