# Log-based metrics on the audit records (the dedicated audit log; dry runs excluded), the alerts that
# need a person (each says what to do), and a dashboard.
#
# What alerts: drains that could not run (drain.failed), force cleanups that failed (a node verified down
# that still held pods at the deadline, or whose out-of-service taint could not be added), nodes we have
# held (cordoned or tainted) for longer than recovery_alert_after_seconds, recoveries that keep failing,
# events on the dead-letter topic, events lost because they expired (event.expired), and drains kept
# graceful by storm protection (fence.storm_held).
# What does not: a graceful delete held by a PodDisruptionBudget until its deadline (drain.incomplete on a
# node that was not verified down ends as designed; the drains tile and `blocked_pods` show it), and a
# replay of old events (event.stale).

locals {
  not_dry_run = "NOT jsonPayload.dry_run=true"

  counter_metrics = {
    drains = {
      description = "Drains finished, by outcome (completed, incomplete, failed), event kind and cluster."
      filter      = "jsonPayload.action=(\"drain.completed\" OR \"drain.incomplete\" OR \"drain.failed\")"
      labels = {
        outcome    = "REGEXP_EXTRACT(jsonPayload.action, \"^drain\\\\.(.+)$\")"
        event_kind = "EXTRACT(jsonPayload.event_kind)"
      }
    }
    failed_drains = {
      description = "Drains that could not run (API server down, access denied): drain.failed."
      filter      = "jsonPayload.action=\"drain.failed\""
      labels      = { node = "EXTRACT(jsonPayload.node)" }
    }
    failed_force_cleanups = {
      description = "Force cleanups that failed: a node verified down still held pods at the deadline, or its out-of-service taint could not be added."
      filter      = "(jsonPayload.action=\"drain.incomplete\" AND jsonPayload.verified_down=true) OR jsonPayload.action=\"node.taint_failed\""
      labels = {
        node   = "EXTRACT(jsonPayload.node)"
        action = "EXTRACT(jsonPayload.action)"
      }
    }
    recovery_failures = {
      description = "Recoveries of a node we cordoned or tainted that failed (node.recovery_failed): the node stays cordoned or tainted. How long nodes are held is the held_time distribution (node.held)."
      filter      = "jsonPayload.action=\"node.recovery_failed\""
      labels      = { node = "EXTRACT(jsonPayload.node)" }
    }
    expired_events = {
      description = "Node events lost: an event passed the maximum event age after failed deliveries and was not acted on (event.expired), by the instance it named. A replayed old event (event.stale) is not counted."
      filter      = "jsonPayload.action=\"event.expired\""
      # written before the event's node is looked up: the record names the instance, not the cluster
      by_cluster = false
      labels = {
        project    = "EXTRACT(jsonPayload.project)"
        zone       = "EXTRACT(jsonPayload.zone)"
        instance   = "EXTRACT(jsonPayload.instance)"
        event_kind = "EXTRACT(jsonPayload.event_kind)"
      }
    }
    storm_held = {
      description = "Drains kept graceful by storm protection: the Node rule was the only signal and the cluster's cap of nodes fenced within the window was reached (fence.storm_held)."
      filter      = "jsonPayload.action=\"fence.storm_held\""
      labels      = { node = "EXTRACT(jsonPayload.node)" }
    }
    evictions = {
      description = "Pods evicted through the Eviction API."
      filter      = "jsonPayload.action=\"pod.evicted\""
      labels      = {}
    }
    blocked_pods = {
      description = "Evictions refused by a PodDisruptionBudget."
      filter      = "jsonPayload.action=\"pod.blocked\""
      labels      = { pdb = "EXTRACT(jsonPayload.pdb)" }
    }
    force_cleanups = {
      description = "Pods force-deleted from nodes verified down (fenced)."
      filter      = "jsonPayload.action=\"pod.force_deleted\""
      labels      = {}
    }
    cleaned_jobs = {
      description = "Finished Jobs deleted by the cleanup."
      filter      = "jsonPayload.action=\"job.deleted\""
      labels      = {}
    }
  }

  # Distributions: the field a record carries (value_extractor) and the labels it is split by.
  distribution_metrics = {
    event_age = {
      description  = "Event age: the Compute Engine LogEntry's timestamp to the moment the event function handles it (event.received), in seconds, by event kind. Sink and Pub/Sub delay, and redeliveries."
      display_name = "event age"
      filter       = "jsonPayload.action=\"event.received\" AND jsonPayload.event_age_seconds>=0"
      value        = "EXTRACT(jsonPayload.event_age_seconds)"
      labels       = { event_kind = "EXTRACT(jsonPayload.event_kind)" }
      # 0.25 s to about 5.5 h (the stale limit is 2 h)
      buckets = { count = 24, growth = 1.6, scale = 0.25 }
    }
    failover_time = {
      description  = "Failover time: the node verified down to the last of its target pods gone (force-deleted or gone), in seconds, by the signal that verified it (compute, node), event kind and cluster (drain.completed with failover_seconds)."
      display_name = "failover time"
      filter       = "jsonPayload.action=\"drain.completed\" AND jsonPayload.failover_seconds>=0"
      value        = "EXTRACT(jsonPayload.failover_seconds)"
      labels = {
        cluster     = "EXTRACT(jsonPayload.cluster)"
        down_signal = "EXTRACT(jsonPayload.down_signal)"
        event_kind  = "EXTRACT(jsonPayload.event_kind)"
      }
      # 0.05 s to about 14 min
      buckets = { count = 24, growth = 1.5, scale = 0.05 }
    }
    drain_duration = {
      description  = "Drain duration: the event handled to the last target pod gone (completed) or the deadline (incomplete), in seconds, by outcome, event kind and cluster."
      display_name = "drain duration"
      filter       = "jsonPayload.action=(\"drain.completed\" OR \"drain.incomplete\")"
      value        = "EXTRACT(jsonPayload.duration_seconds)"
      labels = {
        cluster    = "EXTRACT(jsonPayload.cluster)"
        outcome    = "REGEXP_EXTRACT(jsonPayload.action, \"^drain\\\\.(.+)$\")"
        event_kind = "EXTRACT(jsonPayload.event_kind)"
      }
      # 0.25 s to about 46 min (deadlines are at most 500 s)
      buckets = { count = 24, growth = 1.5, scale = 0.25 }
    }
    held_time = {
      description  = "Time held: how long each node we hold (our cordon or out-of-service taint) has been held, since the event we cordoned it for, as every recovery run reports it (node.held), in seconds, by cluster and node. The held-node alert compares it with recovery_alert_after_seconds."
      display_name = "time held"
      filter       = "jsonPayload.action=\"node.held\" AND jsonPayload.held_seconds>=0"
      value        = "EXTRACT(jsonPayload.held_seconds)"
      labels = {
        cluster = "EXTRACT(jsonPayload.cluster)"
        node    = "EXTRACT(jsonPayload.node)"
      }
      # Explicit bounds with one at recovery_alert_after_seconds: a percentile is interpolated inside a
      # bucket, so the alert's comparison is exact only at a bucket bound.
      buckets = { bounds = local.held_time_bounds }
    }
  }

  held_time_ladder = [60, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400, 172800, 604800]
  held_time_bounds = concat(
    [for bound in local.held_time_ladder : bound if bound < var.recovery_alert_after_seconds],
    [var.recovery_alert_after_seconds],
    [for bound in local.held_time_ladder : bound if bound > var.recovery_alert_after_seconds],
  )

  metric_type       = { for key, metric in google_logging_metric.counters : key => "logging.googleapis.com/user/${metric.name}" }
  distribution_type = { for key, metric in google_logging_metric.distributions : key => "logging.googleapis.com/user/${metric.name}" }

  audit_query = "${local.audit_log_filter} AND ${local.not_dry_run}"
  # The dead-letter subscription (pubsub.tf) keeps what Pub/Sub gave up on; nothing else pulls it.
  dead_letter_filter = "resource.type=\"pubsub_subscription\" AND resource.label.subscription_id=\"${google_pubsub_subscription.dead_letter.name}\""

  counter_tiles = [
    { title = "Drains by outcome", metric = "drains", group_by = "metric.label.outcome" },
    { title = "Force cleanups (pods force-deleted)", metric = "force_cleanups", group_by = "metric.label.cluster" },
    { title = "Blocked pods (PDB)", metric = "blocked_pods", group_by = "metric.label.pdb" },
    { title = "Failed drains (alert)", metric = "failed_drains", group_by = "metric.label.node" },
    { title = "Failed force cleanups (alert)", metric = "failed_force_cleanups", group_by = "metric.label.action" },
    { title = "Failed recoveries (alert)", metric = "recovery_failures", group_by = "metric.label.node" },
    { title = "Expired events: lost (alert)", metric = "expired_events", group_by = "metric.label.project" },
    { title = "Drains held graceful by storm protection (alert)", metric = "storm_held", group_by = "metric.label.cluster" },
    { title = "Evictions", metric = "evictions", group_by = "metric.label.cluster" },
    { title = "Cleaned Jobs", metric = "cleaned_jobs", group_by = "metric.label.cluster" },
  ]

  distribution_tiles = [
    { title = "Event age (p50, p95, p99)", metric = "event_age", group_by = [], legend = "", percentiles = [50, 95, 99] },
    { title = "Failover time by signal (p50, p95)", metric = "failover_time", group_by = ["metric.label.down_signal"], legend = " $${metric.label.down_signal}", percentiles = [50, 95] },
    { title = "Drain duration by outcome (p50, p95)", metric = "drain_duration", group_by = ["metric.label.outcome"], legend = " $${metric.label.outcome}", percentiles = [50, 95] },
    { title = "Time nodes are held by us, by cluster (p50, p99; alert)", metric = "held_time", group_by = ["metric.label.cluster"], legend = " $${metric.label.cluster}", percentiles = [50, 99] },
  ]

}

