# Example root: one project, one cluster (plus, commented out, how to add a second cluster's RBAC).
#
#   cd terraform/examples/basic
#   cp terraform.tfvars.example terraform.tfvars   # then edit
#   terraform init && terraform apply

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.21, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5, < 4.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.23, < 4.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

data "google_container_cluster" "primary" {
  project  = var.cluster.project
  location = var.cluster.location
  name     = var.cluster.name
}

# The cluster the RBAC manifest goes to, named explicitly: the module takes it as kubernetes.rbac and
# never falls back to a default kubeconfig context. The identity running terraform needs RBAC rights to
# create ClusterRoles there. For a private cluster, use its DNS-based endpoint instead (reachable from
# wherever Google APIs are; publicly trusted, so no CA):
#   host = "https://${data.google_container_cluster.primary.control_plane_endpoints_config[0].dns_endpoint_config[0].endpoint}"
provider "kubernetes" {
  alias                  = "primary"
  host                   = "https://${data.google_container_cluster.primary.endpoint}"
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = base64decode(data.google_container_cluster.primary.master_auth[0].cluster_ca_certificate)
}

module "drainer" {
  source = "../.."

  providers = {
    kubernetes.rbac = kubernetes.primary
  }

  project_id = var.project_id
  region     = var.region
  clusters   = [var.cluster]

  schedules                 = var.schedules
  job_ttl_succeeded_seconds = var.job_ttl_succeeded_seconds
  job_ttl_failed_seconds    = var.job_ttl_failed_seconds
  allowed_callers           = var.allowed_callers
  manual_invokers           = var.manual_invokers
  outcome_topic_name        = var.outcome_topic_name
  notification_channels     = var.notification_channels
}

# A second cluster: configure an aliased provider for it and apply the same manifest there.
#
# provider "kubernetes" {
#   alias                  = "second"
#   host                   = "https://${data.google_container_cluster.second.endpoint}"
#   token                  = data.google_client_config.current.access_token
#   cluster_ca_certificate = base64decode(data.google_container_cluster.second.master_auth[0].cluster_ca_certificate)
# }
#
# module "rbac_second" {
#   source    = "../../modules/rbac"
#   providers = { kubernetes = kubernetes.second }
#
#   runtime_service_account_email = module.drainer.runtime_service_account_email
# }
