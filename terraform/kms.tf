# With kms_key_name, the topics and the source bucket are encrypted with it: the service agents that
# encrypt and decrypt for them need the key before any of them is created.
data "google_storage_project_service_account" "this" {
  count   = var.kms_key_name == null ? 0 : 1
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "service_agents" {
  for_each = var.kms_key_name == null ? {} : {
    pubsub  = local.pubsub_service_agent
    storage = "serviceAccount:${data.google_storage_project_service_account.this[0].email_address}"
  }

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value

  depends_on = [google_project_service.required]
}