resource "google_logging_metric" "counters" {
  for_each = local.counter_metrics

  project     = var.project_id
  name        = "${var.name}/${each.key}"
  description = each.value.description
  filter      = "${local.audit_log_filter} AND ${local.not_dry_run} AND (${each.value.filter})"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "gke-node-drainer ${replace(each.key, "_", " ")}"

    # Every counter is by cluster, except one whose records do not name it (by_cluster = false).
    dynamic "labels" {
      for_each = try(each.value.by_cluster, true) ? ["cluster"] : []
      content {
        key         = labels.value
        value_type  = "STRING"
        description = "Cluster name."
      }
    }

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  label_extractors = merge(try(each.value.by_cluster, true) ? { cluster = "EXTRACT(jsonPayload.cluster)" } : {}, each.value.labels)

  depends_on = [google_project_service.required]
}

resource "google_logging_metric" "distributions" {
  for_each = local.distribution_metrics

  project         = var.project_id
  name            = "${var.name}/${each.key}"
  description     = each.value.description
  filter          = "${local.audit_log_filter} AND ${local.not_dry_run} AND ${each.value.filter}"
  value_extractor = each.value.value

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "gke-node-drainer ${each.value.display_name}"

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  label_extractors = each.value.labels

  # Exponential buckets ({count, growth, scale}), or explicit ones ({bounds}) where an alert compares a
  # percentile with a threshold.
  bucket_options {
    dynamic "exponential_buckets" {
      for_each = can(each.value.buckets.bounds) ? [] : [each.value.buckets]
      content {
        num_finite_buckets = exponential_buckets.value.count
        growth_factor      = exponential_buckets.value.growth
        scale              = exponential_buckets.value.scale
      }
    }

    dynamic "explicit_buckets" {
      for_each = can(each.value.buckets.bounds) ? [each.value.buckets.bounds] : []
      content {
        bounds = explicit_buckets.value
      }
    }
  }

  depends_on = [google_project_service.required]
}

