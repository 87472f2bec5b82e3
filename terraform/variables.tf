variable "project_id" {
  description = "Project that hosts the functions, topics, scheduler jobs, metrics and dashboard."
  type        = string
}

variable "region" {
  description = "Region of the functions and the scheduler jobs."
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
  description = "The GKE clusters whose nodes are drained. Node VMs of a cluster must live in the cluster's project. endpoint (optional) is the control plane's address when it is not the public endpoint: a private IP (google_container_cluster's private_cluster_config[0].private_endpoint; needs vpc_access or vpc_connector, and ca_certificate: master_auth[0].cluster_ca_certificate) or the DNS-based endpoint (control_plane_endpoints_config[0].dns_endpoint_config[0].endpoint, gke-....gke.goog: reachable wherever Google APIs are, publicly trusted, so no CA; the runtime account also gets container.clusters.connect). Unset: the functions read the endpoint and CA from the Container API."
  type = list(object({
    project        = string
    location       = string
    name           = string
    endpoint       = optional(string)
    ca_certificate = optional(string)
  }))

  validation {
    condition     = length(var.clusters) > 0
    error_message = "clusters must name at least one cluster."
  }

  validation {
    condition     = length(distinct([for c in var.clusters : c.name])) == length(var.clusters)
    error_message = "cluster names must be unique: the functions address clusters by name."
  }

  validation {
    condition     = alltrue([for c in var.clusters : c.endpoint == null || can(regex("^(https://)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?$", c.endpoint))])
    error_message = "a cluster's endpoint is a host name or IP address (optionally https:// and a port), e.g. 10.0.0.2 or gke-0123456789abcdef0123456789abcdef-123456789012.europe-west4.gke.goog."
  }

  validation {
    condition     = alltrue([for c in var.clusters : c.endpoint != null || c.ca_certificate == null])
    error_message = "a cluster's ca_certificate goes with its endpoint: without an endpoint both come from the Container API."
  }

  validation {
    condition     = alltrue([for c in var.clusters : c.endpoint == null || c.ca_certificate != null || can(regex("[.]gke[.]goog(:[0-9]+)?$", c.endpoint))])
    error_message = "a cluster reached on a private IP needs its ca_certificate (google_container_cluster's master_auth[0].cluster_ca_certificate, base64 PEM); only the DNS-based endpoint (*.gke.goog) does without."
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
  description = "Delivery attempts of the push subscription before a log event goes to the dead-letter topic. With the retry backoff, the event function's timeout and the sink's delay, the last attempt must end before max_event_age_seconds (checked at plan: README, the dead-letter arithmetic)."
  type        = number
  default     = 7

  validation {
    condition     = var.dead_letter_max_delivery_attempts >= 5 && var.dead_letter_max_delivery_attempts <= 100 && floor(var.dead_letter_max_delivery_attempts) == var.dead_letter_max_delivery_attempts
    error_message = "dead_letter_max_delivery_attempts must be a whole number between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "event_retry_min_delay_seconds" {
  description = "Shortest backoff before a failed log event is delivered again (the push subscription's retry_policy minimum_backoff); the backoff grows from it to event_retry_max_delay_seconds."
  type        = number
  default     = 10

  validation {
    condition     = var.event_retry_min_delay_seconds >= 0 && var.event_retry_min_delay_seconds <= 600 && floor(var.event_retry_min_delay_seconds) == var.event_retry_min_delay_seconds
    error_message = "event_retry_min_delay_seconds must be a whole number of seconds between 0 and 600 (Pub/Sub's limits)."
  }
}

variable "event_retry_max_delay_seconds" {
  description = "Longest backoff between two deliveries of a log event that failed (the push subscription's retry_policy maximum_backoff; Pub/Sub's default is 600 s); at least event_retry_min_delay_seconds. Each delivery attempt may also last the event function's 540 s timeout."
  type        = number
  default     = 300

  validation {
    condition     = var.event_retry_max_delay_seconds >= 0 && var.event_retry_max_delay_seconds <= 600 && floor(var.event_retry_max_delay_seconds) == var.event_retry_max_delay_seconds
    error_message = "event_retry_max_delay_seconds must be a whole number of seconds between 0 and 600 (Pub/Sub's limits)."
  }
}

variable "max_event_age_seconds" {
  description = "Events older than this (LogEntry timestamp to handling) are not acted on: audited event.stale (a replay) or event.expired (lost to failed deliveries). Every event must reach the dead-letter topic before this age (checked at plan)."
  type        = number
  default     = 7200

  validation {
    condition     = var.max_event_age_seconds >= 60 && var.max_event_age_seconds <= 86400 && floor(var.max_event_age_seconds) == var.max_event_age_seconds
    error_message = "max_event_age_seconds must be a whole number of seconds between 60 and 86400 (a day: an older Compute Engine event says nothing about the node as it is now)."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) for the topics and the source bucket, in the bucket's location (region); null uses Google-managed keys. The module grants the Pub/Sub and Cloud Storage service agents roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be a key's resource name: projects/PROJECT/locations/LOCATION/keyRings/RING/cryptoKeys/KEY."
  }
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
  description = "Apply the RBAC manifest through the kubernetes provider configuration passed as kubernetes.rbac (providers = { kubernetes.rbac = kubernetes.CLUSTER }; pass one even when false: it is then unused). For more clusters, use modules/rbac."
  type        = bool
  default     = true
}

variable "role_id_suffix" {
  description = "Suffix of the custom role IDs (NAME_cluster_get_SUFFIX, NAME_instance_get_SUFFIX); null draws a random one, kept in the state. IAM reserves a deleted custom role's ID for up to 37 days (7 days undeletable, then its permanent deletion), so an apply after a destroy needs a new suffix: the random one is drawn anew after a destroy."
  type        = string
  default     = null

  validation {
    condition     = var.role_id_suffix == null || can(regex("^[a-zA-Z0-9_]{1,16}$", var.role_id_suffix))
    error_message = "role_id_suffix must be 1 to 16 letters, digits or underscores."
  }
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

variable "eviction_concurrency" {
  description = "Parallel evictions per drain (DRAINER_EVICTION_CONCURRENCY)."
  type        = number
  default     = 32

  validation {
    condition     = var.eviction_concurrency >= 1 && var.eviction_concurrency <= 500 && floor(var.eviction_concurrency) == var.eviction_concurrency
    error_message = "eviction_concurrency must be a whole number between 1 and 500."
  }
}

variable "kubernetes_api_timeout_seconds" {
  description = "Timeout of one Kubernetes API request (DRAINER_API_TIMEOUT_SECONDS)."
  type        = number
  default     = 10

  validation {
    condition     = var.kubernetes_api_timeout_seconds >= 0.5 && var.kubernetes_api_timeout_seconds <= 120
    error_message = "kubernetes_api_timeout_seconds must be between 0.5 and 120 seconds."
  }
}

variable "fence_storm_share" {
  description = "When Compute Engine cannot answer and the Node rule is the only signal, at most this share of a cluster's nodes (at least one) is fenced within fence_storm_window_seconds; beyond it drains stay graceful, audited fence.storm_held (DRAINER_FENCE_STORM_SHARE)."
  type        = number
  default     = 0.1

  validation {
    condition     = var.fence_storm_share >= 0 && var.fence_storm_share <= 1
    error_message = "fence_storm_share must be between 0 and 1."
  }
}

variable "fence_storm_window_seconds" {
  description = "The window of the storm cap (DRAINER_FENCE_STORM_WINDOW_SECONDS)."
  type        = number
  default     = 600

  validation {
    condition     = var.fence_storm_window_seconds >= 60 && var.fence_storm_window_seconds <= 86400
    error_message = "fence_storm_window_seconds must be between 60 and 86400 seconds."
  }
}

variable "cleanup_cronjob_jobs" {
  description = "Also clean finished Jobs owned by CronJobs (by default a CronJob's history limits govern its Jobs) (DRAINER_CLEANUP_CRONJOB_JOBS)."
  type        = bool
  default     = false
}

variable "cleanup_other_pods" {
  description = "Also sweep finished pods not owned by a Job (DRAINER_CLEANUP_OTHER_PODS)."
  type        = bool
  default     = false
}

variable "cleanup_concurrency" {
  description = "Parallel deletes of the Job cleanup (DRAINER_CLEANUP_CONCURRENCY)."
  type        = number
  default     = 32

  validation {
    condition     = var.cleanup_concurrency >= 1 && var.cleanup_concurrency <= 500 && floor(var.cleanup_concurrency) == var.cleanup_concurrency
    error_message = "cleanup_concurrency must be a whole number between 1 and 500."
  }
}

variable "cleanup_page_size" {
  description = "List page size of the Job cleanup (DRAINER_CLEANUP_PAGE_SIZE)."
  type        = number
  default     = 500

  validation {
    condition     = var.cleanup_page_size >= 1 && var.cleanup_page_size <= 5000 && floor(var.cleanup_page_size) == var.cleanup_page_size
    error_message = "cleanup_page_size must be a whole number between 1 and 5000."
  }
}

variable "recovery_deadline_seconds" {
  description = "Time one scheduled recovery force-cleanup may take (DRAINER_RECOVERY_DEADLINE_SECONDS); the scheduled cleanup gets schedule_timeout_seconds less this less 60 s, at least 60 s (checked at plan)."
  type        = number
  default     = 60

  validation {
    condition     = var.recovery_deadline_seconds >= 1 && var.recovery_deadline_seconds <= 1800
    error_message = "recovery_deadline_seconds must be between 1 and 1800 seconds."
  }
}

variable "extra_env" {
  description = "Further settings of the functions (README: configuration) that no typed variable sets: DRAINER_COMPUTE_API_ENDPOINT, DRAINER_CONTAINER_API_ENDPOINT, DRAINER_ID_TOKEN_CERTS_URL, DRAINER_LOGGING_API_ENDPOINT, DRAINER_OUTCOME_TYPE_PREFIX. A key the module sets itself (through a typed variable or from what it creates), or one the functions do not read, is refused at plan."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.extra_env) : can(regex("^DRAINER_[A-Z0-9_]+$", key))])
    error_message = "extra_env keys are the functions' settings, DRAINER_ and upper-case letters, digits or underscores."
  }
}

