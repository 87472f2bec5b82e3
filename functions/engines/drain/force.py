"""The force step: once the node's VM is verified off and the plan forces, what is left on the node
is deleted with grace 0 (UID precondition), so that its controllers recreate it elsewhere. A pod that
a finalizer keeps is not gone: the pod watch sees it go, or it is reported remaining."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from functions.decisions.actions import Action, Severity
from functions.decisions.model import Node
from functions.decisions.policy import DrainPlan
from functions.engines.drain.deadline import Deadline
from functions.engines.drain.pods import PodLog, PodResult, TrackedPod
from functions.errors import TransientError
from functions.gateways.kube.client import ClusterClient


def force_delete(
    items: list[TrackedPod],
    node: Node,
    *,
    kube: ClusterClient,
    deadline: Deadline,
    log: PodLog,
    plan: DrainPlan,
    dry_run: bool,
    concurrency: int,
) -> None:
    """Force-delete ``items`` from ``node`` (verified down), ``concurrency`` at a time."""
    if log.events is not None:
        log.events.force_cleanup(node, pods=[i.decision.pod.key for i in items])

    def one(item: TrackedPod) -> None:
        pod = item.decision.pod
        try:
            held_by = kube.force_delete_pod(pod, dry_run=dry_run)
        except TransientError as exc:
            item.transient, item.last_message = True, str(exc)
            return
        deleted = held_by is not None
        if held_by:  # the API server keeps it until they are removed: not gone, whatever the delete said
            item.transient, item.finalizers = False, held_by
            item.last_message = f"held by finalizer{'s' if len(held_by) > 1 else ''} {', '.join(held_by)}"
        if deleted:
            item.result = PodResult.WOULD_FORCE_DELETE if dry_run else PodResult.FORCE_DELETED
            log.record(
                item,
                Action.POD_FORCE_DELETED,
                f"{'would force-delete' if dry_run else 'force-deleted'} {pod.key}: node verified down"
                + (f"; {item.last_message}: it stays until they are removed" if held_by else ""),
                severity=Severity.NOTICE,
                ready=node.ready.status,
                last_heartbeat=node.ready.last_heartbeat,
                event_time=plan.event_time,
                dry_run=dry_run,
                finalizers=list(held_by or ()),
            )
        if held_by:
            return  # gone when the pod watch sees it go; left at the deadline: reported remaining
        if not dry_run or not deleted:
            with deadline.lock:
                item.gone = True
                item.result = item.result or PodResult.GONE
                deadline.lock.notify_all()

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="force") as pool:
        list(pool.map(one, items))