# --- alerts: what needs a person, and what to do ---------------------------------------------------------------

locals {
  # `gcloud logging read` for one node's audit records; Monitoring fills in ${metric.label.*}.
  node_query = "${local.audit_query} AND jsonPayload.cluster=\"$${metric.label.cluster}\" AND jsonPayload.node=\"$${metric.label.node}\""

  alerts = {
    failed_drains = {
      display_name  = "${var.name}: a drain could not run"
      condition     = "drain.failed on a node"
      filter        = "metric.type=\"${local.metric_type["failed_drains"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_SUM"
      reducer       = "REDUCE_SUM"
      period        = "300s"
      threshold     = 0
      duration      = "0s"
      group_by      = ["metric.label.cluster", "metric.label.node"]
      severity      = "ERROR"
      documentation = <<-EOT
        ## A drain could not run

        gke-node-drainer could not drain node `$${metric.label.node}` of cluster `$${metric.label.cluster}`
        (`drain.failed`): the API server was unreachable, failed, or denied the function's identity.
        Pub/Sub redelivers the event; if it keeps failing, it ends on the dead-letter topic and the node
        may never be drained. A PodDisruptionBudget that holds a graceful delete does not fire this alert.

        **Where to look**
        - The node's audit records (`error`; for a denial `status` and `fix`, which names the verb and the ClusterRole):
          `gcloud logging read '${local.node_query}' --project ${var.project_id} --freshness 2h`
        - `gke-node-drainer status`: the nodes we cordoned and what recovery does next;
          `kubectl describe node $${metric.label.node}` shows our Events.

        **What to do**
        - 401/403: apply the RBAC manifest for `${google_service_account.runtime.email}` in that cluster
          (`terraform apply`, or `modules/rbac` for a further cluster); the next redelivery drains the node.
        - Unreachable or 5xx: check the cluster's control plane; the redelivery drains the node once it answers.
        - To drain now by hand: `gke-node-drainer drain $${metric.label.node} --cluster $${metric.label.cluster}`.
      EOT
    }

    failed_force_cleanups = {
      display_name  = "${var.name}: a force cleanup failed on a node verified down"
      condition     = "pods left on a node verified down, or its out-of-service taint refused"
      filter        = "metric.type=\"${local.metric_type["failed_force_cleanups"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_SUM"
      reducer       = "REDUCE_SUM"
      period        = "300s"
      threshold     = 0
      duration      = "0s"
      group_by      = ["metric.label.cluster", "metric.label.node"]
      severity      = "ERROR"
      documentation = <<-EOT
        ## A force cleanup failed on a node verified down

        Node `$${metric.label.node}` of cluster `$${metric.label.cluster}` was verified down (its VM is off,
        gone or replaced), but its fenced cleanup did not finish: pods were still on it at the deadline
        (`drain.incomplete` with `verified_down: true`: their force-deletion failed) or the out-of-service
        taint could not be added (`node.taint_failed`). Until it finishes, its StatefulSet pods and their
        ReadWriteOnce volumes do not fail over. (`pod.force_deleted` is a force cleanup that worked.)

        **Where to look**
        - `gcloud logging read '${local.node_query} AND jsonPayload.action=("drain.incomplete" OR "node.taint_failed" OR "node.verified_down" OR "pod.force_deleted")' --project ${var.project_id} --freshness 2h`:
          `remaining` lists the pods left, `error` says why the taint was refused.
        - `gke-node-drainer status`: `next` is `force_cleanup` while the node is down and holds pods;
          `kubectl describe node $${metric.label.node}` (Events `VerifiedDown`, `ForceCleanup`).

        **What to do**
        - A 403 in `error`: the ClusterRole lacks `delete pods` or `patch nodes`: apply the RBAC manifest
          for `${google_service_account.runtime.email}`.
        - The scheduled recovery retries the cleanup on every run. To finish it now, once you have checked
          the VM is off (`gcloud compute instances describe $${metric.label.node} --zone ZONE --format='value(status)'`):
          `kubectl delete pod -n NAMESPACE POD --grace-period=0 --force` for the pods in `remaining`, and
          `kubectl taint nodes $${metric.label.node} node.kubernetes.io/out-of-service=nodeshutdown:NoExecute`
          (a taint you add is yours to remove once the node is back).
      EOT
    }

    held_nodes = {
      display_name  = "${var.name}: a node stays held by us too long"
      condition     = "node.held with held_seconds above ${var.recovery_alert_after_seconds} s"
      filter        = "metric.type=\"${local.distribution_type["held_time"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_PERCENTILE_99"
      reducer       = "REDUCE_MAX"
      period        = "300s"
      threshold     = var.recovery_alert_after_seconds
      duration      = "0s"
      group_by      = ["metric.label.cluster", "metric.label.node"]
      severity      = "WARNING"
      documentation = <<-EOT
        ## A node stays held by us too long

        gke-node-drainer has held node `$${metric.label.node}` of cluster `$${metric.label.cluster}` (our cordon,
        and our out-of-service taint if it was verified down) for more than ${var.recovery_alert_after_seconds} s.
        Every scheduled recovery run writes `node.held` for every node it holds, with `held_seconds` (since the
        event we cordoned it for) and `reason` (what it waits for: the node not back yet (the VM not `RUNNING`,
        no new boot, not Ready), a pod still terminating or a volume still attached there, or a fact that could
        not be read).
        This alert compares `held_seconds` itself with the threshold (the `held_time` distribution has a bucket
        bound at the threshold, so the comparison is exact): it fires as soon as one run reports the node held
        that long, also right after a deploy, does not restart when a run is skipped, and never fires for a node
        released before the threshold. No pod is scheduled on the node while we hold it.

        **Where to look**
        - `gcloud logging read '${local.node_query} AND jsonPayload.action=("node.held" OR "node.recovery_failed" OR "node.uncordoned" OR "node.released" OR "node.untainted")' --project ${var.project_id} --freshness 1d`:
          `reason` and `held_seconds` of the latest `node.held`, `back_since` once the node is Ready again.
        - `gke-node-drainer status --cluster $${metric.label.cluster}`: the node's `next`, `why`, `tainted_by_us`;
          `kubectl get volumeattachments` and `kubectl get pods -A --field-selector spec.nodeName=$${metric.label.node}`;
          the VM: `gcloud compute instances describe $${metric.label.node} --zone ZONE --format='value(status)'`.

        **What to do**
        - The VM is not back (Spot or preemptible capacity, a VM left `TERMINATED`): the drainer works as designed
          and lifts its hold when the node returns; resize or recreate the node pool if it does not. Raise
          `recovery_alert_after_seconds` if such waits are normal for this cluster.
        - A pod stuck terminating or a volume stuck attached: find what holds it (a finalizer, the CSI driver's
          attacher); once it is gone the next run lifts the taint and the cordon.
        - A fact that could not be read, or `node.recovery_failed` in the records: see the recovery-failure alert
          (a 403 means the RBAC manifest for `${google_service_account.runtime.email}` is missing a verb).
        - To lift the hold now, once the VM runs again: `gke-node-drainer uncordon $${metric.label.node} --cluster $${metric.label.cluster} --untaint`
          (our cordon and our out-of-service taint together; `--force` also lifts a cordon from before us).
      EOT
    }

    failed_recoveries = {
      display_name  = "${var.name}: the recovery of a node keeps failing"
      condition     = "node.recovery_failed on every run for ${var.recovery_alert_after_seconds} s"
      filter        = "metric.type=\"${local.metric_type["recovery_failures"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_SUM"
      reducer       = "REDUCE_SUM"
      period        = "300s" # a rolling 5 min: the scheduled recovery runs every minute by default
      threshold     = 0
      duration      = "${var.recovery_alert_after_seconds}s"
      group_by      = ["metric.label.cluster", "metric.label.node"]
      severity      = "WARNING"
      documentation = <<-EOT
        ## The recovery of a node keeps failing

        For about ${var.recovery_alert_after_seconds} s the scheduled recovery of node `$${metric.label.node}` of
        cluster `$${metric.label.cluster}` has failed on every run (`node.recovery_failed`): the API server refused
        or failed the uncordon, the removal of our taint or the finish of a force cleanup. The node keeps our
        cordon (no pod is scheduled there) and our taint. A single failed run does not fire this alert.

        **Where to look**
        - `gcloud logging read '${local.node_query} AND jsonPayload.action=("node.recovery_failed" OR "node.held" OR "node.uncordoned" OR "node.released" OR "node.untainted")' --project ${var.project_id} --freshness 2h`:
          `error` says why.
        - `gke-node-drainer status --cluster $${metric.label.cluster}`: the node's `next`, `why`, `tainted_by_us`.

        **What to do**
        - A 403 in `error`: apply the RBAC manifest for `${google_service_account.runtime.email}` (`patch nodes`).
        - A 409 that repeats: something else keeps changing the node; `kubectl get node $${metric.label.node} -o yaml`
          shows who (`managedFields`).
        - To lift the hold now, once the VM runs again: `gke-node-drainer uncordon $${metric.label.node} --cluster $${metric.label.cluster} --untaint`
          (our cordon and our out-of-service taint together; `--force` also lifts a cordon from before us).
      EOT
    }

    dead_letters = {
      display_name  = "${var.name}: node events on the dead-letter topic"
      condition     = "undelivered messages on the dead-letter subscription"
      filter        = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dead_letter_filter}"
      aligner       = "ALIGN_MAX"
      reducer       = "REDUCE_SUM"
      period        = "300s"
      threshold     = 0
      duration      = "0s"
      group_by      = ["resource.label.subscription_id"]
      severity      = "ERROR"
      documentation = <<-EOT
        ## Node events on the dead-letter topic

        Pub/Sub gave up delivering Compute Engine events to the event function after
        ${var.dead_letter_max_delivery_attempts} attempts: every attempt failed (a cluster unreachable or
        denying us). The nodes they name may never have been drained. They wait on the subscription
        `${google_pubsub_subscription.dead_letter.name}`; this alert closes once none is left unacknowledged.
        (Malformed events never get here: they are acknowledged and audited `event.malformed`.)

        **Where to look**
        - The messages, without acknowledging them:
          `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter.id} --limit 10 --format=json`;
          what the function would decide about one:
          `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter.id} --limit 1 --format=json | jq '.[0].message' | gke-node-drainer explain -`
        - Why they failed: `gcloud logging read '${local.audit_query} AND jsonPayload.action=("cluster.unreachable" OR "drain.failed")' --project ${var.project_id} --freshness 1d`
          (`fix` names what to grant).

        **What to do**
        - Fix the cause (RBAC for `${google_service_account.runtime.email}`, the cluster's endpoint), then replay:
          publish each message's data again to `${google_pubsub_topic.events.id}` (events that have become stale,
          or whose node is back, are acknowledged and leave the node alone), and acknowledge them here with
          `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter.id} --auto-ack --limit 100`.
      EOT
    }

    expired_events = {
      display_name  = "${var.name}: a node event was lost (expired after failed deliveries)"
      condition     = "event.expired for an instance"
      filter        = "metric.type=\"${local.metric_type["expired_events"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_SUM"
      reducer       = "REDUCE_SUM"
      period        = "300s"
      threshold     = 0
      duration      = "0s"
      group_by      = ["metric.label.project", "metric.label.zone", "metric.label.instance"]
      severity      = "ERROR"
      documentation = <<-EOT
        ## A node event was lost: it expired after failed deliveries

        A Compute Engine event for instance `$${metric.label.instance}` (project `$${metric.label.project}`, zone
        `$${metric.label.zone}`) reached the event function only when it was older than
        ${var.max_event_age_seconds} s, after failed deliveries (`event.expired`; `event_kind` says which event).
        It was not acted on: the node may never have been cordoned, drained or fenced, and its pods may still be
        `Unknown` or `Terminating` on a VM that is gone. It should have reached the dead-letter topic first
        (README: the dead-letter arithmetic), so either the push subscription's dead-letter or retry policy was
        changed outside Terraform (`terraform plan` shows the drift) or deliveries were delayed beyond the
        arithmetic (a backlog, `event_max_instances` reached). An old event replayed on purpose is `event.stale`
        (INFO) and never fires this alert.

        **Where to look**
        - The event and its earlier deliveries: `gcloud logging read '${local.audit_query} AND jsonPayload.instance="$${metric.label.instance}" AND jsonPayload.action=("event.received" OR "event.expired" OR "cluster.unreachable" OR "drain.failed")' --project ${var.project_id} --freshness 1d`
          (`reason`, `delivery_attempt`, `publish_time`, `event_age_seconds`; `error` and `fix` of the failures).
        - The node now (its name is the instance's, `gke-CLUSTER-POOL-...`): `gke-node-drainer status --cluster CLUSTER`,
          `kubectl get pods -A --field-selector spec.nodeName=$${metric.label.instance}`, and the VM:
          `gcloud compute instances describe $${metric.label.instance} --project $${metric.label.project} --zone $${metric.label.zone} --format='value(status)'`.
        - The push subscription's policies:
          `gcloud pubsub subscriptions describe ${google_pubsub_subscription.events.id} --format='yaml(ackDeadlineSeconds,deadLetterPolicy,retryPolicy)'`.

        **What to do**
        - The node still there with its pods: drain it now, `gke-node-drainer drain $${metric.label.instance} --cluster CLUSTER --force`
          (evictions honour the budgets; what is left is forced only once the VM is verified off).
        - The node replaced or back since: nothing is left to do for it.
        - So that the next one dead-letters instead: `terraform apply` (restores the subscription's policies), fix
          what failed the deliveries (`fix` names the grant), raise `event_max_instances` if events queue up.
      EOT
    }

    storm_held = {
      display_name  = "${var.name}: fence storm, drains kept graceful while Compute Engine cannot answer"
      condition     = "fence.storm_held in a cluster"
      filter        = "metric.type=\"${local.metric_type["storm_held"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_SUM"
      reducer       = "REDUCE_SUM"
      period        = "300s"
      threshold     = 0
      duration      = "0s"
      group_by      = ["metric.label.cluster"]
      severity      = "ERROR"
      documentation = <<-EOT
        ## Fence storm: many nodes Unknown while Compute Engine cannot answer

        In cluster `$${metric.label.cluster}` nodes turned Ready `Unknown` while Compute Engine could not say
        whether their VMs are off (a timeout, 5xx or 403, or `compute_fence = false`), so the Node rule was the
        only signal, and the cluster's cap of nodes fenced that way within the window was reached
        (`fence.storm_held`: `fenced`, `cap`, `window_seconds`; `error` when the fenced nodes could not be
        counted). The drains beyond the cap stay graceful: no force-delete, no out-of-service taint, so the
        StatefulSet pods of those nodes do not fail over. A zonal network partition looks like this (the VMs
        still run: forcing would make two writers), and so does a missing `compute.instances.get` grant.

        **Where to look**
        - `gcloud logging read '${local.audit_query} AND jsonPayload.cluster="$${metric.label.cluster}" AND jsonPayload.action=("fence.storm_held" OR "fence.unavailable" OR "node.verified_down")' --project ${var.project_id} --freshness 2h`:
          the nodes held, and why Compute Engine did not answer (`error`, `status` of `fence.unavailable`).
        - Which nodes are Unknown, and in which zones: `kubectl get nodes -L topology.kubernetes.io/zone`;
          `gke-node-drainer status --cluster $${metric.label.cluster}`.
        - Whether their VMs run: `gcloud compute instances describe NODE --project CLUSTER_PROJECT --zone ZONE --format='value(status)'`.

        **What to do**
        - A 403: grant `compute.instances.get` to `${google_service_account.runtime.email}` in the cluster's
          project (`terraform apply` with `compute_fence = true` creates the custom role and binding). Once
          Compute Engine answers, it decides for each node: the recovery runs finish the force cleanup of nodes
          whose VMs are off (`status`: `next` is `force_cleanup`).
        - The VMs `RUNNING` (a partition): force nothing; the nodes return with the network and recovery lifts
          our cordons.
        - The VMs off while Compute Engine cannot be asked (an outage): check each VM is off, then force what is
          left by hand: `kubectl delete pod -n NAMESPACE POD --grace-period=0 --force` and
          `kubectl taint nodes NODE node.kubernetes.io/out-of-service=nodeshutdown:NoExecute` (a taint you add is
          yours to remove once the node is back).
        - The cap is `DRAINER_FENCE_STORM_SHARE` of the cluster's nodes (default 10 %, at least 1) within
          `DRAINER_FENCE_STORM_WINDOW_SECONDS` (default 600 s).
      EOT
    }
  }
}

resource "google_monitoring_alert_policy" "alerts" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = each.value.display_name
  combiner              = "OR"
  severity              = each.value.severity
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = each.value.condition

    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold
      duration        = each.value.duration

      aggregations {
        alignment_period     = each.value.period
        per_series_aligner   = each.value.aligner
        cross_series_reducer = each.value.reducer
        group_by_fields      = each.value.group_by
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.documentation
  }
}

