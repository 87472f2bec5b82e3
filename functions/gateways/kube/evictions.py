"""policy/v1: evictions (each answer read from the Status into an :class:`EvictionResult`) and
the PodDisruptionBudgets that refuse them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from functions.decisions.model import Budget, Pod
from functions.gateways.kube.api import seg
from functions.gateways.kube.errors import ApiStatus, ApiUnavailable, error_for
from functions.gateways.kube.pods import PodApi, preconditions
from functions.gateways.kube.watch import WatchEvent, WatchStop

DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


class EvictionOutcome(StrEnum):
    EVICTED = "evicted"  # accepted: the pod is now terminating
    GONE = "gone"  # 404/409: the pod (with this UID) no longer exists
    TERMINATING = "terminating"  # 409: changed since it was read, and now terminating (someone evicted it first)
    STALE = "stale"  # 409: changed since it was read, still running: evict it again as it is now (``pod``)
    BLOCKED = "blocked"  # 429: a PodDisruptionBudget allows no disruption now
    MULTIPLE_PDBS = "multiple_pdbs"  # 500: more than one PDB selects the pod
    NAMESPACE_TERMINATING = "namespace_terminating"  # 403: the namespace is going; its pods will be deleted
    UNAVAILABLE = "unavailable"  # transient failure; retry


@dataclass(frozen=True, kw_only=True)
class EvictionResult:
    outcome: EvictionOutcome
    message: str = ""
    pdb: str | None = None
    exhausted: bool = False  # BLOCKED: the budget needs more healthy pods (not a budget still being processed)
    status: ApiStatus | None = None
    pod: Pod | None = None  # STALE: the pod as it is now


class EvictionApi(PodApi):
    """Evictions with the pod as it was read as precondition, and the budgets that refuse them."""

    def evict(self, pod: Pod, *, dry_run: bool = False) -> EvictionResult:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.name, "namespace": pod.namespace},
            # the resourceVersion precondition makes evictions of one pod by concurrent drains (one event
            # delivered several times) exclusive: the first is accepted, the others get a 409 and find the
            # pod terminating, instead of deleting it again and each reporting it evicted
            "deleteOptions": {"preconditions": preconditions(pod), **({"dryRun": ["All"]} if dry_run else {})},
        }
        path = f"/api/v1/namespaces/{seg(pod.namespace)}/pods/{seg(pod.name)}/eviction"
        try:
            response = self._request("POST", path, body=body)
        except ApiUnavailable as exc:
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(exc), status=exc.status)
        code = response.status
        if 200 <= code < 300:
            return EvictionResult(outcome=EvictionOutcome.EVICTED)
        error = error_for(code, response.data, request=f"POST {path}")
        status = error.status
        if code == 409 and pod.resource_version:
            return self._after_conflict(pod, status)
        if code in (404, 409):
            return EvictionResult(outcome=EvictionOutcome.GONE, message=status.message, status=status)
        if code == 429:
            return EvictionResult(
                outcome=EvictionOutcome.BLOCKED,
                message=status.message,
                pdb=_blocking_pdb(status),
                exhausted=_budget_exhausted(status),
                status=status,
            )
        if code == 403 and status.has_cause(NAMESPACE_TERMINATING_CAUSE):
            return EvictionResult(outcome=EvictionOutcome.NAMESPACE_TERMINATING, message=status.message, status=status)
        if code == 500 and "more than one poddisruptionbudget" in status.message.lower():
            # The API server sends no cause or reason of its own for this refusal (InternalError).
            return EvictionResult(outcome=EvictionOutcome.MULTIPLE_PDBS, message=status.message, status=status)
        if isinstance(error, ApiUnavailable):
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(error), status=status)
        raise error

    def _after_conflict(self, pod: Pod, status: ApiStatus) -> EvictionResult:
        """An eviction refused by its preconditions: what became of the pod since it was read."""
        try:
            current = self._current(pod)
        except ApiUnavailable as exc:
            return EvictionResult(outcome=EvictionOutcome.UNAVAILABLE, message=str(exc), status=exc.status)
        if current is None or current.uid != pod.uid:
            return EvictionResult(outcome=EvictionOutcome.GONE, message=status.message, status=status)
        if current.deletion_timestamp is not None:
            return EvictionResult(outcome=EvictionOutcome.TERMINATING, message="already terminating", status=status)
        return EvictionResult(outcome=EvictionOutcome.STALE, message=status.message, status=status, pod=current)

    def list_budgets(self) -> tuple[list[Budget], str]:
        """Every PodDisruptionBudget of the cluster (policy/v1) and the list's resourceVersion."""
        body = self._json("GET", "/apis/policy/v1/poddisruptionbudgets")
        budgets = [Budget.from_json(item) for item in body.get("items") or []]
        return budgets, str((body.get("metadata") or {}).get("resourceVersion", ""))

    def watch_budgets(
        self, *, resource_version: str, timeout: float, stop: WatchStop | None = None
    ) -> Iterator[tuple[WatchEvent, Budget]]:
        query = {"resourceVersion": resource_version}
        for kind, obj in self._watch("/apis/policy/v1/poddisruptionbudgets", query, timeout, stop):
            yield kind, Budget.from_json(obj)


def _budget_exhausted(status: ApiStatus) -> bool:
    """Whether a 429 says the budget has no disruption left ("... needs N healthy pods and has M
    currently"), as opposed to a budget the server is still processing (a status older than its
    spec, or a pod that changed under the eviction), which is worth a retry soon."""
    return any(
        cause.reason == DISRUPTION_BUDGET_CAUSE and " healthy pods and has " in cause.message for cause in status.causes
    )


def _blocking_pdb(status: ApiStatus) -> str | None:
    """The PDB that refused an eviction, from the Status's DisruptionBudget cause
    ("The disruption budget NAME needs ...": the name is only in the cause's message)."""
    prefix = "The disruption budget "
    for cause in status.causes:
        if cause.reason == DISRUPTION_BUDGET_CAUSE and cause.message.startswith(prefix):
            return cause.message[len(prefix) :].split(" ", 1)[0] or None
    return None
