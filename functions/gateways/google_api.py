"""One authenticated GET of a Google REST API, with one error family for every answer but a success.

The Container API (``clusters.get``) and Compute Engine (``instances.get``) gateways sit on
:func:`get_json`. It asks as the function's own Google identity (:mod:`.google_identity`), with a
timeout, and raises a :class:`GoogleApiError` that keeps Google's error (code, status, message,
reasons), as :mod:`functions.gateways.kube.errors` keeps the Kubernetes Status:

- :class:`GoogleDenied`: 401/403, a deployment fault (retried; :attr:`~GoogleDenied.fix` names the
  permission to grant);
- :class:`GoogleNotFound`: 404 with Google's error body (``{"error": {"code": 404, "errors":
  [{"reason": "notFound"}]}}`` or ``"status": "NOT_FOUND"``): the resource does not exist;
- :class:`GoogleUnavailable`: anything else, which says nothing about the resource: 5xx, 429, a
  404 without Google's body (a proxy, a wrong endpoint), another status, a timeout, no answer, an
  answer that is not a JSON object (retried).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.errors import Denied, DrainerError, TransientError
from functions.gateways.google_identity import GoogleIdentity

MAX_MESSAGE = 500


@dataclass(frozen=True, kw_only=True)
class GoogleStatus:
    """Google's error object (``{"error": {...}}``), or what stands for one when none came."""

    code: int  # HTTP status; 0 when no answer came (timeout, refused, no token)
    status: str = ""  # e.g. "PERMISSION_DENIED", "NOT_FOUND", "UNAVAILABLE"
    message: str = ""
    reasons: tuple[str, ...] = ()  # the reasons of ``error.errors[]``, e.g. "notFound", "forbidden"

    @classmethod
    def from_body(cls, code: int, body: Any) -> GoogleStatus:
        """Read Google's error from a parsed answer; a body that is not one keeps only the code."""
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            return cls(code=code)
        errors = error.get("errors")
        reasons = tuple(
            str(e["reason"])
            for e in (errors if isinstance(errors, list) else [])
            if isinstance(e, Mapping) and e.get("reason")
        )
        return cls(
            code=code,
            status=str(error.get("status") or ""),
            message=str(error.get("message") or "")[:MAX_MESSAGE],
            reasons=reasons,
        )

    def as_dict(self) -> dict[str, Any]:
        """For audit records."""
        return {"code": self.code, "status": self.status, "message": self.message, "reasons": list(self.reasons)}


class GoogleApiError(DrainerError):
    """A Google API answered something other than the resource, or did not answer."""

    def __init__(self, status: GoogleStatus, *, request: str) -> None:
        self.status = status
        self.request = request  # "GET https://compute.googleapis.com/compute/v1/projects/..."
        detail = " ".join(part for part in (str(status.code or ""), status.status, status.message) if part)
        super().__init__(f"{request}: {detail or 'no answer'}")

    @property
    def code(self) -> int:
        """The HTTP status; 0 when no answer came."""
        return self.status.code


class GoogleUnavailable(GoogleApiError, TransientError):
    """No usable answer: 5xx, 429, a 404 without Google's error body, another status, a timeout, no
    answer or one that is not a JSON object. Says nothing about the resource."""


class GoogleDenied(GoogleApiError, Denied):
    """401/403: the function's service account lacks :attr:`permission`."""

    def __init__(self, status: GoogleStatus, *, request: str, permission: str) -> None:
        super().__init__(status, request=request)
        self.permission = permission

    @property
    def fix(self) -> str:
        return f"Google refused {self.request}: grant the function's service account {self.permission}"

    def answer(self) -> dict[str, Any]:
        return self.status.as_dict()


class GoogleNotFound(GoogleApiError):
    """404 with Google's error body: the resource does not exist."""


def _google_not_found(body: Any) -> bool:
    """Whether a 404's body is Google's error for a missing resource."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping) or error.get("code") != 404:
        return False
    status = GoogleStatus.from_body(404, body)
    return "notFound" in status.reasons or status.status == "NOT_FOUND"


def get_json(url: str, *, timeout: float, permission: str) -> dict[str, Any]:
    """GET ``url`` as the function's Google identity: the JSON object of a 200 answer, or a
    :class:`GoogleApiError` (``permission``, what the call needs, goes into a denial's fix)."""
    request = f"GET {url}"
    try:
        response = GoogleIdentity.session().get(url, timeout=timeout)
    except DrainerError as exc:  # no token (TokenUnavailable)
        raise GoogleUnavailable(GoogleStatus(code=0, message=str(exc)[:MAX_MESSAGE]), request=request) from None
    except Exception as exc:  # requests/google-auth transport errors: timeouts, refused, TLS
        raise GoogleUnavailable(GoogleStatus(code=0, message=type(exc).__name__), request=request) from None
    code = response.status_code
    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError
        body = None
    if code == 200:
        if not isinstance(body, dict):
            raise GoogleUnavailable(GoogleStatus(code=code, message="the answer is not a JSON object"), request=request)
        return body
    status = GoogleStatus.from_body(code, body)
    if code in (401, 403):
        raise GoogleDenied(status, request=request, permission=permission)
    if code == 404 and _google_not_found(body):
        raise GoogleNotFound(status, request=request)
    # 5xx, 429, a 404 without Google's error (a proxy's or a wrong endpoint's): no answer about the resource
    raise GoogleUnavailable(status, request=request)
