# Log-based metrics on the audit records (the dedicated audit log; dry runs excluded), an alert for
# failed or incomplete drains, and a dashboard.

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
      description = "Drains that failed or ended at their deadline with pods left."
      filter      = "jsonPayload.action=(\"drain.incomplete\" OR \"drain.failed\")"
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

  metric_type  = { for key, metric in google_logging_metric.counters : key => "logging.googleapis.com/user/${metric.name}" }
  latency_type = "logging.googleapis.com/user/${google_logging_metric.drain_latency.name}"

  counter_tiles = [
    { title = "Drains by outcome", metric = "drains", group_by = "metric.label.outcome" },
    { title = "Evictions", metric = "evictions", group_by = "metric.label.cluster" },
    { title = "Blocked pods (PDB)", metric = "blocked_pods", group_by = "metric.label.cluster" },
    { title = "Force cleanups", metric = "force_cleanups", group_by = "metric.label.cluster" },
    { title = "Cleaned Jobs", metric = "cleaned_jobs", group_by = "metric.label.cluster" },
  ]
}

resource "google_logging_metric" "counters" {
  for_each = local.counter_metrics

  project     = var.project_id
  name        = "${var.name}/${each.key}"
  description = each.value.description
  filter      = "${local.audit_log_filter} AND ${local.not_dry_run} AND ${each.value.filter}"

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

resource "google_logging_metric" "drain_latency" {
  project         = var.project_id
  name            = "${var.name}/drain_latency"
  description     = "Event to end of drain, in seconds, by outcome and cluster."
  filter          = "${local.audit_log_filter} AND ${local.not_dry_run} AND jsonPayload.action=(\"drain.completed\" OR \"drain.incomplete\")"
  value_extractor = "EXTRACT(jsonPayload.duration_seconds)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "gke-node-drainer drain latency"

    labels {
      key        = "cluster"
      value_type = "STRING"
    }

    labels {
      key        = "outcome"
      value_type = "STRING"
    }
  }

  label_extractors = {
    cluster = "EXTRACT(jsonPayload.cluster)"
    outcome = "REGEXP_EXTRACT(jsonPayload.action, \"^drain\\\\.(.+)$\")"
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 1.5
      scale              = 0.25
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_monitoring_alert_policy" "failed_drains" {
  project               = var.project_id
  display_name          = "${var.name}: drain failed or incomplete"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "A drain failed or ended with pods left"

    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["failed_drains"]}\" AND resource.type=\"global\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.cluster", "metric.label.node"]
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
    content   = <<-EOT
      A drain by gke-node-drainer failed or reached its deadline with pods left on the node.
      The audit records say which pods and which PodDisruptionBudgets blocked it:
      `${local.audit_log_filter} AND jsonPayload.action=("drain.incomplete" OR "drain.failed" OR "pod.blocked")`.
      Check the status with the manual API (`{"action": "status"}`).
    EOT
  }
}

resource "google_monitoring_dashboard" "drainer" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "gke-node-drainer (${var.name})"
    mosaicLayout = {
      columns = 48
      tiles = concat(
        [
          for index, tile in local.counter_tiles : {
            xPos   = (index % 2) * 24
            yPos   = floor(index / 2) * 16
            width  = 24
            height = 16
            widget = {
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
          }
        ],
        [{
          xPos   = (length(local.counter_tiles) % 2) * 24
          yPos   = floor(length(local.counter_tiles) / 2) * 16
          width  = 24
          height = 16
          widget = {
            title = "Drain latency (p50, p95)"
            xyChart = {
              chartOptions = { mode = "COLOR" }
              dataSets = [
                for aligner in ["ALIGN_PERCENTILE_50", "ALIGN_PERCENTILE_95"] : {
                  plotType       = "LINE"
                  legendTemplate = aligner
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter = "metric.type=\"${local.latency_type}\" AND resource.type=\"global\""
                      aggregation = {
                        alignmentPeriod    = "300s"
                        perSeriesAligner   = aligner
                        crossSeriesReducer = "REDUCE_MAX"
                        groupByFields      = ["metric.label.cluster"]
                      }
                    }
                  }
                }
              ]
            }
          }
        }],
      )
    }
  })
}
