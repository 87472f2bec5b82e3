"""The project's error hierarchy; only the entry points map these to ack, retry or an HTTP status."""

from __future__ import annotations

from typing import Any


class DrainerError(Exception):
    """Base of the project's errors."""


class PermanentError(DrainerError):
    """Bad input: acknowledge, audit, never retry."""


class TransientError(DrainerError):
    """API down, 5xx, timeouts: raise so that Pub/Sub redelivers."""


class Denied(TransientError):
    """401/403 from an API we need (a cluster's API server, the Container API, Compute Engine): the
    deployment's identity lacks a permission. A deployment fault, not bad input: retried (the
    dead-letter topic keeps what never succeeds) while someone fixes what :attr:`fix` names."""

    @property
    def fix(self) -> str:
        """What to grant or check."""
        raise NotImplementedError

    def answer(self) -> dict[str, Any]:
        """The server's answer (its Status or Google's error), for audit records."""
        raise NotImplementedError


class MalformedEvent(PermanentError):
    """An event that cannot be parsed; str(exc) says what is wrong and what was expected."""
