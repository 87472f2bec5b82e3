"""Settings from the environment, validated once (at the first use, never at import)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any

from functions.errors import DrainerError
from functions.events import EventKind
from functions.policy import CleanupPolicy

ENV_CLUSTERS = "DRAINER_CLUSTERS"
ENV_DRY_RUN = "DRAINER_DRY_RUN"
ENV_EVICTION_CONCURRENCY = "DRAINER_EVICTION_CONCURRENCY"
ENV_API_TIMEOUT = "DRAINER_API_TIMEOUT_SECONDS"
ENV_AUDIT_LOG_NAME = "DRAINER_AUDIT_LOG_NAME"
ENV_FORCE_CLEANUP = "DRAINER_FORCE_CLEANUP"
ENV_CONTAINER_API = "DRAINER_CONTAINER_API_ENDPOINT"
ENV_LOGGING_API = "DRAINER_LOGGING_API_ENDPOINT"
ENV_JOB_TTL_SUCCEEDED = "DRAINER_JOB_TTL_SUCCEEDED_SECONDS"
ENV_JOB_TTL_FAILED = "DRAINER_JOB_TTL_FAILED_SECONDS"
ENV_ORPHAN_POD_TTL = "DRAINER_ORPHAN_POD_TTL_SECONDS"
ENV_CLEANUP_NAMESPACES = "DRAINER_CLEANUP_NAMESPACES"
ENV_CLEANUP_EXCLUDE_NAMESPACES = "DRAINER_CLEANUP_EXCLUDE_NAMESPACES"
ENV_CLEANUP_CRONJOB_JOBS = "DRAINER_CLEANUP_CRONJOB_JOBS"
ENV_CLEANUP_OTHER_PODS = "DRAINER_CLEANUP_OTHER_PODS"
ENV_CLEANUP_BUDGET = "DRAINER_CLEANUP_BUDGET_SECONDS"
ENV_CLEANUP_CONCURRENCY = "DRAINER_CLEANUP_CONCURRENCY"
ENV_CLEANUP_PAGE_SIZE = "DRAINER_CLEANUP_PAGE_SIZE"
ENV_RECOVERY_DEADLINE = "DRAINER_RECOVERY_DEADLINE_SECONDS"
ENV_HTTP_AUDIENCE = "DRAINER_HTTP_AUDIENCE"
ENV_ALLOWED_CALLERS = "DRAINER_ALLOWED_CALLERS"
ENV_ID_TOKEN_CERTS_URL = "DRAINER_ID_TOKEN_CERTS_URL"
ENV_OUTCOME_TOPIC = "DRAINER_OUTCOME_TOPIC"
ENV_OUTCOME_TYPE_PREFIX = "DRAINER_OUTCOME_TYPE_PREFIX"
ENV_DEADLINE_PREFIX = "DRAINER_DEADLINE_"  # + kind in upper case, e.g. DRAINER_DEADLINE_PREEMPTED

# How long one event may keep working on its node. Preemption gives 30 s of notice and the node
# turns NotReady about 40 s after the VM stops, so the fenced force-cleanup needs well over a
# minute; a MIG delete gives the VM its shutdown period. All stay below the function timeout.
DEFAULT_DEADLINES: Mapping[EventKind, float] = {
    EventKind.PREEMPTED: 120.0,
    EventKind.RECREATE: 120.0,
    EventKind.DELETE: 120.0,
    EventKind.HOST_ERROR: 120.0,
    EventKind.GUEST_TERMINATE: 120.0,
    EventKind.AUTOMATIC_RESTART: 120.0,
    EventKind.TERMINATE_ON_HOST_MAINTENANCE: 120.0,
}
DEFAULT_EVICTION_CONCURRENCY = 32
DEFAULT_API_TIMEOUT = 10.0
DEFAULT_CONTAINER_API = "https://container.googleapis.com"
MAX_DEADLINE = 3600.0
MAX_TTL = 90 * 86400.0

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
_RESOURCE = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/clusters/(?P<name>[^/]+)$")


class ConfigError(DrainerError):
    """The deployment is misconfigured; the message names the variable and what to fix."""


class AuthMode(str, Enum):  # noqa: UP042 - the str mixin keeps json/str output plain
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
    logging_api: str | None = None  # another Logging API endpoint (tests, emulators)
    cleanup: CleanupPolicy = field(default_factory=CleanupPolicy)
    cleanup_budget: float = 300.0
    cleanup_concurrency: int = 32
    cleanup_page_size: int = 500
    recovery_deadline: float = 60.0
    http_audience: str | None = None  # when set, HTTP callers need a Google ID token for it
    allowed_callers: frozenset[str] = frozenset()  # when set, only these emails may call
    id_token_certs_url: str | None = None  # another certs endpoint for ID tokens (tests)
    outcome_topic: str | None = None  # projects/P/topics/T for outcome events; unset: none published
    outcome_type_prefix: str = "io.gke-node-drainer"

    def cluster(self, name: str) -> ClusterConfig | None:
        return next((c for c in self.clusters if c.name == name), None)

    def summary(self) -> dict[str, Any]:
        """What is logged at cold start: no secrets, no file contents."""
        return {
            "clusters": [
                {
                    "name": c.name,
                    "project": c.project,
                    "location": c.location,
                    "auth": c.auth.value,
                    "endpoint": c.endpoint or "container-api",
                }
                for c in self.clusters
            ],
            "deadlines": {k.value: v for k, v in self.deadlines.items()},
            "dry_run": self.dry_run,
            "eviction_concurrency": self.eviction_concurrency,
            "api_timeout": self.api_timeout,
            "audit_log_name": self.audit_log_name,
            "force_cleanup": self.force_cleanup,
            "cleanup": {
                "ttl_succeeded": self.cleanup.ttl_succeeded.total_seconds(),
                "ttl_failed": self.cleanup.ttl_failed.total_seconds(),
                "ttl_orphan_pods": self.cleanup.ttl_orphan_pods.total_seconds(),
                "include_namespaces": sorted(self.cleanup.include_namespaces),
                "exclude_namespaces": sorted(self.cleanup.exclude_namespaces),
                "include_cronjob_jobs": self.cleanup.include_cronjob_jobs,
                "sweep_other_pods": self.cleanup.sweep_other_pods,
                "budget_seconds": self.cleanup_budget,
            },
            "http_audience": self.http_audience,
            "allowed_callers": sorted(self.allowed_callers),
            "outcome_topic": self.outcome_topic,
        }


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range; use a value from {low:g} to {high:g}")
    return value


_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")


def _topic(env: Mapping[str, str]) -> str | None:
    raw = (env.get(ENV_OUTCOME_TOPIC) or "").strip()
    if not raw:
        return None
    if not _TOPIC.fullmatch(raw):
        raise ConfigError(f"{ENV_OUTCOME_TOPIC}={raw!r} is not projects/PROJECT/topics/TOPIC")
    return raw


def _names(env: Mapping[str, str], name: str, default: frozenset[str], *, lower: bool = False) -> frozenset[str]:
    """A comma-separated list; an empty value means an empty list (unset means the default)."""
    raw = env.get(name)
    if raw is None:
        return default
    items = [part.strip() for part in raw.split(",") if part.strip()]
    return frozenset(item.lower() if lower else item for item in items)


def _integer(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    value = _number(env, name, default, low=low, high=high)
    if value != int(value):
        raise ConfigError(f"{name}={env.get(name)!r} is not a whole number")
    return int(value)


def _cluster(raw: Any, index: int) -> ClusterConfig:
    where = f"{ENV_CLUSTERS}[{index}]"
    if isinstance(raw, str):
        match = _RESOURCE.fullmatch(raw.strip())
        if not match:
            raise ConfigError(f"{where}={raw!r} is not projects/PROJECT/locations/LOCATION/clusters/NAME")
        raw = {"name": match["name"], "project": match["project"], "location": match["location"]}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be an object or a cluster resource name")
    known = {
        "name",
        "project",
        "location",
        "auth",
        "endpoint",
        "ca_data",
        "ca_file",
        "token_file",
        "kubeconfig",
        "context",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; known keys are {sorted(known)}")
    for key in ("name", "project", "location"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where} needs a non-empty string {key!r}")
    for key in known - {"name", "project", "location"}:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ConfigError(f"{where}.{key} must be a string")
    for key in ("name", "project", "location"):
        if not _NAME.fullmatch(raw[key]):
            what = "cluster name" if key == "name" else key
            raise ConfigError(f"{where}.{key}={raw[key]!r} is not a valid {what}")
    try:
        auth = AuthMode(raw.get("auth", AuthMode.GOOGLE.value))
    except ValueError:
        raise ConfigError(f"{where}.auth={raw.get('auth')!r}; use one of {[m.value for m in AuthMode]}") from None
    endpoint = raw.get("endpoint")
    if endpoint is not None and not (isinstance(endpoint, str) and endpoint.startswith("https://")):
        raise ConfigError(f"{where}.endpoint={endpoint!r} must be an https:// URL")
    if auth is AuthMode.TOKEN_FILE and not raw.get("token_file"):
        raise ConfigError(f"{where}: auth token_file needs 'token_file' (a path to the bearer token)")
    if auth is AuthMode.TOKEN_FILE and not endpoint:
        raise ConfigError(f"{where}: auth token_file needs 'endpoint'")
    if auth is AuthMode.KUBECONFIG and not raw.get("kubeconfig"):
        raise ConfigError(f"{where}: auth kubeconfig needs 'kubeconfig' (a path)")
    if endpoint and not (raw.get("ca_data") or raw.get("ca_file")) and auth is not AuthMode.KUBECONFIG:
        raise ConfigError(f"{where}: an explicit endpoint needs 'ca_data' (PEM) or 'ca_file'")
    return ClusterConfig(
        name=raw["name"],
        project=raw["project"],
        location=raw["location"],
        auth=auth,
        endpoint=endpoint,
        ca_data=raw.get("ca_data"),
        ca_file=raw.get("ca_file"),
        token_file=raw.get("token_file"),
        kubeconfig=raw.get("kubeconfig"),
        context=raw.get("context"),
    )


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; ConfigError says what to fix."""
    env = os.environ if env is None else env
    raw = env.get(ENV_CLUSTERS, "").strip()
    if not raw:
        raise ConfigError(
            f"{ENV_CLUSTERS} is not set; give a JSON list of clusters or comma-separated "
            "projects/P/locations/L/clusters/N names"
        )
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{ENV_CLUSTERS} is not valid JSON: {exc}") from None
    else:
        items = [part for part in raw.split(",") if part.strip()]
    if not isinstance(items, list):
        raise ConfigError(f"{ENV_CLUSTERS} must be a JSON list")
    clusters = tuple(_cluster(item, i) for i, item in enumerate(items))
    if not clusters:
        raise ConfigError(f"{ENV_CLUSTERS} names no cluster; give at least one")
    names = [c.name for c in clusters]
    if len(set(names)) != len(names):
        raise ConfigError(f"{ENV_CLUSTERS} names a cluster twice: {names}")
    deadlines = {
        kind: _number(env, ENV_DEADLINE_PREFIX + kind.value.upper(), default, low=1, high=MAX_DEADLINE)
        for kind, default in DEFAULT_DEADLINES.items()
    }
    return Settings(
        clusters=clusters,
        deadlines=deadlines,
        dry_run=_bool(env, ENV_DRY_RUN, False),
        eviction_concurrency=_integer(env, ENV_EVICTION_CONCURRENCY, DEFAULT_EVICTION_CONCURRENCY, low=1, high=500),
        api_timeout=_number(env, ENV_API_TIMEOUT, DEFAULT_API_TIMEOUT, low=0.5, high=120),
        audit_log_name=env.get(ENV_AUDIT_LOG_NAME) or None,
        force_cleanup=_bool(env, ENV_FORCE_CLEANUP, True),
        container_api=env.get(ENV_CONTAINER_API) or DEFAULT_CONTAINER_API,
        logging_api=env.get(ENV_LOGGING_API) or None,
        cleanup=CleanupPolicy(
            ttl_succeeded=timedelta(seconds=_number(env, ENV_JOB_TTL_SUCCEEDED, 3600, low=0, high=MAX_TTL)),
            ttl_failed=timedelta(seconds=_number(env, ENV_JOB_TTL_FAILED, 86400, low=0, high=MAX_TTL)),
            ttl_orphan_pods=timedelta(seconds=_number(env, ENV_ORPHAN_POD_TTL, 3600, low=0, high=MAX_TTL)),
            include_namespaces=_names(env, ENV_CLEANUP_NAMESPACES, frozenset()),
            exclude_namespaces=_names(env, ENV_CLEANUP_EXCLUDE_NAMESPACES, frozenset({"kube-system"})),
            include_cronjob_jobs=_bool(env, ENV_CLEANUP_CRONJOB_JOBS, False),
            sweep_other_pods=_bool(env, ENV_CLEANUP_OTHER_PODS, False),
        ),
        cleanup_budget=_number(env, ENV_CLEANUP_BUDGET, 300, low=0.1, high=MAX_DEADLINE),
        cleanup_concurrency=_integer(env, ENV_CLEANUP_CONCURRENCY, 32, low=1, high=500),
        cleanup_page_size=_integer(env, ENV_CLEANUP_PAGE_SIZE, 500, low=1, high=5000),
        recovery_deadline=_number(env, ENV_RECOVERY_DEADLINE, 60, low=1, high=MAX_DEADLINE),
        http_audience=env.get(ENV_HTTP_AUDIENCE) or None,
        allowed_callers=_names(env, ENV_ALLOWED_CALLERS, frozenset(), lower=True),
        id_token_certs_url=env.get(ENV_ID_TOKEN_CERTS_URL) or None,
        outcome_topic=_topic(env),
        outcome_type_prefix=env.get(ENV_OUTCOME_TYPE_PREFIX) or "io.gke-node-drainer",
    )
