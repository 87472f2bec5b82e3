"""The deployment's settings: :class:`Settings` and the clusters it names (:class:`ClusterConfig`),
with their defaults and limits. Read from the environment by :func:`functions.decisions.settings_env.load`
(once, at the first use, never at import, and never written back into the environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from functions.decisions.cleanup_policy import CleanupPolicy
from functions.decisions.logentry import EventKind
from functions.errors import DrainerError

DEFAULT_DEADLINE = 120.0
DEFAULT_EVICTION_CONCURRENCY = 32
DEFAULT_API_TIMEOUT = 10.0
DEFAULT_CONTAINER_API = "https://container.googleapis.com"
DEFAULT_COMPUTE_API = "https://compute.googleapis.com"
DEFAULT_MAX_EVENT_AGE = 7200.0
DEFAULT_STORM_SHARE = 0.10  # of a cluster's nodes fenced by the Node rule alone within the window
DEFAULT_STORM_WINDOW = 600.0
DEFAULT_OUTCOME_TYPE_PREFIX = "io.gke-node-drainer"
DEFAULT_CLEANUP_BUDGET = 300.0
DEFAULT_CLEANUP_CONCURRENCY = 32
DEFAULT_CLEANUP_PAGE_SIZE = 500
DEFAULT_RECOVERY_DEADLINE = 60.0
DEFAULT_FUNCTION_TIMEOUT = 540.0  # Cloud Functions' longest timeout of an event-driven function
FUNCTION_TIMEOUT_MARGIN = 30.0  # kept free at the end of a call: final audit records, outcome events, flushes
MAX_DEADLINE = 3600.0
MAX_TTL = 90 * 86400.0

# How long one event may keep working on its node. Preemption gives 30 s of notice and the node
# turns NotReady about 50 s after the VM stops, so the fenced force-cleanup needs well over a
# minute; a MIG delete gives the VM its shutdown period. All stay below the function timeout.
DEFAULT_DEADLINES: Mapping[EventKind, float] = dict.fromkeys(EventKind, DEFAULT_DEADLINE)


class ConfigError(DrainerError):
    """The deployment is misconfigured; the message names the variable and what to fix."""


class AuthMode(StrEnum):
    GOOGLE = "google"  # application-default credentials, short-lived tokens
    TOKEN_FILE = "token_file"  # a static bearer token read from a file
    KUBECONFIG = "kubeconfig"  # a kubeconfig file (local runs)


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    name: str
    project: str
    location: str  # a region (regional cluster) or a zone (zonal cluster)
    auth: AuthMode = AuthMode.GOOGLE
    endpoint: str | None = None  # https://...; when absent, read from the Container API
    ca_data: str | None = field(default=None, repr=False)  # PEM; when absent with an endpoint, ca_file
    ca_file: str | None = None
    token_file: str | None = None
    kubeconfig: str | None = None
    context: str | None = None

    @property
    def region(self) -> str:
        return region_of(self.location)

    @property
    def resource_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/clusters/{self.name}"

    def may_own(self, *, project: str, zone: str) -> bool:
        """Whether an instance in ``project``/``zone`` can be a node of this cluster."""
        return project == self.project and region_of(zone) == self.region


def region_of(location: str) -> str:
    """europe-west4-b -> europe-west4; a region is returned as it is."""
    parts = location.split("-")
    if len(parts) == 3 and len(parts[2]) == 1:
        return "-".join(parts[:2])
    return location


@dataclass(frozen=True, kw_only=True)
class Settings:
    clusters: tuple[ClusterConfig, ...]
    deadlines: Mapping[EventKind, float]
    dry_run: bool = False
    eviction_concurrency: int = DEFAULT_EVICTION_CONCURRENCY
    api_timeout: float = DEFAULT_API_TIMEOUT
    audit_log_name: str | None = None
    force_cleanup: bool = True
    container_api: str = DEFAULT_CONTAINER_API
    compute_fence: bool = True  # ask Compute Engine (instances.get) whether the VM is off
    compute_api: str = DEFAULT_COMPUTE_API
    out_of_service_taint: bool = True  # taint a node verified down before the force-cleanup
    max_event_age: float = DEFAULT_MAX_EVENT_AGE
    storm_share: float = DEFAULT_STORM_SHARE
    storm_window: float = DEFAULT_STORM_WINDOW
    logging_api: str | None = None  # another Logging API endpoint (tests, emulators)
    cleanup: CleanupPolicy = field(default_factory=CleanupPolicy)
    cleanup_budget: float = DEFAULT_CLEANUP_BUDGET
    cleanup_concurrency: int = DEFAULT_CLEANUP_CONCURRENCY
    cleanup_page_size: int = DEFAULT_CLEANUP_PAGE_SIZE
    recovery_deadline: float = DEFAULT_RECOVERY_DEADLINE
    http_audience: str | None = None  # when set, HTTP callers need a Google ID token for it
    allowed_callers: frozenset[str] = frozenset()  # when set, only these emails may call
    id_token_certs_url: str | None = None  # another certs endpoint for ID tokens (tests)
    outcome_topic: str | None = None  # projects/P/topics/T for outcome events; unset: none published
    outcome_type_prefix: str = DEFAULT_OUTCOME_TYPE_PREFIX
    function_timeout: float = DEFAULT_FUNCTION_TIMEOUT

    @property
    def work_limit(self) -> float:
        """Seconds one call may spend working: the function's timeout less a safety margin, so that
        its last records are written before the platform stops it."""
        return self.function_timeout - FUNCTION_TIMEOUT_MARGIN

    def cluster(self, name: str) -> ClusterConfig | None:
        return next((c for c in self.clusters if c.name == name), None)
