output "runtime_service_account_email" {
  description = "The Kubernetes user the RBAC manifest binds."
  value       = module.drainer.runtime_service_account_email
}

output "events_topic" {
  description = "Publish a sample LogEntry here to check the deployment."
  value       = module.drainer.events_topic
}

output "manual_url" {
  description = "The manual API (ID-token audience)."
  value       = module.drainer.manual_url
}

output "event_subscription" {
  description = "The push subscription that delivers log events to the event function (retry and dead-letter policies)."
  value       = module.drainer.event_subscription
}

output "dead_letter_subscription" {
  description = "Dead-lettered events, to inspect and replay after a fix (README: Operate)."
  value       = module.drainer.dead_letter_subscription
}

output "dashboard_url" {
  description = "The drainer's dashboard in the Google Cloud console."
  value       = module.drainer.dashboard_url
}
