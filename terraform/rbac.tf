# The RBAC manifest (rbac/drainer-rbac.yaml, the file the tests apply) bound to the runtime account,
# applied with the kubernetes provider the caller configures for a cluster. For more clusters, call
# modules/rbac once per cluster with an aliased kubernetes provider (see examples/basic).
module "rbac" {
  source = "./modules/rbac"
  count  = var.apply_rbac ? 1 : 0

  runtime_service_account_email = google_service_account.runtime.email
}
