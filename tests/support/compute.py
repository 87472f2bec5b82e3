"""A fake Compute Engine API (``instances.get`` only) on loopback, for the fencing rule.

    GET {url}/compute/v1/projects/{project}/zones/{zone}/instances/{name}

answers like compute.googleapis.com: the instance as JSON (``id`` a decimal string, ``name``,
``status``, ``lastStartTimestamp``, ...), or Google's error shape with 404 (no such instance),
403 or 500. ``url`` is the endpoint root, what ``DRAINER_COMPUTE_API_ENDPOINT`` carries (the
real one is ``https://compute.googleapis.com``).

Tests set each instance's state (``set_instance``, ``set_status``, ``delete`` -> 404, ``replace``
-> a new id and boot), make it answer an error or slowly (``fail``, ``slow``), and read
``requests`` (method, path, Authorization header) to check what was asked and as whom.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.fakes import JsonApi

DEFAULT_PROJECT = "acme-prod"
DEFAULT_ZONE = "europe-west4-b"
# instances.get's status values; only TERMINATED and STOPPED mean "down" to the fencing rule
STATUSES = (
    "PROVISIONING",
    "STAGING",
    "RUNNING",
    "STOPPING",
    "STOPPED",
    "SUSPENDING",
    "SUSPENDED",
    "REPAIRING",
    "TERMINATED",
    "PENDING_STOP",
)
_ERROR_REASONS = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound", 429: "rateLimitExceeded"}


def timestamp(moment: datetime | None = None) -> str:
    """Compute Engine's RFC 3339 timestamps: milliseconds and an explicit offset."""
    return (moment or datetime.now(UTC)).isoformat(timespec="milliseconds")


def new_instance_id() -> str:
    return str(secrets.randbelow(10**18) + 10**18)


@dataclass
class Instance:
    project: str
    zone: str
    name: str
    id: str
    status: str = "RUNNING"
    last_start: str = field(default_factory=timestamp)
    last_stop: str | None = None
    created: str = field(default_factory=timestamp)

    @property
    def path(self) -> str:
        return f"projects/{self.project}/zones/{self.zone}/instances/{self.name}"

    def resource(self) -> dict[str, Any]:
        base = "https://www.googleapis.com/compute/v1"
        body: dict[str, Any] = {
            "kind": "compute#instance",
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "zone": f"{base}/projects/{self.project}/zones/{self.zone}",
            "selfLink": f"{base}/{self.path}",
            "creationTimestamp": self.created,
            "lastStartTimestamp": self.last_start,
            "machineType": f"{base}/projects/{self.project}/zones/{self.zone}/machineTypes/e2-standard-8",
            "scheduling": {"provisioningModel": "SPOT", "preemptible": True},
        }
        if self.last_stop:
            body["lastStopTimestamp"] = self.last_stop
        return body


