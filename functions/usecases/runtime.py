"""What every use case of one function instance shares: settings, cluster clients, the audit
context and the outcome publisher. Made at the first call (never at import)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from functions.decisions import settings_env
from functions.decisions.actions import Action, Severity
from functions.decisions.names import COMPONENT
from functions.decisions.settings import ClusterConfig, Settings
from functions.errors import Denied, DrainerError
from functions.gateways import audit as audit_log
from functions.gateways.audit import Audit
from functions.gateways.compute import ComputeClient
from functions.gateways.google_api import GoogleApiError
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.connection import ClusterSetupError
from functions.gateways.kube.errors import ApiError
from functions.gateways.kube.events import FLUSH_SECONDS, EventRecorder, reporting_instance
from functions.gateways.outcomes import OutcomePublisher

ClientFactory = Callable[[ClusterConfig], ClusterClient]
SETUP_BACKOFF_START = 30.0  # seconds before a cluster whose client could not be built is tried again
SETUP_BACKOFF_MAX = 600.0


@dataclass(frozen=True, kw_only=True)
class SetupFailure:
    """The last failure to build one cluster's client, and when to try again."""

    error: DrainerError
    failures: int
    retry_at: float  # time.monotonic()


def setup_backoff(failures: int) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: 30 s, doubling, at most 10 min."""
    return float(min(SETUP_BACKOFF_START * 2 ** max(failures - 1, 0), SETUP_BACKOFF_MAX))


def record_cluster_failure(audit: Audit, cluster: ClusterConfig, exc: Exception, *, doing: str) -> None:
    """Audit a cluster that could not be used: a cluster (or the Container API) that denies us is a
    deployment fault (ERROR, with what to fix); an unreachable one, or one whose client cannot be
    built, a WARNING."""
    fields: dict[str, object] = {"cluster": cluster.name, "error": str(exc)}
    severity = Severity.WARNING
    if isinstance(exc, Denied):
        severity = Severity.ERROR
        fields.update(status=exc.answer(), fix=exc.fix)
    audit.record(
        Action.CLUSTER_UNREACHABLE, f"cluster {cluster.name}: {doing} failed: {exc}", severity=severity, **fields
    )


class Runtime:
    def __init__(self, settings: Settings, *, client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self._client_factory = client_factory or (
            lambda c: ClusterClient(c, timeout=settings.api_timeout, container_api=settings.container_api)
        )
        self._clients: dict[str, ClusterClient] = {}
        self._setup_failures: dict[str, SetupFailure] = {}
        self._clients_lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic
        self._recorders: dict[str, EventRecorder] = {}
        self.instance = reporting_instance()  # reportingInstance of the Kubernetes Events
        self.audit = Audit({"component": COMPONENT})
        self.outcomes = OutcomePublisher(topic=settings.outcome_topic, type_prefix=settings.outcome_type_prefix)
        self.compute = (
            ComputeClient(base_url=settings.compute_api, timeout=min(5.0, settings.api_timeout))
            if settings.compute_fence
            else None
        )

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Runtime:
        settings = settings_env.load(env)
        audit_log.configure(log_name=settings.audit_log_name, api_endpoint=settings.logging_api)
        runtime = cls(settings)
        runtime.audit.record(
            Action.SERVICE_STARTED, f"{COMPONENT} instance started", settings=settings_env.summary(settings)
        )
        return runtime

    def client(self, cluster: ClusterConfig) -> ClusterClient:
        """The cluster's client, built at the first use. A cluster whose client could not be built
        is not tried again before its backoff (30 s doubling to 10 min) ends: until then the last
        error is raised again at once."""
        with self._clients_lock:
            existing = self._clients.get(cluster.name)
            if existing is not None:
                return existing
            failure = self._setup_failures.get(cluster.name)
            now = self.clock()
            if failure is not None and now < failure.retry_at:
                if isinstance(failure.error, ApiError | GoogleApiError):  # keeps its answer (and, denied, the fix)
                    raise failure.error
                raise ClusterSetupError(
                    f"{failure.error} (the client of cluster {cluster.name} is not rebuilt for another "
                    f"{failure.retry_at - now:.0f} s)"
                ) from failure.error
        try:
            made = self._client_factory(cluster)  # may discover the endpoint: outside the lock
        except DrainerError as exc:
            with self._clients_lock:
                failures = (failure.failures if failure is not None else 0) + 1
                self._setup_failures[cluster.name] = SetupFailure(
                    error=exc, failures=failures, retry_at=self.clock() + setup_backoff(failures)
                )
            raise
        with self._clients_lock:
            self._setup_failures.pop(cluster.name, None)
            return self._clients.setdefault(cluster.name, made)

    def events(self, cluster: ClusterConfig) -> EventRecorder:
        """The Kubernetes Event recorder of ``cluster``'s client (one per client, made on first use)."""
        client = self.client(cluster)
        with self._clients_lock:
            recorder = self._recorders.get(cluster.name)
            if recorder is None or recorder.client is not client:
                recorder = EventRecorder(client, audit=self.audit.bind(cluster=cluster.name), instance=self.instance)
                self._recorders[cluster.name] = recorder
            return recorder

    def finish(self) -> None:
        """Before a handler returns (the platform may freeze the instance): Kubernetes Events
        (bounded), outcomes, then audit."""
        with self._clients_lock:
            recorders = list(self._recorders.values())
        deadline = time.monotonic() + FLUSH_SECONDS
        for recorder in recorders:
            recorder.flush(max(0.0, deadline - time.monotonic()))
        self.outcomes.flush()
        audit_log.flush()
