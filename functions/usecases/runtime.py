"""What every use case of one function instance shares: settings, cluster clients, the audit
context and the outcome publisher. Made at the first call (never at import)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from functions.decisions import settings as settings_module
from functions.decisions.actions import Action
from functions.decisions.names import COMPONENT
from functions.decisions.settings import ClusterConfig, Settings
from functions.gateways import audit as audit_log
from functions.gateways.audit import Audit
from functions.gateways.kube.client import ClusterClient
from functions.gateways.kube.events import FLUSH_SECONDS, EventRecorder, reporting_instance
from functions.gateways.outcomes import OutcomePublisher

ClientFactory = Callable[[ClusterConfig], ClusterClient]


class Runtime:
    def __init__(self, settings: Settings, *, client_factory: ClientFactory | None = None) -> None:
        self.settings = settings
        self._client_factory = client_factory or (
            lambda c: ClusterClient(c, timeout=settings.api_timeout, container_api=settings.container_api)
        )
        self._clients: dict[str, ClusterClient] = {}
        self._clients_lock = threading.Lock()
        self._recorders: dict[str, EventRecorder] = {}
        self.instance = reporting_instance()  # reportingInstance of the Kubernetes Events
        self.audit = Audit({"component": COMPONENT})
        self.outcomes = OutcomePublisher(topic=settings.outcome_topic, type_prefix=settings.outcome_type_prefix)

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Runtime:
        settings = settings_module.load(env)
        audit_log.configure(log_name=settings.audit_log_name, api_endpoint=settings.logging_api)
        runtime = cls(settings)
        runtime.audit.record(Action.SERVICE_STARTED, f"{COMPONENT} instance started", settings=settings.summary())
        return runtime

    def client(self, cluster: ClusterConfig) -> ClusterClient:
        with self._clients_lock:
            existing = self._clients.get(cluster.name)
            if existing is not None:
                return existing
        made = self._client_factory(cluster)  # may discover the endpoint: outside the lock
        with self._clients_lock:
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
