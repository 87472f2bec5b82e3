# Log-based metrics on the audit records (the dedicated audit log; dry runs excluded), the alerts that
# need a person (each says what to do), and a dashboard.
#
# What alerts: drains that could not run (drain.failed), force cleanups that failed (a node verified down
# that still held pods at the deadline, or whose out-of-service taint could not be added), nodes we keep
# cordoned or tainted because their recovery keeps failing, and events on the dead-letter topic.
# What does not: a graceful delete held by a PodDisruptionBudget until its deadline (drain.incomplete on a
# node that was not verified down ends as designed; the drains tile and `blocked_pods` show it).

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
      description = "Recoveries of a node we cordoned or tainted that failed, or that found it back but still held by our out-of-service taint (it stays cordoned or tainted)."
      filter      = "jsonPayload.action=(\"node.recovery_failed\" OR \"node.held\")"
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
  }

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
    { title = "Evictions", metric = "evictions", group_by = "metric.label.cluster" },
    { title = "Cleaned Jobs", metric = "cleaned_jobs", group_by = "metric.label.cluster" },
  ]

  distribution_tiles = [
    { title = "Event age (p50, p95, p99)", metric = "event_age", group_by = [], legend = "", percentiles = [50, 95, 99] },
    { title = "Failover time by signal (p50, p95)", metric = "failover_time", group_by = ["metric.label.down_signal"], legend = " $${metric.label.down_signal}", percentiles = [50, 95] },
    { title = "Drain duration by outcome (p50, p95)", metric = "drain_duration", group_by = ["metric.label.outcome"], legend = " $${metric.label.outcome}", percentiles = [50, 95] },
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

    labels {
      key         = "cluster"
      value_type  = "STRING"
      description = "Cluster name."
    }

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  label_extractors = merge({ cluster = "EXTRACT(jsonPayload.cluster)" }, each.value.labels)

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

  bucket_options {
    exponential_buckets {
      num_finite_buckets = each.value.buckets.count
      growth_factor      = each.value.buckets.growth
      scale              = each.value.buckets.scale
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
      display_name  = "${var.name}: a node stays cordoned or tainted by us after it came back"
      condition     = "node.recovery_failed or node.held on every run for ${var.recovery_alert_after_seconds} s"
      filter        = "metric.type=\"${local.metric_type["recovery_failures"]}\" AND resource.type=\"global\""
      aligner       = "ALIGN_SUM"
      period        = "900s" # a rolling 15 min: the scheduled recovery runs every minute by default
      threshold     = 0
      duration      = "${var.recovery_alert_after_seconds}s"
      group_by      = ["metric.label.cluster", "metric.label.node"]
      severity      = "WARNING"
      documentation = <<-EOT
        ## A node stays cordoned or tainted by us after it came back

        For more than ${var.recovery_alert_after_seconds} s the scheduled recovery of node `$${metric.label.node}` of
        cluster `$${metric.label.cluster}` has either failed (`node.recovery_failed`) or found the node back but
        kept our out-of-service taint (`node.held`: a pod still terminating there, a volume still attached there,
        or the VM not `RUNNING`). The node keeps our cordon (no pod is scheduled there) and our taint.

        **Where to look**
        - `gcloud logging read '${local.node_query} AND jsonPayload.action=("node.recovery_failed" OR "node.held" OR "node.uncordoned" OR "node.released" OR "node.untainted")' --project ${var.project_id} --freshness 2h`:
          `error` (a failure) or `reason` (what it waits for) says why.
        - `gke-node-drainer status`: the node's `next`, `why`, `tainted_by_us`;
          `kubectl get volumeattachments` and `kubectl get pods -A --field-selector spec.nodeName=$${metric.label.node}`.

        **What to do**
        - A 403 in `error`: apply the RBAC manifest for `${google_service_account.runtime.email}` (`patch nodes`).
        - A pod stuck terminating or a volume stuck attached: find what holds it (a finalizer, the CSI driver's
          attacher); once it is gone the next run lifts the taint and the cordon.
        - To lift them now: `gke-node-drainer uncordon $${metric.label.node} --cluster $${metric.label.cluster}`
          (our cordon only; `--force` also lifts a cordon from before us), and remove our taint by hand:
          `kubectl taint nodes $${metric.label.node} node.kubernetes.io/out-of-service-`.
      EOT
    }

    dead_letters = {
      display_name  = "${var.name}: node events on the dead-letter topic"
      condition     = "undelivered messages on the dead-letter subscription"
      filter        = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.dead_letter_filter}"
      aligner       = "ALIGN_MAX"
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
        cross_series_reducer = "REDUCE_SUM"
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
