"""What every use case of one function instance shares: settings, cluster clients, the audit
context and the outcome publisher. Made at the first call (never at import)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from functions.decisions import settings as settings_module
from functions.decisions.actions import Action
from functions.decisions.names import COMPONENT
from functions.decisions.settings import ClusterConfig, Settings
from functions.gateways import audit as audit_log
from functions.gateways.audit import Audit
from functions.gateways.compute import ComputeClient
from functions.gateways.kube.client import ClusterClient
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
        self.audit = Audit({"component": COMPONENT})
        self.outcomes = OutcomePublisher(topic=settings.outcome_topic, type_prefix=settings.outcome_type_prefix)
        self.compute = (
            ComputeClient(base_url=settings.compute_api, timeout=min(5.0, settings.api_timeout))
            if settings.compute_fence
            else None
        )

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

    def finish(self) -> None:
        """Before a handler returns (the platform may freeze the instance): outcomes, then audit."""
        self.outcomes.flush()
        audit_log.flush()
