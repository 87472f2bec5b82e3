variable "project_id" {
  description = "Project that hosts the functions, topics, scheduler jobs, metrics and dashboard."
  type        = string
}

variable "region" {
  description = "Region of the functions, the Eventarc trigger and the scheduler jobs."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name (functions, topics, service accounts, metrics)."
  type        = string
  default     = "gke-node-drainer"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,19}$", var.name))
    error_message = "name must be 3 to 20 lowercase letters, digits or hyphens, starting with a letter (service account ids are limited to 30 characters)."
  }
}

variable "clusters" {
  description = "The GKE clusters whose nodes are drained. Node VMs of a cluster must live in the cluster's project."
  type = list(object({
    project  = string
    location = string
    name     = string
  }))

  validation {
    condition     = length(var.clusters) > 0
    error_message = "clusters must name at least one cluster."
  }

  validation {
    condition     = length(distinct([for c in var.clusters : c.name])) == length(var.clusters)
    error_message = "cluster names must be unique: the functions address clusters by name."
  }
}

variable "node_name_regex" {
  description = "RE2 pattern for the instance names of GKE nodes; the log sink forwards only events about these instances."
  type        = string
  default     = "gk[e3]-[a-z0-9-]+"

  validation {
    condition     = can(regex("^(?:${var.node_name_regex})$", "gke-cluster-pool-0123abcd-x1y2"))
    error_message = "node_name_regex must be a valid RE2 pattern that matches GKE node names such as gke-cluster-pool-0123abcd-x1y2."
  }
}

variable "schedules" {
  description = "Cloud Scheduler cron schedules by action (cleanup, recover or all)."
  type        = map(string)
  default = {
    cleanup = "*/15 * * * *"
    recover = "* * * * *" # a node that returns is not held back (cordoned, tainted) for long
  }

  validation {
    condition     = alltrue([for action in keys(var.schedules) : contains(["cleanup", "recover", "all"], action)])
    error_message = "schedules keys must be cleanup, recover or all."
  }
}

variable "compute_fence" {
  description = "Ask Compute Engine (compute.instances.get, granted by a custom role in each cluster project) whether a node's VM is off: failover within seconds instead of the node-lifecycle controller's ~50 s. false: no grant, only the Node rule."
  type        = bool
  default     = true
}

variable "out_of_service_taint" {
  description = "Taint a node verified down node.kubernetes.io/out-of-service=nodeshutdown:NoExecute so that its ReadWriteOnce volumes detach at once (removed by recovery when the node is back)."
  type        = bool
  default     = true
}

variable "schedule_time_zone" {
  description = "Time zone of the schedules."
  type        = string
  default     = "Etc/UTC"
}

variable "job_ttl_succeeded_seconds" {
  description = "Age, since completion, after which a succeeded Job is deleted."
  type        = number
  default     = 3600

  validation {
    condition     = var.job_ttl_succeeded_seconds >= 0 && var.job_ttl_succeeded_seconds <= 7776000
    error_message = "job_ttl_succeeded_seconds must be between 0 and 7776000 seconds (90 days)."
  }
}

variable "job_ttl_failed_seconds" {
  description = "Age, since failure, after which a failed Job is deleted."
  type        = number
  default     = 86400

  validation {
    condition     = var.job_ttl_failed_seconds >= 0 && var.job_ttl_failed_seconds <= 7776000
    error_message = "job_ttl_failed_seconds must be between 0 and 7776000 seconds (90 days)."
  }
}

variable "orphan_pod_ttl_seconds" {
  description = "Age after which a finished pod whose Job is gone is deleted."
  type        = number
  default     = 3600

  validation {
    condition     = var.orphan_pod_ttl_seconds >= 0 && var.orphan_pod_ttl_seconds <= 7776000
    error_message = "orphan_pod_ttl_seconds must be between 0 and 7776000 seconds (90 days)."
  }
}

variable "cleanup_namespaces" {
  description = "Namespaces the Job cleanup works in; empty means every namespace."
  type        = list(string)
  default     = []
}

variable "cleanup_exclude_namespaces" {
  description = "Namespaces the Job cleanup never touches."
  type        = list(string)
  default     = ["kube-system"]
}

variable "drain_deadlines" {
  description = "Drain deadline in seconds by event kind (preempted, recreate, delete, host_error, guest_terminate, automatic_restart, terminate_on_host_maintenance); unset kinds keep the built-in defaults."
  type        = map(number)
  default     = {}

  validation {
    condition = alltrue([
      for kind in keys(var.drain_deadlines) : contains(
        ["preempted", "recreate", "delete", "host_error", "guest_terminate", "automatic_restart", "terminate_on_host_maintenance"],
        kind,
      )
    ])
    error_message = "drain_deadlines keys must be event kinds: preempted, recreate, delete, host_error, guest_terminate, automatic_restart, terminate_on_host_maintenance."
  }

  validation {
    condition     = alltrue([for seconds in values(var.drain_deadlines) : seconds >= 1 && seconds <= 500])
    error_message = "drain deadlines must be between 1 and 500 seconds, inside the event function's 540 s timeout."
  }
}

variable "dry_run" {
  description = "Decide and audit everything, change nothing (every write is sent with dryRun=All)."
  type        = bool
  default     = false
}

