# The deployed source is exactly main.py, the functions package and requirements.txt, the compiled runtime
# lock (every package pinned with hashes; Cloud Build's pip installs it in hash-checking mode).
data "archive_file" "source" {
  type        = "zip"
  output_path = "${path.root}/.terraform/${var.name}-source.zip"

  dynamic "source" {
    for_each = setunion(["main.py", "requirements.txt"], fileset(local.source_root, "functions/**/*.py"))
    content {
      filename = source.value
      content  = file("${local.source_root}/${source.value}")
    }
  }
}

resource "google_storage_bucket" "source" {
  # checkov:skip=CKV_GCP_62: the bucket holds only the function source archives, written by Terraform and read by Cloud Build; reads and writes are recorded by Cloud Audit Logs (Data Access for Cloud Storage), not by legacy usage logs that would need a second bucket
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  # Replaced archives stay as noncurrent versions for a month: a rollback can rebuild from them.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_project_service.required]
}

# Named by content: a change of the code is a new object and a new build.
resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "source/${data.archive_file.source.output_sha256}.zip"
  source = data.archive_file.source.output_path
}

# An event must reach the dead-letter topic before it is too old to act on (max_event_age_seconds: then it
# is only audited event.expired). Worst case from the LogEntry's timestamp to the dead-letter topic: the
# sink's delivery delay, then every delivery attempt lasts the event function's whole timeout and is
# followed by the longest backoff (Pub/Sub's retry policy on the Eventarc subscription, which Terraform
# cannot set: attach_dead_letter_command sets it with the dead-letter policy). README: the arithmetic.
locals {
  # Cloud Logging routes to Pub/Sub in near real time; this allows for ingestion and routing delays.
  sink_delay_allowance_seconds = 600
  dead_letter_worst_case_seconds = (
    local.sink_delay_allowance_seconds +
    var.dead_letter_max_delivery_attempts * (local.event_timeout_seconds + var.event_retry_max_delay_seconds)
  )
}

# Compute Engine events, from the log sink's topic through Eventarc; a raised exception (a transient
# failure) makes Pub/Sub redeliver, a malformed event is acknowledged and audited.
resource "google_cloudfunctions2_function" "events" {
  project     = var.project_id
  location    = var.region
  name        = local.event_function
  description = "Cordons and drains GKE nodes on Compute Engine events."
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = "on_node_event"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.memory
    available_cpu                    = "1"
    timeout_seconds                  = local.event_timeout_seconds
    max_instance_count               = var.event_max_instances
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.runtime.email
    environment_variables            = merge(local.common_env, local.event_env)
  }

  # The trigger takes only RETRY or DO_NOT_RETRY; the backoff bounds and the dead-letter policy live on
  # the Eventarc subscription (attach_dead_letter_command).
  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.events.id
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.eventarc.email
  }

  lifecycle {
    precondition {
      condition     = local.dead_letter_worst_case_seconds < var.max_event_age_seconds
      error_message = "An event could expire before it reaches the dead-letter topic: ${local.sink_delay_allowance_seconds} s sink delay + ${var.dead_letter_max_delivery_attempts} attempts x (${local.event_timeout_seconds} s function timeout + ${var.event_retry_max_delay_seconds} s longest backoff) = ${local.dead_letter_worst_case_seconds} s, not below max_event_age_seconds = ${var.max_event_age_seconds} s. Lower dead_letter_max_delivery_attempts (at least 5) or event_retry_max_delay_seconds, or raise max_event_age_seconds."
    }
  }

  depends_on = [
    google_project_iam_member.build_artifact_writer,
    google_project_iam_member.build_log_writer,
    google_storage_bucket_iam_member.build_source_reader,
  ]
}

# Cloud Scheduler: {"action": "cleanup" | "recover" | "all"}, with an OIDC token of the scheduler account.
resource "google_cloudfunctions2_function" "schedule" {
  project     = var.project_id
  location    = var.region
  name        = local.schedule_function
  description = "Cleans finished Jobs and recovers nodes on a schedule."
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = "on_schedule"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.memory
    available_cpu                  = "1"
    timeout_seconds                = var.schedule_timeout_seconds
    max_instance_count             = 2
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
    environment_variables          = merge(local.common_env, local.schedule_env)
  }

  depends_on = [
    google_project_iam_member.build_artifact_writer,
    google_project_iam_member.build_log_writer,
    google_storage_bucket_iam_member.build_source_reader,
  ]
}

# Operators: drain, uncordon, cleanup, status (dry_run everywhere); IAM invoker plus the caller allow-list.
resource "google_cloudfunctions2_function" "manual" {
  project     = var.project_id
  location    = var.region
  name        = local.manual_function
  description = "Operator API: drain, uncordon, cleanup, status."
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = "on_manual"
    service_account = google_service_account.build.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory               = var.memory
    available_cpu                  = "1"
    timeout_seconds                = local.manual_timeout_seconds
    max_instance_count             = 5
    ingress_settings               = var.manual_ingress_settings
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.runtime.email
    environment_variables          = merge(local.common_env, local.manual_env)
  }

  depends_on = [
    google_project_iam_member.build_artifact_writer,
    google_project_iam_member.build_log_writer,
    google_storage_bucket_iam_member.build_source_reader,
  ]
}

# Invokers: each function's Cloud Run service admits only its own caller. No allUsers anywhere.
resource "google_cloud_run_service_iam_member" "events_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.events.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.eventarc.member
}

resource "google_cloud_run_service_iam_member" "schedule_invoker" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.schedule.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_service_iam_member" "manual_invokers" {
  for_each = toset(var.manual_invokers)

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.manual.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}