@dataclass(frozen=True)
class ComputeRequest:
    method: str
    path: str
    authorization: str
    at: float  # time.monotonic() when it arrived

    @property
    def instance(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class _Fault:
    status: int | None = None  # answer this error ...
    delay: float = 0.0  # ... or answer (whatever it is) this much later
    times: int | None = None  # for this many requests (None: until cleared)
    bare: bool = False  # the error without Google's error body (a proxy's or a wrong endpoint's answer)


class FakeComputeApi(JsonApi):
    def __init__(self, *, project: str = DEFAULT_PROJECT) -> None:
        self.project = project
        self._instances: dict[tuple[str, str, str], Instance] = {}
        self._faults: dict[str, _Fault] = {}  # by instance name
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[ComputeRequest] = []
        super().__init__(self._route)

    # ------------------------------------------------------------- state
    def set_instance(
        self,
        name: str,
        *,
        instance_id: str | None = None,
        zone: str = DEFAULT_ZONE,
        project: str | None = None,
        status: str = "RUNNING",
        last_start: datetime | None = None,
    ) -> Instance:
        """Create or overwrite the instance; returns it."""
        if status not in STATUSES:
            raise ValueError(f"unknown instance status {status!r}")
        instance = Instance(
            project=project or self.project,
            zone=zone,
            name=name,
            id=instance_id or new_instance_id(),
            status=status,
            last_start=timestamp(last_start),
        )
        with self._lock:
            self._instances[(instance.project, zone, name)] = instance
        return instance

    def add_node(self, node: Any, *, status: str = "RUNNING") -> Instance:
        """The VM of a ``TestCluster`` node (anything with name, zone, project, instance_id)."""
        return self.set_instance(
            node.name, instance_id=node.instance_id, zone=node.zone, project=node.project, status=status
        )

    def _find(self, name: str) -> Instance:
        with self._lock:
            found = [i for (_, _, n), i in self._instances.items() if n == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} instances named {name}")
        return found[0]

    def instance(self, name: str) -> Instance:
        return self._find(name)

    def set_status(self, name: str, status: str) -> Instance:
        """E.g. STOPPING, then TERMINATED as a preempted VM goes; RUNNING again with a new start."""
        if status not in STATUSES:
            raise ValueError(f"unknown instance status {status!r}")
        instance = self._find(name)
        with self._lock:
            if status in ("STOPPED", "TERMINATED", "SUSPENDED") and instance.status not in (
                "STOPPED",
                "TERMINATED",
                "SUSPENDED",
            ):
                instance.last_stop = timestamp()
            if status == "RUNNING" and instance.status != "RUNNING":
                instance.last_start = timestamp()
            instance.status = status
        return instance

    def delete(self, name: str) -> None:
        """The VM is gone: instances.get answers 404."""
        instance = self._find(name)
        with self._lock:
            self._instances.pop((instance.project, instance.zone, instance.name), None)

    def replace(self, name: str, *, instance_id: str | None = None, status: str = "RUNNING") -> Instance:
        """The MIG (or auto-repair) recreated the VM under the same name: a new id and start time."""
        old = self._find(name)
        return self.set_instance(
            name, instance_id=instance_id or new_instance_id(), zone=old.zone, project=old.project, status=status
        )

    def fail(self, name: str, status: int = 500, *, times: int | None = None, bare: bool = False) -> None:
        """Answer ``status`` (403, 500, ...) for this instance, ``times`` times or until ``clear``;
        ``bare``: without Google's error body (a 404 from a proxy or a wrong endpoint)."""
        with self._lock:
            self._faults[name] = _Fault(status=status, times=times, bare=bare)

    def slow(self, name: str, seconds: float, *, times: int | None = None) -> None:
        """Answer requests for this instance ``seconds`` late (a timeout test's hung API)."""
        with self._lock:
            self._faults[name] = _Fault(delay=seconds, times=times)

    def clear(self, name: str) -> None:
        with self._lock:
            self._faults.pop(name, None)

    def requests_for(self, name: str) -> list[ComputeRequest]:
        with self._lock:
            return [r for r in self.requests if r.instance == name]

    def stop(self) -> None:
        self._closing.set()  # release slow answers
        super().stop()

    # ------------------------------------------------------------- HTTP
    def _route(self, method: str, path: str, headers: Mapping[str, str], body: Any) -> tuple[int, Any]:
        request = ComputeRequest(method, path, headers.get("Authorization", ""), time.monotonic())
        with self._lock:
            self.requests.append(request)
        parts = path.strip("/").split("/")
        # compute / v1 / projects / P / zones / Z / instances / NAME
        if len(parts) != 8 or parts[:3] != ["compute", "v1", "projects"] or parts[4] != "zones":
            return _error(404, f"Not found: {path}")
        if parts[6] != "instances" or method != "GET":
            return _error(405 if parts[6] == "instances" else 404, f"{method} {path} is not faked")
        project, zone, name = parts[3], parts[5], parts[7]
        fault = self._take_fault(name)
        if fault is not None and fault.delay:
            self._closing.wait(fault.delay)
        if fault is not None and fault.status is not None and fault.bare:
            return fault.status, f"{fault.status} page not found"
        if fault is not None and fault.status is not None:
            message = (
                f"Required 'compute.instances.get' permission for 'projects/{project}/zones/{zone}/instances/{name}'"
                if fault.status == 403
                else "Internal error. Please try again or contact Google Support."
            )
            return _error(fault.status, message)
        if not headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "Request is missing required authentication credential.")
        with self._lock:
            instance = self._instances.get((project, zone, name))
            answer = instance.resource() if instance else None
        if answer is None:
            return _error(404, f"The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found")
        return 200, answer

    def _take_fault(self, name: str) -> _Fault | None:
        with self._lock:
            fault = self._faults.get(name)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(name, None)
            return _Fault(status=fault.status, delay=fault.delay, bare=fault.bare)


def _error(status: int, message: str) -> tuple[int, Any]:
    reason = _ERROR_REASONS.get(status, "backendError")
    return status, {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
