# Applies the drainer's RBAC manifest to the cluster of the kubernetes provider it is given.
# The manifest is rendered with templatefile, split into its documents and mapped field by field, so
# the cluster gets exactly the rules the tests check against a real API server.

terraform {
  required_providers {
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.23, < 4.0"
    }
  }
}

variable "runtime_service_account_email" {
  description = "Email of the functions' Google service account: GKE's Kubernetes user name for its tokens."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.iam\\.gserviceaccount\\.com$", var.runtime_service_account_email))
    error_message = "runtime_service_account_email must be a service account email (NAME@PROJECT.iam.gserviceaccount.com)."
  }
}

variable "manifest_path" {
  description = "The RBAC manifest; null means the repository's rbac/drainer-rbac.yaml."
  type        = string
  default     = null
}

locals {
  manifest = templatefile(
    coalesce(var.manifest_path, "${path.module}/../../rbac/drainer-rbac.yaml"),
    { runtime_service_account_email = var.runtime_service_account_email },
  )
  documents    = [for document in split("\n---\n", local.manifest) : yamldecode(document)]
  cluster_role = one([for document in local.documents : document if document.kind == "ClusterRole"])
  binding      = one([for document in local.documents : document if document.kind == "ClusterRoleBinding"])
  # the namespaced grant of the scheduled runs' Lease (kube-system/gke-node-drainer-schedule)
  lease_role    = one([for document in local.documents : document if document.kind == "Role"])
  lease_binding = one([for document in local.documents : document if document.kind == "RoleBinding"])
}

resource "kubernetes_cluster_role_v1" "drainer" {
  metadata {
    name   = local.cluster_role.metadata.name
    labels = local.cluster_role.metadata.labels
  }

  dynamic "rule" {
    for_each = local.cluster_role.rules
    content {
      api_groups     = rule.value.apiGroups
      resources      = rule.value.resources
      verbs          = rule.value.verbs
      resource_names = lookup(rule.value, "resourceNames", null)
    }
  }
}

resource "kubernetes_cluster_role_binding_v1" "drainer" {
  metadata {
    name   = local.binding.metadata.name
    labels = local.binding.metadata.labels
  }

  role_ref {
    api_group = local.binding.roleRef.apiGroup
    kind      = local.binding.roleRef.kind
    name      = kubernetes_cluster_role_v1.drainer.metadata[0].name
  }

  dynamic "subject" {
    for_each = local.binding.subjects
    content {
      api_group = subject.value.apiGroup
      kind      = subject.value.kind
      name      = subject.value.name
    }
  }
}

resource "kubernetes_role_v1" "lease" {
  metadata {
    name      = local.lease_role.metadata.name
    namespace = local.lease_role.metadata.namespace
    labels    = local.lease_role.metadata.labels
  }

  dynamic "rule" {
    for_each = local.lease_role.rules
    content {
      api_groups     = rule.value.apiGroups
      resources      = rule.value.resources
      verbs          = rule.value.verbs
      resource_names = lookup(rule.value, "resourceNames", null)
    }
  }
}

resource "kubernetes_role_binding_v1" "lease" {
  metadata {
    name      = local.lease_binding.metadata.name
    namespace = local.lease_binding.metadata.namespace
    labels    = local.lease_binding.metadata.labels
  }

  role_ref {
    api_group = local.lease_binding.roleRef.apiGroup
    kind      = local.lease_binding.roleRef.kind
    name      = kubernetes_role_v1.lease.metadata[0].name
  }

  dynamic "subject" {
    for_each = local.lease_binding.subjects
    content {
      api_group = subject.value.apiGroup
      kind      = subject.value.kind
      name      = subject.value.name
    }
  }
}

output "cluster_role" {
  description = "Name of the ClusterRole."
  value       = kubernetes_cluster_role_v1.drainer.metadata[0].name
}

output "manifest" {
  description = "The rendered manifest that was applied."
  value       = local.manifest
}
