variable "project_id" {
  description = "Project for the functions and everything around them."
  type        = string
}

variable "region" {
  description = "Region of the functions."
  type        = string
}

variable "cluster" {
  description = "The GKE cluster to protect."
  type = object({
    project  = string
    location = string
    name     = string
  })
}

variable "schedules" {
  description = "Cron schedules by action (cleanup, recover, all)."
  type        = map(string)
  default = {
    cleanup = "*/15 * * * *"
    recover = "*/5 * * * *"
  }
}

variable "job_ttl_succeeded_seconds" {
  description = "Age after which a succeeded Job is deleted."
  type        = number
  default     = 3600
}

variable "job_ttl_failed_seconds" {
  description = "Age after which a failed Job is deleted."
  type        = number
  default     = 86400
}

variable "allowed_callers" {
  description = "Emails allowed to call the manual API."
  type        = list(string)
  default     = []
}

variable "manual_invokers" {
  description = "IAM members allowed to invoke the manual API."
  type        = list(string)
  default     = []
}

variable "outcome_topic_name" {
  description = "Outcome topic name; null gives gke-node-drainer-outcomes."
  type        = string
  default     = null
}

variable "notification_channels" {
  description = "Notification channels for the failed-drain alert."
  type        = list(string)
  default     = []
}
