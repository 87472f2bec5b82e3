# One job per action. A retried attempt carries the same X-CloudScheduler-ScheduleTime and is harmless.
resource "google_cloud_scheduler_job" "operations" {
  for_each = var.schedules

  project          = var.project_id
  region           = var.region
  name             = "${var.name}-${each.key}"
  description      = "gke-node-drainer: ${each.key}"
  schedule         = each.value
  time_zone        = var.schedule_time_zone
  attempt_deadline = "${var.schedule_timeout_seconds}s"

  retry_config {
    retry_count          = 1
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = local.schedule_url
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ action = each.key }))

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.schedule_url
    }
  }

  depends_on = [google_cloud_run_service_iam_member.schedule_invoker]
}
