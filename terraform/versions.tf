terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.21 is the first release with Direct VPC egress on google_cloudfunctions2_function.
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
    # The RBAC manifest goes to the cluster of the configuration the caller passes as kubernetes.rbac
    # (providers = { kubernetes.rbac = kubernetes.CLUSTER }); the module never uses a default context.
    kubernetes = {
      source                = "hashicorp/kubernetes"
      version               = ">= 2.23, < 4.0"
      configuration_aliases = [kubernetes.rbac]
    }
  }
}
