output "runtime_service_account_email" {
  description = "The functions' identity: the Kubernetes user the RBAC manifest binds (apply modules/rbac with it in further clusters)."
  value       = google_service_account.runtime.email
}

output "event_function" {
  description = "Name of the event function."
  value       = google_cloudfunctions2_function.events.name
}

output "schedule_url" {
  description = "URL (and ID-token audience) of the scheduled function."
  value       = local.schedule_url
}

output "manual_url" {
  description = "URL (and ID-token audience) of the manual API."
  value       = local.manual_url
}

output "events_topic" {
  description = "The topic the log sinks publish to; publish a sample LogEntry here to check a deployment."
  value       = google_pubsub_topic.events.id
}

output "outcome_topic" {
  description = "The topic that receives outcome CloudEvents."
  value       = google_pubsub_topic.outcomes.id
}

output "dead_letter_topic" {
  description = "Dead-letter topic for log events (attach it with attach_dead_letter_command)."
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

output "attach_dead_letter_command" {
  description = "Shell commands that set the dead-letter topic and the retry backoff on the Eventarc-managed subscription (the provider cannot); with them an event reaches the dead-letter topic before it expires."
  value       = <<-EOT
    SUB=$(gcloud eventarc triggers describe ${basename(google_cloudfunctions2_function.events.event_trigger[0].trigger)} --project ${var.project_id} --location ${var.region} --format='value(transport.pubsub.subscription)')
    gcloud pubsub subscriptions update "$SUB" --project ${var.project_id} --dead-letter-topic=${google_pubsub_topic.dead_letter.id} --max-delivery-attempts=${var.dead_letter_max_delivery_attempts} --min-retry-delay=10s --max-retry-delay=${var.event_retry_max_delay_seconds}s
    gcloud pubsub subscriptions add-iam-policy-binding "$SUB" --project ${var.project_id} --member=serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com --role=roles/pubsub.subscriber
  EOT
}
