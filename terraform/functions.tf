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

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

# Named by content: a change of the code is a new object and a new build.
resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "source/${data.archive_file.source.output_sha256}.zip"
  source = data.archive_file.source.output_path
}

# An event must reach the dead-letter topic before it is too old to act on (max_event_age_seconds: then it
# is only audited event.expired). Worst case from the LogEntry's timestamp to the dead-letter topic: the
# sink's delivery delay, then every delivery attempt lasts the event function's whole timeout (also the
# push subscription's ack deadline, so Pub/Sub never waits longer) and is followed by the longest backoff
# of the push subscription's retry policy (pubsub.tf). README: the arithmetic.
locals {
  # Cloud Logging routes to Pub/Sub in near real time; this allows for ingestion and routing delays.
  sink_delay_allowance_seconds = 600
  dead_letter_worst_case_seconds = (
    local.sink_delay_allowance_seconds +
    var.dead_letter_max_delivery_attempts * (local.event_timeout_seconds + var.event_retry_max_delay_seconds)
  )
}

# Compute Engine events, pushed by the subscription google_pubsub_subscription.events (pubsub.tf) to this
# function's URL: no event trigger, so Cloud Functions deploys it HTTP-triggered; on_node_event is
# registered as a CloudEvent function (its decorator wins over the signature type of the deployment) and
# functions-framework turns the raw push body into the messagePublished CloudEvent. A raised exception
# (a transient failure) answers 500, so Pub/Sub redelivers; a malformed event is acknowledged and audited.
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
    vpc_connector                    = try(var.vpc_connector.name, null)
    vpc_connector_egress_settings    = try(var.vpc_connector.egress, null)
    direct_vpc_egress                = local.direct_vpc_egress

    dynamic "direct_vpc_network_interface" {
      for_each = var.vpc_access == null ? [] : [var.vpc_access]
      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
        tags       = direct_vpc_network_interface.value.network_tags
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.dead_letter_worst_case_seconds < var.max_event_age_seconds
      error_message = "An event could expire before it reaches the dead-letter topic: ${local.sink_delay_allowance_seconds} s sink delay + ${var.dead_letter_max_delivery_attempts} attempts x (${local.event_timeout_seconds} s function timeout + ${var.event_retry_max_delay_seconds} s longest backoff) = ${local.dead_letter_worst_case_seconds} s, not below max_event_age_seconds = ${var.max_event_age_seconds} s. Lower dead_letter_max_delivery_attempts (at least 5) or event_retry_max_delay_seconds, or raise max_event_age_seconds."
    }

    precondition {
      condition     = length(local.extra_env_refused) == 0
      error_message = "extra_env may set only ${join(", ", local.extra_env_settings)}; refused: ${join(", ", local.extra_env_refused)} (the module sets it itself, from a typed variable or from what it creates, or the functions read no such setting)."
    }

    precondition {
      condition     = var.vpc_access == null || var.vpc_connector == null
      error_message = "vpc_access (Direct VPC egress) and vpc_connector (a Serverless VPC Access connector) exclude each other: set one."
    }

    precondition {
      condition     = length(local.private_ip_endpoint_clusters) == 0 || var.vpc_access != null || var.vpc_connector != null
      error_message = "The clusters ${join(", ", local.private_ip_endpoint_clusters)} are reached on a private IP: set vpc_access (Direct VPC egress) or vpc_connector, or use their DNS-based endpoint."
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
    vpc_connector                  = try(var.vpc_connector.name, null)
    vpc_connector_egress_settings  = try(var.vpc_connector.egress, null)
    direct_vpc_egress              = local.direct_vpc_egress

    dynamic "direct_vpc_network_interface" {
      for_each = var.vpc_access == null ? [] : [var.vpc_access]
      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
        tags       = direct_vpc_network_interface.value.network_tags
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.schedule_timeout_seconds - var.recovery_deadline_seconds - 60 >= 60
      error_message = "The scheduled cleanup would get ${var.schedule_timeout_seconds - var.recovery_deadline_seconds - 60} s: schedule_timeout_seconds (${var.schedule_timeout_seconds} s) less recovery_deadline_seconds (${var.recovery_deadline_seconds} s) less 60 s must leave it at least 60 s."
    }
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
    vpc_connector                  = try(var.vpc_connector.name, null)
    vpc_connector_egress_settings  = try(var.vpc_connector.egress, null)
    direct_vpc_egress              = local.direct_vpc_egress

    dynamic "direct_vpc_network_interface" {
      for_each = var.vpc_access == null ? [] : [var.vpc_access]
      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
        tags       = direct_vpc_network_interface.value.network_tags
      }
    }
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
  member   = google_service_account.event_push.member
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
