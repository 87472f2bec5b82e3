"""The only place that talks to the Compute Engine API: ``instances.get`` of a node's VM, with the
function's own credentials (permission ``compute.instances.get`` only).

Results are typed: a :class:`~functions.decisions.model.VmInstance`, or None when the VM does not
exist (404 with Google's notFound error; any other 404 is no answer). Refusals and failures raise
:class:`ComputeDenied` (401/403) or :class:`ComputeUnavailable` (5xx, timeouts, no answer); the fence
treats neither as "down".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from functions.decisions.model import VmInstance
from functions.decisions.times import parse_time
from functions.errors import DrainerError
from functions.gateways.google_identity import GoogleIdentity

DEFAULT_COMPUTE_API = "https://compute.googleapis.com"


class ComputeError(DrainerError):
    """Compute Engine did not say what the VM's state is."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code  # HTTP status; 0 when no answer came


class ComputeDenied(ComputeError):
    """401/403: the identity lacks compute.instances.get in that project."""


class ComputeUnavailable(ComputeError):
    """5xx, 429, a timeout or no answer."""


def _google_not_found(response: Any) -> bool:
    """Whether a 404 carries Google's error for a missing resource:
    ``{"error": {"code": 404, "errors": [{"reason": "notFound", ...}], ...}}``."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("code") != 404:
        return False
    errors = error.get("errors")
    reasons = [e.get("reason") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    return "notFound" in reasons or error.get("status") == "NOT_FOUND"


class ComputeClient:
    def __init__(self, *, base_url: str = DEFAULT_COMPUTE_API, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def get_instance(self, *, project: str, zone: str, name: str) -> VmInstance | None:
        """The VM ``name``; None when it does not exist."""
        segments = [quote(part, safe="") for part in (project, zone, name)]
        url = "{}/compute/v1/projects/{}/zones/{}/instances/{}".format(self.base_url, *segments)
        try:
            response = GoogleIdentity.session().get(url, timeout=self.timeout)
        except DrainerError as exc:  # no token
            raise ComputeUnavailable(f"instances.get {name}: {exc}", code=0) from None
        except Exception as exc:  # requests/google-auth transport errors
            raise ComputeUnavailable(f"instances.get {name}: {type(exc).__name__}", code=0) from None
        code = response.status_code
        if code == 404:
            if _google_not_found(response):
                return None
            # a 404 without Google's error body (a proxy, a wrong endpoint) says nothing about the VM
            raise ComputeUnavailable(f"instances.get {name} answered 404 without Google's notFound error", code=code)
        if code in (401, 403):
            raise ComputeDenied(
                f"instances.get {project}/{zone}/{name} answered {code}: grant compute.instances.get", code=code
            )
        if code != 200:
            raise ComputeUnavailable(f"instances.get {name} answered {code}", code=code)
        try:
            body = response.json()
        except ValueError:
            raise ComputeUnavailable(f"instances.get {name}: the answer is not JSON", code=code) from None
        if not isinstance(body, dict) or not isinstance(body.get("status"), str):
            raise ComputeUnavailable(f"instances.get {name}: the answer has no status", code=code)
        return VmInstance(
            id=str(body.get("id", "")),
            name=str(body.get("name", "")),
            status=body["status"],
            last_start=parse_time(body.get("lastStartTimestamp")),
        )
