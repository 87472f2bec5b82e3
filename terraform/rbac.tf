# The RBAC manifest (rbac/drainer-rbac.yaml, the file the tests apply) bound to the runtime account,
# applied through the kubernetes provider configuration the caller passes as kubernetes.rbac: there is
# no default, so the manifest never lands in whatever cluster a kubeconfig's current context names.
# For more clusters, call modules/rbac once per cluster with its own provider (see examples/basic).
module "rbac" {
  source = "./modules/rbac"
  count  = var.apply_rbac ? 1 : 0

  providers = {
    kubernetes = kubernetes.rbac
  }

  runtime_service_account_email = google_service_account.runtime.email
}