variable "force_cleanup" {
  description = "Force-delete pods left on a node once it is verified down (fenced)."
  type        = bool
  default     = true
}

variable "allowed_callers" {
  description = "Emails allowed to call the manual API (checked in the function on top of IAM); empty allows every IAM invoker."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.allowed_callers : can(regex("^[^@\\s]+@[^@\\s]+$", email))])
    error_message = "allowed_callers must be email addresses."
  }
}

variable "manual_invokers" {
  description = "IAM members (user:, group:, serviceAccount:) granted run.invoker on the manual API function."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.manual_invokers : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "manual_invokers must name principals; allUsers and allAuthenticatedUsers are not allowed."
  }

  validation {
    condition     = alltrue([for member in var.manual_invokers : can(regex("^(user|group|serviceAccount|domain):.+$", member))])
    error_message = "manual_invokers entries look like user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN."
  }
}

variable "manual_ingress_settings" {
  description = "Ingress of the manual API: ALLOW_INTERNAL_ONLY (from the VPC), ALLOW_INTERNAL_AND_GCLB, or ALLOW_ALL (still IAM- and token-checked)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.manual_ingress_settings)
    error_message = "manual_ingress_settings must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "outcome_topic_name" {
  description = "Name of the Pub/Sub topic that receives the outcome CloudEvents; null gives NAME-outcomes."
  type        = string
  default     = null
}

variable "event_topic_retention" {
  description = "How long the log-event topic keeps messages, so that a subscription can be replayed with seek."
  type        = string
  default     = "604800s"
}

variable "dead_letter_max_delivery_attempts" {
  description = "Delivery attempts before a log event goes to the dead-letter topic (set by attach_dead_letter_command). With the retry delay, the event function's timeout and the sink's delay, the last attempt must end before max_event_age_seconds (checked at plan: README, the dead-letter arithmetic)."
  type        = number
  default     = 7

  validation {
    condition     = var.dead_letter_max_delivery_attempts >= 5 && var.dead_letter_max_delivery_attempts <= 100 && floor(var.dead_letter_max_delivery_attempts) == var.dead_letter_max_delivery_attempts
    error_message = "dead_letter_max_delivery_attempts must be a whole number between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "event_retry_max_delay_seconds" {
  description = "Longest backoff between two deliveries of a log event that failed (the Eventarc subscription's retry policy, set by attach_dead_letter_command; Pub/Sub's default is 600 s). Each delivery attempt may also last the event function's 540 s timeout."
  type        = number
  default     = 300

  validation {
    condition     = var.event_retry_max_delay_seconds >= 10 && var.event_retry_max_delay_seconds <= 600 && floor(var.event_retry_max_delay_seconds) == var.event_retry_max_delay_seconds
    error_message = "event_retry_max_delay_seconds must be a whole number of seconds between 10 (the shortest backoff the attach command sets) and 600 (Pub/Sub's limit)."
  }
}

variable "max_event_age_seconds" {
  description = "Events older than this (LogEntry timestamp to handling) are not acted on: audited event.stale (a replay) or event.expired (lost to failed deliveries). Every event must reach the dead-letter topic before this age (checked at plan)."
  type        = number
  default     = 7200

  validation {
    condition     = var.max_event_age_seconds >= 60 && var.max_event_age_seconds <= 86400 && floor(var.max_event_age_seconds) == var.max_event_age_seconds
    error_message = "max_event_age_seconds must be a whole number of seconds between 60 and 86400 (Eventarc keeps an undelivered event for 24 h)."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key for the topics and the source bucket; null uses Google-managed keys."
  type        = string
  default     = null
}

variable "event_max_instances" {
  description = "Maximum instances of the event function (one drain per instance at a time)."
  type        = number
  default     = 50
}

variable "schedule_timeout_seconds" {
  description = "Timeout of the scheduled function; the cleanup budget is derived from it so a run ends cleanly."
  type        = number
  default     = 900

  validation {
    condition     = var.schedule_timeout_seconds >= 180 && var.schedule_timeout_seconds <= 1800
    error_message = "schedule_timeout_seconds must be between 180 and 1800 (Cloud Scheduler's longest attempt deadline)."
  }
}

variable "memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "512Mi"
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids for the alerts (failed drains, failed force cleanups, nodes held too long, failing recoveries, dead letters, expired events, fence storms)."
  type        = list(string)
  default     = []
}

variable "recovery_alert_after_seconds" {
  description = "How long a node may stay held by us (cordoned or tainted, node.held's held_seconds since our cordon) or its scheduled recovery keep failing (node.recovery_failed) before an alert fires."
  type        = number
  default     = 1800

  validation {
    condition     = var.recovery_alert_after_seconds >= 0 && var.recovery_alert_after_seconds <= 86400 && floor(var.recovery_alert_after_seconds) == var.recovery_alert_after_seconds
    error_message = "recovery_alert_after_seconds must be a whole number of seconds between 0 and 86400."
  }
}

variable "apply_rbac" {
  description = "Apply the RBAC manifest with the (default) kubernetes provider the caller configures; use modules/rbac for more clusters."
  type        = bool
  default     = true
}

variable "source_dir" {
  description = "Directory that holds main.py, functions/ and requirements.txt; null means the repository this module lives in."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}
