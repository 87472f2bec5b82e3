"""The vocabulary of audit records: every action and severity, named once.

The code writes these, the tests read them, and the Terraform metric filters are checked against
them (a renamed action fails a test instead of silently breaking a metric). README's audit schema
lists them.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """Cloud Logging severities the project writes."""

    INFO = "INFO"
    NOTICE = "NOTICE"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Action(StrEnum):
    # the instance
    SERVICE_STARTED = "service.started"
    # events
    EVENT_RECEIVED = "event.received"
    EVENT_IGNORED = "event.ignored"
    EVENT_MALFORMED = "event.malformed"
    EVENT_STALE = "event.stale"
    EVENT_EXPIRED = "event.expired"  # passed the maximum age after failed deliveries: lost, loud
    CLUSTER_UNREACHABLE = "cluster.unreachable"
    # the drain of one node
    DRAIN_STARTED = "drain.started"
    DRAIN_COMPLETED = "drain.completed"
    DRAIN_INCOMPLETE = "drain.incomplete"
    DRAIN_DRY_RUN = "drain.dry_run"
    DRAIN_FAILED = "drain.failed"
    NODE_CORDONED = "node.cordoned"
    NODE_VERIFIED_DOWN = "node.verified_down"
    FENCE_UNAVAILABLE = "fence.unavailable"
    FENCE_VETOED = "fence.vetoed"  # Compute Engine says the VM is not off: the Node rule does not decide
    FENCE_STORM_HELD = "fence.storm_held"  # the Node rule alone, beyond the cluster's cap: kept graceful
    NODE_TAINTED = "node.tainted"
    NODE_TAINT_FAILED = "node.taint_failed"
    BUDGETS_UNAVAILABLE = "budgets.unavailable"
    POD_EVICTED = "pod.evicted"
    POD_BLOCKED = "pod.blocked"
    POD_EVICTION_FAILED = "pod.eviction_failed"
    POD_DELETED = "pod.deleted"
    POD_FORCE_DELETED = "pod.force_deleted"
    POD_SKIPPED = "pod.skipped"
    # recovery and manual operations
    NODE_UNCORDONED = "node.uncordoned"
    NODE_RELEASED = "node.released"
    NODE_UNTAINTED = "node.untainted"
    NODE_RECOVERY_FAILED = "node.recovery_failed"
    NODE_HELD = "node.held"
    SCHEDULE_OVERLAP = "schedule.overlap"  # another run holds the cluster's Lease: this one returns
    # the Job cleanup
    CLEANUP_COMPLETED = "cleanup.completed"
    CLEANUP_PARTIAL = "cleanup.partial"
    JOB_DELETED = "job.deleted"
    JOB_SKIPPED = "job.skipped"
    # HTTP entry points
    HTTP_REQUEST = "http.request"
    HTTP_REJECTED = "http.rejected"
    HTTP_FAILED = "http.failed"
    # outcome events
    OUTCOME_PUBLISHED = "outcome.published"
    OUTCOME_PUBLISH_FAILED = "outcome.publish_failed"
    # Kubernetes Events
    EVENT_WRITE_FAILED = "k8s_event.write_failed"
    # the pull worker
    WORKER_STARTED = "worker.started"
    WORKER_STOPPING = "worker.stopping"
    WORKER_STOPPED = "worker.stopped"
    WORKER_FAILED = "worker.failed"
