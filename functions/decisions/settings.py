"""Settings from the environment: one table (:data:`SETTINGS`) drives loading, validation, the
logged summary and README's configuration table. Read once, at the first use (never at import),
and never written back into the environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from functions.decisions.cleanup_policy import CleanupPolicy
from functions.decisions.logentry import EventKind
from functions.errors import DrainerError

ENV_CLUSTERS = "DRAINER_CLUSTERS"
ENV_DEADLINE_PREFIX = "DRAINER_DEADLINE_"  # + kind in upper case, e.g. DRAINER_DEADLINE_PREEMPTED

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

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
_RESOURCE = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/clusters/(?P<name>[^/]+)$")
_TOPIC = re.compile(r"projects/[^/]+/topics/[^/]+")


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

    def summary(self) -> dict[str, Any]:
        """What is logged at cold start, one entry per row of the table: no secrets, no file contents."""
        out: dict[str, Any] = {
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
        }
        for row in SETTINGS:
            group, _, name = row.target.rpartition(".")
            if group == "deadlines":
                continue
            value = getattr(self.cleanup, name) if group == "cleanup" else getattr(self, name)
            (out.setdefault(group, {}) if group else out)[name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, frozenset):
        return sorted(value)
    return value


# ------------------------------------------------------------------------------ the table
Reader = Callable[["Setting", Mapping[str, str]], Any]


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One environment variable: where its value goes, its type, default, range and help."""

    env: str
    target: str  # a Settings field, "cleanup.<CleanupPolicy field>" or "deadlines.<event kind>"
    read: Reader
    default: Any
    help: str
    low: float = 0
    high: float = 0
    shown_default: str | None = None  # README's default column when the value is not self-explanatory

    def value(self, env: Mapping[str, str]) -> Any:
        return self.read(self, env)

    @property
    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "(unset)"
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, frozenset):
            return ",".join(sorted(self.default)) or "(all)"
        if isinstance(self.default, timedelta):
            return f"{self.default.total_seconds():g}"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        return f"`{self.default}`" if isinstance(self.default, str) else str(self.default)


