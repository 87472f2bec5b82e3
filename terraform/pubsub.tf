# The log sink publishes here; Eventarc's subscription delivers to the event function, with retries.
resource "google_pubsub_topic" "events" {
  project                    = var.project_id
  name                       = "${var.name}-node-events"
  message_retention_duration = var.event_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = local.labels

  depends_on = [google_project_service.required]
}

# Where undeliverable log events end up once the Eventarc subscription is pointed at it (README: the
# provider cannot set a dead-letter policy on the subscription that Eventarc creates and owns).
resource "google_pubsub_topic" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}-node-events-dead-letter"
  message_retention_duration = var.event_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = local.labels

  depends_on = [google_project_service.required]
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
  member  = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Outcome CloudEvents (node.drained, node.drain_failed, node.uncordoned, jobs.cleaned).
resource "google_pubsub_topic" "outcomes" {
  project                    = var.project_id
  name                       = local.outcome_topic_name
  message_retention_duration = var.event_topic_retention
  kms_key_name               = var.kms_key_name
  labels                     = local.labels

  depends_on = [google_project_service.required]
}