# --- the dashboard -----------------------------------------------------------------------------------------------

locals {
  dashboard_counter_tiles = [
    for tile in local.counter_tiles : {
      title = tile.title
      xyChart = {
        chartOptions = { mode = "COLOR" }
        dataSets = [{
          plotType = "STACKED_BAR"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "metric.type=\"${local.metric_type[tile.metric]}\" AND resource.type=\"global\""
              aggregation = {
                alignmentPeriod    = "300s"
                perSeriesAligner   = "ALIGN_SUM"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = [tile.group_by]
              }
            }
          }
        }]
      }
    }
  ]

  dashboard_distribution_tiles = [
    for tile in local.distribution_tiles : {
      title = tile.title
      xyChart = {
        chartOptions = { mode = "COLOR" }
        dataSets = [
          for percentile in tile.percentiles : {
            plotType       = "LINE"
            legendTemplate = "p${percentile}${tile.legend}"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "metric.type=\"${local.distribution_type[tile.metric]}\" AND resource.type=\"global\""
                aggregation = {
                  alignmentPeriod    = "300s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_PERCENTILE_${percentile}"
                  groupByFields      = tile.group_by
                }
              }
            }
          }
        ]
      }
    }
  ]

  dashboard_dead_letter_tile = {
    title = "Dead letters (undelivered on the dead-letter subscription; alert)"
    xyChart = {
      chartOptions = { mode = "COLOR" }
      dataSets = [{
        plotType = "LINE"
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dead_letter_filter}"
            aggregation = {
              alignmentPeriod    = "300s"
              perSeriesAligner   = "ALIGN_MAX"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["resource.label.subscription_id"]
            }
          }
        }
      }]
    }
  }

  # Distributions first (how late are we), then what needs a person, then the rest.
  dashboard_widgets = concat(
    local.dashboard_distribution_tiles,
    [local.dashboard_dead_letter_tile],
    local.dashboard_counter_tiles,
  )
}

resource "google_monitoring_dashboard" "drainer" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "gke-node-drainer (${var.name})"
    mosaicLayout = {
      columns = 48
      tiles = [
        for index, widget in local.dashboard_widgets : {
          xPos   = (index % 2) * 24
          yPos   = floor(index / 2) * 16
          width  = 24
          height = 16
          widget = widget
        }
      ]
    }
  })
}
