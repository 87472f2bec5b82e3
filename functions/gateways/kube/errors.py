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
from functions.errors import Denied, DrainerError, PermanentError, TransientError

MAX_MESSAGE = 500
CLUSTER_ROLE = "gke-node-drainer"  # the ClusterRole of terraform/rbac/drainer-rbac.yaml
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


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


class ApiForbidden(ApiError, Denied):
    """401/403: the deployment's identity or ClusterRole does not allow the request (a
    :class:`~functions.errors.Denied`: retried while someone fixes what :attr:`fix` names)."""

    @property
    def fix(self) -> str:
        """What to check, naming the Kubernetes verb and resource that were denied."""
        verb = rbac_verb(self.request)
        if self.status.code == 401:
            return (
                f"the API server did not accept the function's credentials ({verb}): check the cluster's "
                "authentication (Google identity, token file or kubeconfig) for this function"
            )
        return (
            f"the API server refused to {verb}: check that the ClusterRole {CLUSTER_ROLE} grants it and that its "
            "ClusterRoleBinding names the function's identity (terraform/rbac/drainer-rbac.yaml)"
        )

    def answer(self) -> dict[str, Any]:
        return self.status.as_dict()


class ApiRejected(ApiError, PermanentError):
    """Another 4xx: the request is invalid and will stay so."""


class Conflict(ApiError):
    """409: the object changed under us (optimistic update) or a precondition no longer holds."""


class NotFound(ApiError):
    """404: the object does not exist."""


class ListExpired(ApiError, TransientError):
    """410 Gone: a continue token or resourceVersion is too old; list again from the start."""


def rbac_verb(request: str) -> str:
    """The RBAC verb and resource of a request such as "GET /api/v1/nodes/n1" -> "get nodes"
    (pure; a request it cannot read is returned as it is)."""
    method, _, target = request.partition(" ")
    path, _, query = target.partition("?")
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return request
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]  # namespaces/NS/<resource>...; "namespaces/NS" alone is the namespace itself
    if not rest:
        return request
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    if method == "watch":
        verb = "watch"
    elif method == "GET":
        verb = "watch" if "watch=true" in query or "watch=1" in query else ("get" if named else "list")
    else:
        verb = _VERBS.get(method, method.lower())
        if verb == "delete" and not named:
            verb = "deletecollection"
    return f"{verb} {resource}" + (f" (API group {group})" if group else "")


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