variable "vpc_access" {
  description = "Direct VPC egress for the functions (recommended to reach clusters on a private IP): the network and subnetwork (names or self links; the subnet needs free addresses for twice the instances), optional network tags, and egress PRIVATE_RANGES_ONLY (default: only RFC 1918 destinations go through the VPC) or ALL_TRAFFIC (then the subnet needs Private Google Access or Cloud NAT). Exclusive with vpc_connector. Needs google provider 7.21 or later."
  type = object({
    network      = string
    subnetwork   = string
    network_tags = optional(list(string), [])
    egress       = optional(string, "PRIVATE_RANGES_ONLY")
  })
  default = null

  validation {
    condition     = var.vpc_access == null || contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], try(var.vpc_access.egress, ""))
    error_message = "vpc_access.egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}

variable "vpc_connector" {
  description = "A Serverless VPC Access connector for the functions, when one already serves the project (projects/P/locations/REGION/connectors/NAME, in the functions' region), and egress PRIVATE_RANGES_ONLY (default) or ALL_TRAFFIC. Exclusive with vpc_access."
  type = object({
    name   = string
    egress = optional(string, "PRIVATE_RANGES_ONLY")
  })
  default = null

  validation {
    condition     = var.vpc_connector == null || can(regex("^projects/[^/]+/locations/[^/]+/connectors/[^/]+$", try(var.vpc_connector.name, "")))
    error_message = "vpc_connector.name must be projects/PROJECT/locations/REGION/connectors/NAME."
  }

  validation {
    condition     = var.vpc_connector == null || contains(["PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"], try(var.vpc_connector.egress, ""))
    error_message = "vpc_connector.egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC."
  }
}
