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

# The push subscription of the log events signs its OIDC tokens as this account; it may invoke the
# event function only.
resource "google_service_account" "event_push" {
  project      = var.project_id
  account_id   = "${var.name}-push"
  display_name = "gke-node-drainer event push"
  description  = "Delivers log-sink events to the event function (Pub/Sub push, OIDC)."
}

# Cloud Build builds the functions as this account instead of the default compute account.
resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name}-build"
  display_name = "gke-node-drainer function builds"
  description  = "Builds the function images from the source archive."
}

# Custom role IDs carry a suffix: IAM reserves a deleted role's ID for weeks, so an apply after a destroy
# must not reuse it. The random suffix is drawn anew after a destroy; role_id_suffix pins one.
resource "random_id" "role_suffix" {
  count       = var.role_id_suffix == null ? 1 : 0
  byte_length = 4
}

locals {
  role_id_prefix = replace(var.name, "-", "_")
  role_id_suffix = var.role_id_suffix != null ? var.role_id_suffix : random_id.role_suffix[0].hex
}

# container.clusters.get and nothing else: the predefined roles that hold it also grant Kubernetes access.
# Where a cluster is reached on its DNS-based endpoint, also container.clusters.connect, which that
# endpoint checks before it forwards a request.
resource "google_project_iam_custom_role" "cluster_reader" {
  for_each = local.cluster_projects

  project     = each.value
  role_id     = "${local.role_id_prefix}_cluster_get_${local.role_id_suffix}"
  title       = "gke-node-drainer cluster read"
  description = "Read a GKE cluster's endpoint and CA (container.clusters.get); connect to its DNS-based endpoint where it is used."
  permissions = concat(["container.clusters.get"], contains(local.dns_endpoint_projects, each.value) ? ["container.clusters.connect"] : [])

  lifecycle {
    create_before_destroy = true
  }
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
  role_id     = "${local.role_id_prefix}_instance_get_${local.role_id_suffix}"
  title       = "gke-node-drainer instance read"
  description = "Read a node VM's state for the fence (compute.instances.get)."
  permissions = ["compute.instances.get"]

  lifecycle {
    create_before_destroy = true
  }
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

# Pub/Sub's service agent mints the push subscription's OIDC tokens as the push account (older projects
# need this grant; it is scoped to that one account).
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.event_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
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
