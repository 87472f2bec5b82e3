# Four identities, each with only what it uses.

# The functions' identity. GKE maps its Google token to the Kubernetes user of the same email, which
# the RBAC manifest binds to the drainer's ClusterRole. In Google Cloud it may read the cluster
# (endpoint and CA; also what GKE requires to authenticate), write logs and publish outcomes.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name}-fn"
  display_name = "gke-node-drainer functions"
  description  = "Cordons and drains GKE nodes; RBAC-bound in each cluster."
}

# Cloud Scheduler signs its OIDC tokens as this account; it may invoke the scheduled function only.
resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name}-sched"
  display_name = "gke-node-drainer scheduler"
  description  = "Invokes the scheduled cleanup and recovery."
}

# Eventarc pushes log events as this account; it may invoke the event function only.
resource "google_service_account" "eventarc" {
  project      = var.project_id
  account_id   = "${var.name}-trigger"
  display_name = "gke-node-drainer Eventarc trigger"
  description  = "Delivers log-sink events to the event function."
}

# Cloud Build builds the functions as this account instead of the default compute account.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "gke-node-drainer function builds"
  description  = "Builds the function images from the source archive."
}

# container.clusters.get and nothing else: the predefined roles that hold it also grant Kubernetes access.
resource "google_project_iam_custom_role" "cluster_reader" {
  for_each = local.cluster_projects

  project     = each.value
  role_id     = "${replace(var.name, "-", "_")}_cluster_get"
  title       = "gke-node-drainer cluster read"
  description = "Read a GKE cluster's endpoint and CA (container.clusters.get)."
  permissions = ["container.clusters.get"]
}

resource "google_project_iam_member" "runtime_cluster_reader" {
  for_each = local.cluster_projects

  project = each.value
  role    = google_project_iam_custom_role.cluster_reader[each.value].id
  member  = google_service_account.runtime.member
}

# compute.instances.get and nothing else, where the cluster nodes live: the fence asks Compute
# Engine whether a node's VM is off before the out-of-service taint and the force-cleanup.
resource "google_project_iam_custom_role" "instance_reader" {
  for_each = var.compute_fence ? local.cluster_projects : toset([])

  project     = each.value
  role_id     = "${replace(var.name, "-", "_")}_instance_get"
  title       = "gke-node-drainer instance read"
  description = "Read a node VM's state for the fence (compute.instances.get)."
  permissions = ["compute.instances.get"]
}

resource "google_project_iam_member" "runtime_instance_reader" {
  for_each = var.compute_fence ? local.cluster_projects : toset([])

  project = each.value
  role    = google_project_iam_custom_role.instance_reader[each.value].id
  member  = google_service_account.runtime.member
}

resource "google_project_iam_member" "runtime_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.runtime.member
}

resource "google_pubsub_topic_iam_member" "runtime_outcome_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.outcomes.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.runtime.member
}

# Pub/Sub's service agent mints the OIDC tokens of Eventarc's push subscription as the trigger account.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.eventarc.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_project_iam_member" "build_artifact_writer" {
  project = var.project_id
  role    = "roles/artifactregistry.writer"
  member  = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}
