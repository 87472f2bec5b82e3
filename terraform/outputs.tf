output "event_function" {
  description = "Name of the event function."
  value       = google_cloudfunctions2_function.events.name
}

output "event_function_url" {
  description = "URL of the event function (its run.app URL): the push subscription's endpoint and OIDC audience."
  value       = google_cloudfunctions2_function.events.service_config[0].uri
}

output "schedule_function" {
  description = "Name of the scheduled function."
  value       = google_cloudfunctions2_function.schedule.name
}

output "schedule_url" {
  description = "URL (and ID-token audience) of the scheduled function."
  value       = local.schedule_url
}

output "manual_function" {
  description = "Name of the manual API function."
  value       = google_cloudfunctions2_function.manual.name
}

output "manual_url" {
  description = "URL (and ID-token audience) of the manual API."
  value       = local.manual_url
}

output "runtime_service_account_email" {
  description = "The functions' identity: the Kubernetes user the RBAC manifest binds (apply modules/rbac with it in further clusters)."
  value       = google_service_account.runtime.email
}

output "service_account_emails" {
  description = "Every service account the module creates, by role: runtime (the functions), scheduler (Cloud Scheduler's OIDC tokens), event_push (the push subscription's OIDC tokens), build (Cloud Build)."
  value = {
    runtime    = google_service_account.runtime.email
    scheduler  = google_service_account.scheduler.email
    event_push = google_service_account.event_push.email
    build      = google_service_account.build.email
  }
}

output "custom_role_ids" {
  description = "The custom roles granted to the runtime account, by project: cluster_get (container.clusters.get, and container.clusters.connect where a DNS-based endpoint is used) and instance_get (compute.instances.get; absent when compute_fence is false)."
  value = {
    for project in local.cluster_projects : project => {
      cluster_get  = google_project_iam_custom_role.cluster_reader[project].id
      instance_get = try(google_project_iam_custom_role.instance_reader[project].id, null)
    }
  }
}

output "events_topic" {
  description = "The topic the log sinks publish to; publish a sample LogEntry here to check a deployment."
  value       = google_pubsub_topic.events.id
}

output "event_subscription" {
  description = "The push subscription that delivers the log events to the event function, with its retry and dead-letter policies."
  value       = google_pubsub_subscription.events.id
}

output "outcome_topic" {
  description = "The topic that receives outcome CloudEvents."
  value       = google_pubsub_topic.outcomes.id
}

output "dead_letter_topic" {
  description = "Where the push subscription forwards log events whose every delivery failed."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "The subscription that keeps dead-lettered events, to inspect and replay them."
  value       = google_pubsub_subscription.dead_letter.id
}

output "sink_filter" {
  description = "The log sink filter."
  value       = local.sink_filter
}

output "sink_writer_identities" {
  description = "Writer identity of each log sink, by project."
  value       = { for project, sink in google_logging_project_sink.node_events : project => sink.writer_identity }
}

output "dashboard_id" {
  description = "The Cloud Monitoring dashboard (projects/NUMBER/dashboards/ID)."
  value       = google_monitoring_dashboard.drainer.id
}

output "dashboard_url" {
  description = "The dashboard in the Google Cloud console."
  value       = "https://console.cloud.google.com/monitoring/dashboards/custom/${basename(google_monitoring_dashboard.drainer.id)}?project=${var.project_id}"
}
