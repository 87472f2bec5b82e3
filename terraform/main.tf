# gke-node-drainer: Compute Engine events about GKE node VMs -> log sink -> Pub/Sub -> Eventarc ->
# the event function, which cordons and drains the node; Cloud Scheduler -> the scheduled function
# (Job cleanup, node recovery); operators -> the manual API function.

locals {
  source_root = coalesce(var.source_dir, "${path.module}/..")

  cluster_projects = toset([for cluster in var.clusters : cluster.project])

  event_function    = "${var.name}-events"
  schedule_function = "${var.name}-schedule"
  manual_function   = "${var.name}-api"

  # The cloudfunctions.net URL of a 2nd-gen function is known before it exists, which lets a function
  # check ID tokens for its own URL as the audience without a dependency cycle.
  function_base_url = "https://${var.region}-${var.project_id}.cloudfunctions.net"
  schedule_url      = "${local.function_base_url}/${local.schedule_function}"
  manual_url        = "${local.function_base_url}/${local.manual_function}"

  outcome_topic_name = coalesce(var.outcome_topic_name, "${var.name}-outcomes")
  audit_log_name     = "${var.name}-audit"
  audit_log_filter   = "logName=\"projects/${var.project_id}/logs/${local.audit_log_name}\" AND jsonPayload.audit=true"

  sink_filter = templatefile("${path.module}/sink-filter.tftpl", { node_name_regex = var.node_name_regex })

  labels = merge({ app = "gke-node-drainer" }, var.labels)

  # Every function reads the same settings (functions/config.py); each adds what is its own.
  common_env = merge(
    {
      DRAINER_CLUSTERS                   = jsonencode([for c in var.clusters : { name = c.name, project = c.project, location = c.location }])
      DRAINER_DRY_RUN                    = tostring(var.dry_run)
      DRAINER_FORCE_CLEANUP              = tostring(var.force_cleanup)
      DRAINER_COMPUTE_FENCE              = tostring(var.compute_fence)
      DRAINER_OUT_OF_SERVICE_TAINT       = tostring(var.out_of_service_taint)
      DRAINER_MAX_EVENT_AGE_SECONDS      = tostring(var.max_event_age_seconds)
      DRAINER_AUDIT_LOG_NAME             = local.audit_log_name
      DRAINER_OUTCOME_TOPIC              = google_pubsub_topic.outcomes.id
      DRAINER_JOB_TTL_SUCCEEDED_SECONDS  = tostring(var.job_ttl_succeeded_seconds)
      DRAINER_JOB_TTL_FAILED_SECONDS     = tostring(var.job_ttl_failed_seconds)
      DRAINER_ORPHAN_POD_TTL_SECONDS     = tostring(var.orphan_pod_ttl_seconds)
      DRAINER_CLEANUP_NAMESPACES         = join(",", var.cleanup_namespaces)
      DRAINER_CLEANUP_EXCLUDE_NAMESPACES = join(",", var.cleanup_exclude_namespaces)
    },
    { for kind, seconds in var.drain_deadlines : "DRAINER_DEADLINE_${upper(kind)}" => tostring(seconds) },
  )

  # A scheduled run ends cleanly before the function's timeout: cleanup gets what recovery leaves.
  recovery_deadline_seconds = 60
  # Each function's timeout is handed to it (DRAINER_FUNCTION_TIMEOUT_SECONDS): a call bounds its
  # own work so that it finishes, audited, before the platform stops it.
  event_timeout_seconds  = 540
  manual_timeout_seconds = 900

  event_env = {
    DRAINER_FUNCTION_TIMEOUT_SECONDS = tostring(local.event_timeout_seconds)
  }

  schedule_env = {
    DRAINER_FUNCTION_TIMEOUT_SECONDS  = tostring(var.schedule_timeout_seconds)
    DRAINER_HTTP_AUDIENCE             = local.schedule_url
    DRAINER_ALLOWED_CALLERS           = google_service_account.scheduler.email
    DRAINER_RECOVERY_DEADLINE_SECONDS = tostring(local.recovery_deadline_seconds)
    DRAINER_CLEANUP_BUDGET_SECONDS    = tostring(var.schedule_timeout_seconds - local.recovery_deadline_seconds - 60)
  }

  manual_env = {
    DRAINER_FUNCTION_TIMEOUT_SECONDS = tostring(local.manual_timeout_seconds)
    DRAINER_HTTP_AUDIENCE            = local.manual_url
    DRAINER_ALLOWED_CALLERS          = join(",", var.allowed_callers)
  }
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "required" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "container.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
