# The log sinks publish here; the push subscription below delivers to the event function.
resource "google_pubsub_topic" "events" {
  project                    = var.project_id
  name                       = "${var.name}-node-events"
  message_retention_duration = var.event_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = local.labels

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

# Delivery of the log events to the event function, entirely here: a push to the function's run.app URL
# (what the ingress setting "internal" admits from Pub/Sub in the same project) with an OIDC token of
# the push account, which alone may invoke it; Pub/Sub waits for the answer as long as the function
# may run (the ack deadline is the push request's timeout), redelivers a failure (a 5xx: the function
# raised on a transient error) with the retry policy's backoff, and after the last attempt forwards it
# to the dead-letter topic. The arithmetic of functions.tf holds these numbers below max_event_age_seconds.
resource "google_pubsub_subscription" "events" {
  project                    = var.project_id
  name                       = "${var.name}-node-events-push"
  topic                      = google_pubsub_topic.events.id
  ack_deadline_seconds       = local.event_timeout_seconds
  message_retention_duration = "604800s" # undelivered events wait 7 days, far beyond any event's maximum age
  labels                     = local.labels

  push_config {
    push_endpoint = google_cloudfunctions2_function.events.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.event_push.email
      audience              = google_cloudfunctions2_function.events.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.event_retry_min_delay_seconds}s"
    maximum_backoff = "${var.event_retry_max_delay_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.dead_letter_max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = var.event_retry_min_delay_seconds <= var.event_retry_max_delay_seconds
      error_message = "event_retry_min_delay_seconds (${var.event_retry_min_delay_seconds} s) must not exceed event_retry_max_delay_seconds (${var.event_retry_max_delay_seconds} s)."
    }
  }

  # The first push finds the function invocable and the token mintable; the first dead letter finds
  # the topic open to Pub/Sub.
  depends_on = [
    google_cloud_run_service_iam_member.events_invoker,
    google_service_account_iam_member.pubsub_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Pub/Sub's service agent acknowledges on the subscription what it forwards to the dead-letter topic.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.events.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Where Pub/Sub forwards the log events that every delivery attempt failed.
resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}-node-events-dead-letter"
  message_retention_duration = var.event_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = local.labels

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}

# Keeps dead-lettered events for inspection and replay (pull them, fix, republish to the events topic).
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}-node-events-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = var.event_topic_retention
  retain_acked_messages      = true
  ack_deadline_seconds       = 60
  labels                     = local.labels

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

# Outcome CloudEvents (node.drained, node.drain_failed, node.uncordoned, jobs.cleaned).
resource "google_pubsub_topic" "outcomes" {
  project                    = var.project_id
  name                       = local.outcome_topic_name
  message_retention_duration = var.event_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = local.labels

  depends_on = [google_project_service.required, google_kms_crypto_key_iam_member.service_agents]
}
