"""The only place that talks to the Compute Engine API: ``instances.get`` of a node's VM, with the
function's own credentials (permission ``compute.instances.get`` only), through
:func:`~functions.gateways.google_api.get_json`.

Results are typed: a :class:`~functions.decisions.model.VmInstance`, or None when the VM does not
exist (404 with Google's notFound error; any other 404 is no answer). Refusals and failures raise
the :class:`~functions.gateways.google_api.GoogleApiError` family: ``GoogleDenied`` (401/403) or
``GoogleUnavailable`` (5xx, timeouts, no answer); the fence treats neither as "down".
"""

from __future__ import annotations

from urllib.parse import quote

from functions.decisions.model import VmInstance
from functions.decisions.times import parse_time
from functions.gateways.google_api import GoogleNotFound, GoogleStatus, GoogleUnavailable, get_json

PERMISSION = "compute.instances.get in the nodes' project"


class ComputeClient:
    def __init__(self, *, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")  # settings.compute_api (https://, or http:// on loopback)
        self.timeout = timeout

    def get_instance(self, *, project: str, zone: str, name: str) -> VmInstance | None:
        """The VM ``name``; None when it does not exist."""
        segments = [quote(part, safe="") for part in (project, zone, name)]
        url = "{}/compute/v1/projects/{}/zones/{}/instances/{}".format(self.base_url, *segments)
        try:
            body = get_json(url, timeout=self.timeout, permission=PERMISSION)
        except GoogleNotFound:
            return None
        if not isinstance(body.get("status"), str):
            raise GoogleUnavailable(GoogleStatus(code=200, message="the answer has no status"), request=f"GET {url}")
        return VmInstance(
            id=str(body.get("id", "")),
            name=str(body.get("name", "")),
            status=body["status"],
            last_start=parse_time(body.get("lastStartTimestamp")),
        )
