# One sink per project that holds cluster nodes: Compute Engine audit entries about GKE node instances
# that the event parser acts on (sink-filter.tftpl; tests/unit/test_terraform.py checks it against
# every fixture LogEntry), each with its own writer identity.
resource "google_logging_project_sink" "node_events" {
  for_each = local.cluster_projects

  project                = each.value
  name                   = "${var.name}-node-events"
  description            = "Compute Engine events about GKE node VMs, for gke-node-drainer."
  destination            = "pubsub.googleapis.com/${google_pubsub_topic.events.id}"
  filter                 = local.sink_filter
  unique_writer_identity = true
}

resource "google_pubsub_topic_iam_member" "sink_publisher" {
  for_each = local.cluster_projects

  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = google_logging_project_sink.node_events[each.value].writer_identity
}
