"""Settings from the environment: one table (:data:`SETTINGS`) drives loading and validation
(:func:`load`), the logged summary (:func:`summary`) and README's configuration table
(:func:`markdown_table`). The readers of one variable are :mod:`functions.decisions.settings_readers`;
the settings themselves :mod:`functions.decisions.settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from functions.decisions import settings_readers as readers
from functions.decisions.cleanup_policy import CleanupPolicy
from functions.decisions.logentry import EventKind
from functions.decisions.settings import (
    DEFAULT_API_TIMEOUT,
    DEFAULT_CLEANUP_BUDGET,
    DEFAULT_CLEANUP_CONCURRENCY,
    DEFAULT_CLEANUP_PAGE_SIZE,
    DEFAULT_COMPUTE_API,
    DEFAULT_CONTAINER_API,
    DEFAULT_DEADLINE,
    DEFAULT_DEADLINES,
    DEFAULT_EVICTION_CONCURRENCY,
    DEFAULT_FUNCTION_TIMEOUT,
    DEFAULT_MAX_EVENT_AGE,
    DEFAULT_OUTCOME_TYPE_PREFIX,
    DEFAULT_RECOVERY_DEADLINE,
    DEFAULT_STORM_SHARE,
    DEFAULT_STORM_WINDOW,
    FUNCTION_TIMEOUT_MARGIN,
    MAX_DEADLINE,
    MAX_TTL,
    ConfigError,
    Settings,
)
from functions.decisions.settings_readers import ENV_CLUSTERS, Setting

ENV_DEADLINE_PREFIX = "DRAINER_DEADLINE_"  # + kind in upper case, e.g. DRAINER_DEADLINE_PREEMPTED


def _deadline_rows() -> tuple[Setting, ...]:
    return tuple(
        Setting(
            env=ENV_DEADLINE_PREFIX + kind.value.upper(),
            target=f"deadlines.{kind.value}",
            read=readers.number,
            default=DEFAULT_DEADLINES[kind],
            low=1,
            high=MAX_DEADLINE,
            help=f"seconds one {kind.value} event may work on its node; keep below the function timeout",
        )
        for kind in EventKind
    )


SETTINGS: tuple[Setting, ...] = (
    *_deadline_rows(),
    Setting(
        env="DRAINER_DRY_RUN",
        target="dry_run",
        read=readers.boolean,
        default=False,
        help="plan and audit, change nothing",
    ),
    Setting(
        env="DRAINER_FORCE_CLEANUP",
        target="force_cleanup",
        read=readers.boolean,
        default=True,
        help="allow the fenced force-cleanup after preemption-like and host events",
    ),
    Setting(
        env="DRAINER_EVICTION_CONCURRENCY",
        target="eviction_concurrency",
        read=readers.integer,
        default=DEFAULT_EVICTION_CONCURRENCY,
        low=1,
        high=500,
        help="parallel evictions per drain",
    ),
    Setting(
        env="DRAINER_API_TIMEOUT_SECONDS",
        target="api_timeout",
        read=readers.number,
        default=DEFAULT_API_TIMEOUT,
        low=0.5,
        high=120,
        help="timeout of one Kubernetes API request",
    ),
    Setting(
        env="DRAINER_AUDIT_LOG_NAME",
        target="audit_log_name",
        read=readers.text,
        default=None,
        help="also write audit records to this log through the Logging API (batched, flushed after each event)",
    ),
    Setting(
        env="DRAINER_CONTAINER_API_ENDPOINT",
        target="container_api",
        read=readers.secure_url,
        default=DEFAULT_CONTAINER_API,
        help="Container API for endpoint discovery",
    ),
    Setting(
        env="DRAINER_COMPUTE_FENCE",
        target="compute_fence",
        read=readers.boolean,
        default=True,
        help="ask Compute Engine (`instances.get`, permission `compute.instances.get` only) whether a node's VM is "
        "off: the fast signal of the fence; false: only the Node rule (Ready Unknown) verifies a node down",
    ),
    Setting(
        env="DRAINER_COMPUTE_API_ENDPOINT",
        target="compute_api",
        read=readers.secure_url,
        default=DEFAULT_COMPUTE_API,
        help="Compute Engine API for the fence",
    ),
    Setting(
        env="DRAINER_OUT_OF_SERVICE_TAINT",
        target="out_of_service_taint",
        read=readers.boolean,
        default=True,
        help="once a node is verified down after a preemption-like or host event, taint it "
        "`node.kubernetes.io/out-of-service=nodeshutdown:NoExecute` so that its volumes are detached at once",
    ),
    Setting(
        env="DRAINER_MAX_EVENT_AGE_SECONDS",
        target="max_event_age",
        read=readers.number,
        default=DEFAULT_MAX_EVENT_AGE,
        low=60,
        high=MAX_TTL,
        help="an older event is acknowledged and audited `event.stale` without touching the node",
    ),
    Setting(
        env="DRAINER_FENCE_STORM_SHARE",
        target="storm_share",
        read=readers.number,
        default=DEFAULT_STORM_SHARE,
        low=0,
        high=1,
        help="when Compute Engine cannot answer and the Node rule is the only signal, at most this share of a "
        "cluster's nodes (at least 1) is fenced within the window; beyond it drains stay graceful (`fence.storm_held`)",
    ),
    Setting(
        env="DRAINER_FENCE_STORM_WINDOW_SECONDS",
        target="storm_window",
        read=readers.number,
        default=DEFAULT_STORM_WINDOW,
        low=60,
        high=86400,
        help="the window of the storm cap",
    ),
    Setting(
        env="DRAINER_LOGGING_API_ENDPOINT",
        target="logging_api",
        read=readers.text,
        default=None,
        shown_default="(library default)",
        help="another Logging API endpoint (tests, emulators)",
    ),
    Setting(
        env="DRAINER_JOB_TTL_SUCCEEDED_SECONDS",
        target="cleanup.ttl_succeeded",
        read=readers.seconds,
        default=CleanupPolicy.ttl_succeeded,
        low=0,
        high=MAX_TTL,
        help="age of a `Complete` Job before cleanup",
    ),
    Setting(
        env="DRAINER_JOB_TTL_FAILED_SECONDS",
        target="cleanup.ttl_failed",
        read=readers.seconds,
        default=CleanupPolicy.ttl_failed,
        low=0,
        high=MAX_TTL,
        help="age of a `Failed` Job before cleanup",
    ),
    Setting(
        env="DRAINER_ORPHAN_POD_TTL_SECONDS",
        target="cleanup.ttl_orphan_pods",
        read=readers.seconds,
        default=CleanupPolicy.ttl_orphan_pods,
        low=0,
        high=MAX_TTL,
        help="age of a finished pod whose Job is gone before it is swept",
    ),
    Setting(
        env="DRAINER_CLEANUP_NAMESPACES",
        target="cleanup.include_namespaces",
        read=readers.names,
        default=CleanupPolicy.include_namespaces,
        help="comma-separated namespaces to clean; empty means all. When set, the cleanup lists only these "
        "namespaces, one after another, instead of the whole cluster",
    ),
    Setting(
        env="DRAINER_CLEANUP_EXCLUDE_NAMESPACES",
        target="cleanup.exclude_namespaces",
        read=readers.names,
        default=CleanupPolicy.exclude_namespaces,
        help="namespaces never cleaned (wins over the include list)",
    ),
    Setting(
        env="DRAINER_CLEANUP_CRONJOB_JOBS",
        target="cleanup.include_cronjob_jobs",
        read=readers.boolean,
        default=CleanupPolicy.include_cronjob_jobs,
        help="also clean Jobs owned by CronJobs",
    ),
    Setting(
        env="DRAINER_CLEANUP_OTHER_PODS",
        target="cleanup.sweep_other_pods",
        read=readers.boolean,
        default=CleanupPolicy.sweep_other_pods,
        help="also sweep finished pods not owned by a Job",
    ),
    Setting(
        env="DRAINER_CLEANUP_BUDGET_SECONDS",
        target="cleanup_budget",
        read=readers.number,
        default=DEFAULT_CLEANUP_BUDGET,
        low=0.1,
        high=MAX_DEADLINE,
        help="a cleanup run stops taking work after this; keep below the function timeout",
    ),
    Setting(
        env="DRAINER_CLEANUP_CONCURRENCY",
        target="cleanup_concurrency",
        read=readers.integer,
        default=DEFAULT_CLEANUP_CONCURRENCY,
        low=1,
        high=500,
        help="parallel deletes",
    ),
    Setting(
        env="DRAINER_CLEANUP_PAGE_SIZE",
        target="cleanup_page_size",
        read=readers.integer,
        default=DEFAULT_CLEANUP_PAGE_SIZE,
        low=1,
        high=5000,
        help="list page size",
    ),
    Setting(
        env="DRAINER_RECOVERY_DEADLINE_SECONDS",
        target="recovery_deadline",
        read=readers.number,
        default=DEFAULT_RECOVERY_DEADLINE,
        low=1,
        high=MAX_DEADLINE,
        help="time one recovery force-cleanup may take",
    ),
    Setting(
        env="DRAINER_FUNCTION_TIMEOUT_SECONDS",
        target="function_timeout",
        read=readers.number,
        default=DEFAULT_FUNCTION_TIMEOUT,
        low=FUNCTION_TIMEOUT_MARGIN + 30,
        high=MAX_DEADLINE,
        help=f"the function's timeout (Terraform passes it); a call works at most this less "
        f"{FUNCTION_TIMEOUT_MARGIN:g} s, and a manual drain's `timeout_seconds` may not exceed that",
    ),
    Setting(
        env="DRAINER_HTTP_AUDIENCE",
        target="http_audience",
        read=readers.text,
        default=None,
        help="expected audience of callers' ID tokens (the function URL); unset: no token check",
    ),
    Setting(
        env="DRAINER_ALLOWED_CALLERS",
        target="allowed_callers",
        read=readers.emails,
        default=frozenset(),
        shown_default="(unset)",
        help="comma-separated caller emails allowed on the HTTP entry points",
    ),
    Setting(
        env="DRAINER_ID_TOKEN_CERTS_URL",
        target="id_token_certs_url",
        read=readers.text,
        default=None,
        shown_default="Google's",
        help="where the ID-token certificates are fetched (tests)",
    ),
    Setting(
        env="DRAINER_OUTCOME_TOPIC",
        target="outcome_topic",
        read=readers.topic,
        default=None,
        help="`projects/P/topics/T`: publish outcome events there; unset: none",
    ),
    Setting(
        env="DRAINER_OUTCOME_TYPE_PREFIX",
        target="outcome_type_prefix",
        read=readers.text,
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
    return Settings(clusters=readers.read_clusters(env), deadlines=deadlines, cleanup=CleanupPolicy(**cleanup), **top)


def summary(settings: Settings) -> dict[str, Any]:
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
            for c in settings.clusters
        ],
        "deadlines": {k.value: v for k, v in settings.deadlines.items()},
    }
    for row in SETTINGS:
        group, _, name = row.target.rpartition(".")
        if group == "deadlines":
            continue
        value = getattr(settings.cleanup, name) if group == "cleanup" else getattr(settings, name)
        (out.setdefault(group, {}) if group else out)[name] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, frozenset):
        return sorted(value)
    return value
