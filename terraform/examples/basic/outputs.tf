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

output "attach_dead_letter_command" {
  description = "Run once after apply to attach the dead-letter topic to Eventarc's subscription."
  value       = module.drainer.attach_dead_letter_command
}

output "dead_letter_subscription" {
  description = "Dead-lettered events, to inspect and replay after a fix (README: Operate)."
  value       = module.drainer.dead_letter_subscription
}
