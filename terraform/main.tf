# gke-node-drainer: Compute Engine events about GKE node VMs -> log sink -> Pub/Sub -> a push
# subscription (OIDC, retry policy, dead-letter policy) -> the event function, which cordons and drains
# the node; Cloud Scheduler -> the scheduled function (Job cleanup, node recovery); operators -> the
# manual API function.

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

  # Pub/Sub's service agent: it signs the push subscription's OIDC tokens, forwards to the dead-letter
  # topic, and encrypts with kms_key_name.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # A cluster entry may name its control-plane endpoint (a private IP, or the DNS-based endpoint
  # gke-....gke.goog) instead of reading the public one from the Container API. The DNS-based endpoint
  # presents a publicly trusted certificate: with no CA given, the functions verify it against the
  # public roots.
  clusters = [
    for c in var.clusters : merge(c, {
      endpoint_url = c.endpoint == null ? null : (startswith(c.endpoint, "https://") ? c.endpoint : "https://${c.endpoint}")
      endpoint_dns = c.endpoint == null ? false : can(regex("[.]gke[.]goog(:[0-9]+)?$", c.endpoint))
    })
  ]
  dns_endpoint_projects = toset([for c in local.clusters : c.project if c.endpoint_dns])
  private_ip_endpoint_clusters = [
    for c in local.clusters : c.name if c.endpoint != null && !c.endpoint_dns
  ]
  clusters_setting = jsonencode([
    for c in local.clusters : {
      for key, value in {
        name     = c.name
        project  = c.project
        location = c.location
        endpoint = c.endpoint_url
        ca_data  = c.ca_certificate
      } : key => value if value != null
    }
  ])

  # The functions' settings (functions/decisions/settings.py, the SETTINGS table): the module sets these
  # from its typed variables and from what it creates; extra_env may set only the others
  # (local.extra_env_settings); tests/unit/test_terraform.py keeps both in step with the table.
  settings_env = {
    DRAINER_CLUSTERS                   = local.clusters_setting
    DRAINER_DRY_RUN                    = tostring(var.dry_run)
    DRAINER_FORCE_CLEANUP              = tostring(var.force_cleanup)
    DRAINER_COMPUTE_FENCE              = tostring(var.compute_fence)
    DRAINER_OUT_OF_SERVICE_TAINT       = tostring(var.out_of_service_taint)
    DRAINER_MAX_EVENT_AGE_SECONDS      = tostring(var.max_event_age_seconds)
    DRAINER_EVICTION_CONCURRENCY       = tostring(var.eviction_concurrency)
    DRAINER_API_TIMEOUT_SECONDS        = tostring(var.kubernetes_api_timeout_seconds)
    DRAINER_FENCE_STORM_SHARE          = tostring(var.fence_storm_share)
    DRAINER_FENCE_STORM_WINDOW_SECONDS = tostring(var.fence_storm_window_seconds)
    DRAINER_AUDIT_LOG_NAME             = local.audit_log_name
    DRAINER_OUTCOME_TOPIC              = google_pubsub_topic.outcomes.id
    DRAINER_JOB_TTL_SUCCEEDED_SECONDS  = tostring(var.job_ttl_succeeded_seconds)
    DRAINER_JOB_TTL_FAILED_SECONDS     = tostring(var.job_ttl_failed_seconds)
    DRAINER_ORPHAN_POD_TTL_SECONDS     = tostring(var.orphan_pod_ttl_seconds)
    DRAINER_CLEANUP_NAMESPACES         = join(",", var.cleanup_namespaces)
    DRAINER_CLEANUP_EXCLUDE_NAMESPACES = join(",", var.cleanup_exclude_namespaces)
    DRAINER_CLEANUP_CRONJOB_JOBS       = tostring(var.cleanup_cronjob_jobs)
    DRAINER_CLEANUP_OTHER_PODS         = tostring(var.cleanup_other_pods)
    DRAINER_CLEANUP_CONCURRENCY        = tostring(var.cleanup_concurrency)
    DRAINER_CLEANUP_PAGE_SIZE          = tostring(var.cleanup_page_size)
  }
  deadline_env = { for kind, seconds in var.drain_deadlines : "DRAINER_DEADLINE_${upper(kind)}" => tostring(seconds) }

  # What extra_env may set: the settings the module leaves alone (API endpoints for tests and
  # emulators, the outcome events' type prefix). Anything the module sets, or the code does not read,
  # is refused at plan.
  extra_env_settings = [
    "DRAINER_COMPUTE_API_ENDPOINT",
    "DRAINER_CONTAINER_API_ENDPOINT",
    "DRAINER_ID_TOKEN_CERTS_URL",
    "DRAINER_LOGGING_API_ENDPOINT",
    "DRAINER_OUTCOME_TYPE_PREFIX",
  ]
  extra_env_keys    = keys(var.extra_env)
  extra_env_refused = [for key in local.extra_env_keys : key if !contains(local.extra_env_settings, key)]

  # Every function reads the same settings; each adds what is its own.
  common_env = merge(var.extra_env, local.settings_env, local.deadline_env)

  # Each function's timeout is handed to it (DRAINER_FUNCTION_TIMEOUT_SECONDS): a call bounds its
  # own work so that it finishes, audited, before the platform stops it. The event function's is also
  # the push subscription's ack deadline, the longest Pub/Sub waits for an answer (at most 600 s).
  event_timeout_seconds  = 540
  manual_timeout_seconds = 900

  event_env = {
    DRAINER_FUNCTION_TIMEOUT_SECONDS = tostring(local.event_timeout_seconds)
  }

  # A scheduled run ends cleanly before the function's timeout: cleanup gets what recovery leaves,
  # less a minute for the audit records.
  schedule_env = {
    DRAINER_FUNCTION_TIMEOUT_SECONDS  = tostring(var.schedule_timeout_seconds)
    DRAINER_HTTP_AUDIENCE             = local.schedule_url
    DRAINER_ALLOWED_CALLERS           = google_service_account.scheduler.email
    DRAINER_RECOVERY_DEADLINE_SECONDS = tostring(var.recovery_deadline_seconds)
    DRAINER_CLEANUP_BUDGET_SECONDS    = tostring(var.schedule_timeout_seconds - var.recovery_deadline_seconds - 60)
  }

  manual_env = {
    DRAINER_FUNCTION_TIMEOUT_SECONDS = tostring(local.manual_timeout_seconds)
    DRAINER_HTTP_AUDIENCE            = local.manual_url
    DRAINER_ALLOWED_CALLERS          = join(",", var.allowed_callers)
  }

  # Egress to the VPC, for clusters reached on a private IP: Direct VPC egress (vpc_access) or a
  # Serverless VPC Access connector (vpc_connector), never both (checked at plan).
  direct_vpc_egress = var.vpc_access == null ? null : "VPC_EGRESS_${var.vpc_access.egress}"
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
