"""Errors of the Kubernetes API, each keeping the server's Status and the request it answered.

The class is chosen once, from the status code (:func:`error_for`); whether to retry is a property
of the class (a :class:`~functions.errors.TransientError` is retried, a
:class:`~functions.errors.PermanentError` is not), so callers decide on types and on the Status's
``reason`` and ``causes``, never on message text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from functions.decisions import jsonvalue
from functions.errors import DrainerError, PermanentError, TransientError

MAX_MESSAGE = 500


@dataclass(frozen=True, kw_only=True)
class Cause:
    reason: str  # e.g. "DisruptionBudget", "NamespaceTerminating", "FieldValueInvalid"
    message: str
    field: str = ""


@dataclass(frozen=True, kw_only=True)
class ApiStatus:
    """A ``metav1.Status`` (or what stands for one when the server sent none)."""

    code: int  # HTTP status; 0 when no answer came (connection refused, timeout)
    reason: str = ""  # e.g. "NotFound", "Conflict", "TooManyRequests", "Forbidden"
    message: str = ""
    causes: tuple[Cause, ...] = ()

    @classmethod
    def from_body(cls, code: int, body: bytes | str | None) -> ApiStatus:
        """Parse the Status the API server sends with an error; a body that is not one is kept as the message."""
        if not body:
            return cls(code=code)
        try:
            data = jsonvalue.load(body, what="Status")
        except jsonvalue.JsonError:
            text = body if isinstance(body, str) else body.decode("utf-8", "replace")
            return cls(code=code, message=text[:MAX_MESSAGE])
        if not isinstance(data, Mapping):
            return cls(code=code, message=str(data)[:MAX_MESSAGE])
        details = jsonvalue.child(data, "details") or {}
        raw_causes = details.get("causes")
        causes = tuple(
            Cause(
                reason=str(c.get("reason") or c.get("type") or ""),
                message=str(c.get("message") or "")[:MAX_MESSAGE],
                field=str(c.get("field") or ""),
            )
            for c in (raw_causes if isinstance(raw_causes, list) else [])
            if isinstance(c, Mapping)
        )
        return cls(
            code=code,
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or "")[:MAX_MESSAGE],
            causes=causes,
        )

    def has_cause(self, reason: str) -> bool:
        return any(c.reason == reason for c in self.causes)

    def as_dict(self) -> dict[str, Any]:
        """For audit records."""
        return {
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
            "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes],
        }


class ApiError(DrainerError):
    """An answer of the API server that is not a success, with its Status and request."""

    def __init__(self, status: ApiStatus, *, request: str) -> None:
        self.status = status
        self.request = request  # "GET /api/v1/nodes/NAME"
        detail = " ".join(part for part in (str(status.code or ""), status.reason, status.message) if part)
        super().__init__(f"{request}: {detail or 'no answer'}")


class ApiUnavailable(ApiError, TransientError):
    """The API server could not be reached, timed out, or answered 5xx or 429."""


class ApiForbidden(ApiError, PermanentError):
    """401/403: the deployment's identity or ClusterRole does not allow the request (fix the deployment)."""


class ApiRejected(ApiError, PermanentError):
    """Another 4xx: the request is invalid and will stay so."""


class Conflict(ApiError):
    """409: the object changed under us (optimistic update) or a precondition no longer holds."""


class NotFound(ApiError):
    """404: the object does not exist."""


class ListExpired(ApiError, TransientError):
    """410 Gone: a continue token or resourceVersion is too old; list again from the start."""


def error_class(code: int) -> type[ApiError]:
    """The one place that maps a status code to an error class (and so to retry or not)."""
    if code == 404:
        return NotFound
    if code == 409:
        return Conflict
    if code == 410:
        return ListExpired
    if code in (401, 403):
        return ApiForbidden
    if code in {0, 429} or code >= 500:
        return ApiUnavailable
    return ApiRejected


def error_for(code: int, body: bytes | str | None, *, request: str) -> ApiError:
    status = ApiStatus.from_body(code, body)
    return error_class(code)(status, request=request)


def raise_for(code: int, body: bytes | str | None, *, request: str) -> NoReturn:
    raise error_for(code, body, request=request)


def unreachable(request: str, exc: BaseException) -> ApiUnavailable:
    """No answer at all: connection refused, reset, timed out, TLS failure."""
    return ApiUnavailable(ApiStatus(code=0, message=f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]), request=request)