def _raw(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, stripped; None when unset or empty (a blank value is kept, and refused
    where it means nothing)."""
    raw = env.get(name)
    return None if raw is None or raw == "" else raw.strip()


def _bool(row: Setting, env: Mapping[str, str]) -> bool:
    raw = _raw(env, row.env)
    if raw is None:
        return bool(row.default)
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{row.env}={env.get(row.env)!r} is not a boolean; use true or false")


def _number(row: Setting, env: Mapping[str, str]) -> float:
    raw = _raw(env, row.env)
    if raw is None:
        return float(row.default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{row.env}={env.get(row.env)!r} is not a number") from None
    if not row.low <= value <= row.high:
        raise ConfigError(
            f"{row.env}={env.get(row.env)!r} is out of range; use a value from {row.low:g} to {row.high:g}"
        )
    return value


def _integer(row: Setting, env: Mapping[str, str]) -> int:
    value = _number(row, env)
    if value != int(value):
        raise ConfigError(f"{row.env}={env.get(row.env)!r} is not a whole number")
    return int(value)


def _seconds(row: Setting, env: Mapping[str, str]) -> timedelta:
    raw = _raw(env, row.env)
    if raw is None:
        return timedelta(seconds=float(row.default.total_seconds()))
    return timedelta(seconds=_number(row, env))


def _text(row: Setting, env: Mapping[str, str]) -> str | None:
    return _raw(env, row.env) or row.default


def _url(row: Setting, env: Mapping[str, str]) -> str | None:
    value = _text(row, env)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{row.env}={value!r} is not an http(s):// URL")
    return value


def _loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secure_url(row: Setting, env: Mapping[str, str]) -> str | None:
    """An https:// URL; http:// only on loopback (local fakes): the token it receives is real."""
    value = _url(row, env)
    if value is None or value.startswith("https://"):
        return value
    host = urlsplit(value).hostname or ""
    if host == "localhost" or _loopback_address(host):
        return value
    raise ConfigError(f"{row.env}={value!r} must be an https:// URL (http:// only on loopback, for local fakes)")


def _names(row: Setting, env: Mapping[str, str]) -> frozenset[str]:
    """A comma-separated list; an empty value means an empty list (unset means the default)."""
    raw = env.get(row.env)
    if raw is None:
        return frozenset(row.default)
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _emails(row: Setting, env: Mapping[str, str]) -> frozenset[str]:
    return frozenset(name.lower() for name in _names(row, env))


def _topic(row: Setting, env: Mapping[str, str]) -> str | None:
    raw = _raw(env, row.env)
    if raw is None:
        return None
    if not _TOPIC.fullmatch(raw):
        raise ConfigError(f"{row.env}={raw!r} is not projects/PROJECT/topics/TOPIC")
    return raw


def _deadline_rows() -> tuple[Setting, ...]:
    return tuple(
        Setting(
            env=ENV_DEADLINE_PREFIX + kind.value.upper(),
            target=f"deadlines.{kind.value}",
            read=_number,
            default=DEFAULT_DEADLINES[kind],
            low=1,
            high=MAX_DEADLINE,
            help=f"seconds one {kind.value} event may work on its node; keep below the function timeout",
        )
        for kind in EventKind
    )


SETTINGS: tuple[Setting, ...] = (
    *_deadline_rows(),
    Setting(env="DRAINER_DRY_RUN", target="dry_run", read=_bool, default=False, help="plan and audit, change nothing"),
    Setting(
        env="DRAINER_FORCE_CLEANUP",
        target="force_cleanup",
        read=_bool,
        default=True,
        help="allow the fenced force-cleanup after preemption-like and host events",
    ),
    Setting(
        env="DRAINER_EVICTION_CONCURRENCY",
        target="eviction_concurrency",
        read=_integer,
        default=DEFAULT_EVICTION_CONCURRENCY,
        low=1,
        high=500,
        help="parallel evictions per drain",
    ),
    Setting(
        env="DRAINER_API_TIMEOUT_SECONDS",
        target="api_timeout",
        read=_number,
        default=DEFAULT_API_TIMEOUT,
        low=0.5,
        high=120,
        help="timeout of one Kubernetes API request",
    ),
    Setting(
        env="DRAINER_AUDIT_LOG_NAME",
        target="audit_log_name",
        read=_text,
        default=None,
        help="also write audit records to this log through the Logging API (batched, flushed after each event)",
    ),
    Setting(
        env="DRAINER_CONTAINER_API_ENDPOINT",
        target="container_api",
        read=_secure_url,
        default=DEFAULT_CONTAINER_API,
        help="Container API for endpoint discovery",
    ),
    Setting(
        env="DRAINER_COMPUTE_FENCE",
        target="compute_fence",
        read=_bool,
        default=True,
        help="ask Compute Engine (`instances.get`, permission `compute.instances.get` only) whether a node's VM is "
        "off: the fast signal of the fence; false: only the Node rule (Ready Unknown) verifies a node down",
    ),
    Setting(
        env="DRAINER_COMPUTE_API_ENDPOINT",
        target="compute_api",
        read=_secure_url,
        default=DEFAULT_COMPUTE_API,
        help="Compute Engine API for the fence",
    ),
    Setting(
        env="DRAINER_OUT_OF_SERVICE_TAINT",
        target="out_of_service_taint",
        read=_bool,
        default=True,
        help="once a node is verified down after a preemption-like or host event, taint it "
        "`node.kubernetes.io/out-of-service=nodeshutdown:NoExecute` so that its volumes are detached at once",
    ),
    Setting(
        env="DRAINER_MAX_EVENT_AGE_SECONDS",
        target="max_event_age",
        read=_number,
        default=DEFAULT_MAX_EVENT_AGE,
        low=60,
        high=MAX_TTL,
        help="an older event is acknowledged and audited `event.stale` without touching the node",
    ),
    Setting(
        env="DRAINER_FENCE_STORM_SHARE",
        target="storm_share",
        read=_number,
        default=DEFAULT_STORM_SHARE,
        low=0,
        high=1,
        help="when Compute Engine cannot answer and the Node rule is the only signal, at most this share of a "
        "cluster's nodes (at least 1) is fenced within the window; beyond it drains stay graceful (`fence.storm_held`)",
    ),
    Setting(
        env="DRAINER_FENCE_STORM_WINDOW_SECONDS",
        target="storm_window",
        read=_number,
        default=DEFAULT_STORM_WINDOW,
        low=60,
        high=86400,
        help="the window of the storm cap",
    ),
    Setting(
        env="DRAINER_LOGGING_API_ENDPOINT",
        target="logging_api",
        read=_text,
        default=None,
        shown_default="(library default)",
        help="another Logging API endpoint (tests, emulators)",
    ),
    Setting(
        env="DRAINER_JOB_TTL_SUCCEEDED_SECONDS",
        target="cleanup.ttl_succeeded",
        read=_seconds,
        default=CleanupPolicy.ttl_succeeded,
        low=0,
        high=MAX_TTL,
        help="age of a `Complete` Job before cleanup",
    ),
    Setting(
        env="DRAINER_JOB_TTL_FAILED_SECONDS",
        target="cleanup.ttl_failed",
        read=_seconds,
        default=CleanupPolicy.ttl_failed,
        low=0,
        high=MAX_TTL,
        help="age of a `Failed` Job before cleanup",
    ),
    Setting(
        env="DRAINER_ORPHAN_POD_TTL_SECONDS",
        target="cleanup.ttl_orphan_pods",
        read=_seconds,
        default=CleanupPolicy.ttl_orphan_pods,
        low=0,
        high=MAX_TTL,
        help="age of a finished pod whose Job is gone before it is swept",
    ),
    Setting(
        env="DRAINER_CLEANUP_NAMESPACES",
        target="cleanup.include_namespaces",
        read=_names,
        default=CleanupPolicy.include_namespaces,
        help="comma-separated namespaces to clean; empty means all. When set, the cleanup lists only these "
        "namespaces, one after another, instead of the whole cluster",
    ),
    Setting(
        env="DRAINER_CLEANUP_EXCLUDE_NAMESPACES",
        target="cleanup.exclude_namespaces",
        read=_names,
        default=CleanupPolicy.exclude_namespaces,
        help="namespaces never cleaned (wins over the include list)",
    ),
    Setting(
        env="DRAINER_CLEANUP_CRONJOB_JOBS",
        target="cleanup.include_cronjob_jobs",
        read=_bool,
        default=CleanupPolicy.include_cronjob_jobs,
        help="also clean Jobs owned by CronJobs",
    ),
    Setting(
        env="DRAINER_CLEANUP_OTHER_PODS",
        target="cleanup.sweep_other_pods",
        read=_bool,
        default=CleanupPolicy.sweep_other_pods,
        help="also sweep finished pods not owned by a Job",
    ),
    Setting(
        env="DRAINER_CLEANUP_BUDGET_SECONDS",
        target="cleanup_budget",
        read=_number,
        default=DEFAULT_CLEANUP_BUDGET,
        low=0.1,
        high=MAX_DEADLINE,
        help="a cleanup run stops taking work after this; keep below the function timeout",
    ),
    Setting(
        env="DRAINER_CLEANUP_CONCURRENCY",
        target="cleanup_concurrency",
        read=_integer,
        default=DEFAULT_CLEANUP_CONCURRENCY,
        low=1,
        high=500,
        help="parallel deletes",
    ),
    Setting(
        env="DRAINER_CLEANUP_PAGE_SIZE",
        target="cleanup_page_size",
        read=_integer,
        default=DEFAULT_CLEANUP_PAGE_SIZE,
        low=1,
        high=5000,
        help="list page size",
    ),
    Setting(
        env="DRAINER_RECOVERY_DEADLINE_SECONDS",
        target="recovery_deadline",
        read=_number,
        default=DEFAULT_RECOVERY_DEADLINE,
        low=1,
        high=MAX_DEADLINE,
        help="time one recovery force-cleanup may take",
    ),
    Setting(
        env="DRAINER_FUNCTION_TIMEOUT_SECONDS",
        target="function_timeout",
        read=_number,
        default=DEFAULT_FUNCTION_TIMEOUT,
        low=FUNCTION_TIMEOUT_MARGIN + 30,
        high=MAX_DEADLINE,
        help=f"the function's timeout (Terraform passes it); a call works at most this less "
        f"{FUNCTION_TIMEOUT_MARGIN:g} s, and a manual drain's `timeout_seconds` may not exceed that",
    ),
    Setting(
        env="DRAINER_HTTP_AUDIENCE",
        target="http_audience",
        read=_text,
        default=None,
        help="expected audience of callers' ID tokens (the function URL); unset: no token check",
    ),
    Setting(
        env="DRAINER_ALLOWED_CALLERS",
        target="allowed_callers",
        read=_emails,
        default=frozenset(),
        shown_default="(unset)",
        help="comma-separated caller emails allowed on the HTTP entry points",
    ),
    Setting(
        env="DRAINER_ID_TOKEN_CERTS_URL",
        target="id_token_certs_url",
        read=_text,
        default=None,
        shown_default="Google's",
        help="where the ID-token certificates are fetched (tests)",
    ),
    Setting(
        env="DRAINER_OUTCOME_TOPIC",
        target="outcome_topic",
        read=_topic,
        default=None,
        help="`projects/P/topics/T`: publish outcome events there; unset: none",
    ),
    Setting(
        env="DRAINER_OUTCOME_TYPE_PREFIX",
        target="outcome_type_prefix",
        read=_text,
        default=DEFAULT_OUTCOME_TYPE_PREFIX,
        help="prefix of the outcome events' CloudEvents `type`",
    ),
)

CLUSTERS_HELP = (
    "JSON list of clusters, or comma-separated `projects/P/locations/L/clusters/N` names. Object keys: `name`, "
    "`project`, `location` (region or zone), `auth` (`google` default, `token_file`, `kubeconfig`), `endpoint` "
    "(`https://...`; absent: read from the Container API), `ca_data` (PEM or base64 PEM) or `ca_file`, "
    "`token_file`, `kubeconfig`, `context`"
)


def markdown_table() -> str:
    """README's configuration table, made from :data:`SETTINGS` (a test keeps README in step)."""
    lines = [
        "| variable | default | meaning |",
        "| --- | --- | --- |",
        f"| `{ENV_CLUSTERS}` | (required) | {CLUSTERS_HELP} |",
    ]
    deadlines = [row for row in SETTINGS if row.target.startswith("deadlines.")]
    kinds = ", ".join(f"`{row.env.removeprefix(ENV_DEADLINE_PREFIX)}`" for row in deadlines)
    lines.append(
        f"| `{ENV_DEADLINE_PREFIX}<KIND>` | {DEFAULT_DEADLINE:g} | seconds one event may work on its node, per kind "
        f"({kinds}); keep below the function timeout |"
    )
    lines += [f"| `{row.env}` | {row.default_text} | {row.help} |" for row in SETTINGS if row not in deadlines]
    return "\n".join(lines) + "\n"


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


def _clusters(env: Mapping[str, str]) -> tuple[ClusterConfig, ...]:
    raw = env.get(ENV_CLUSTERS, "").strip()
    if not raw:
        raise ConfigError(
            f"{ENV_CLUSTERS} is not set; give a JSON list of clusters or comma-separated "
            "projects/P/locations/L/clusters/N names"
        )
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except (ValueError, RecursionError) as exc:
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
    return clusters


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; ConfigError names the variable and what to fix."""
    env = os.environ if env is None else env
    top: dict[str, Any] = {}
    cleanup: dict[str, Any] = {}
    deadlines: dict[EventKind, float] = {}
    for row in SETTINGS:
        group, _, name = row.target.rpartition(".")
        value = row.value(env)
        if group == "deadlines":
            deadlines[EventKind(name)] = value
        elif group == "cleanup":
            cleanup[name] = value
        else:
            top[name] = value
    if top["allowed_callers"] and not top["http_audience"]:
        raise ConfigError(
            "DRAINER_ALLOWED_CALLERS is set but DRAINER_HTTP_AUDIENCE is not: without an audience no ID token is "
            "checked, so the allow-list could not be enforced; set DRAINER_HTTP_AUDIENCE to the function's URL"
        )
    return Settings(clusters=_clusters(env), deadlines=deadlines, cleanup=CleanupPolicy(**cleanup), **top)
