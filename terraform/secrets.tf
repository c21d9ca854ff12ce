# The key of the HMAC that pseudonymizes PII. Terraform creates only the secret: its
# value is added with gcloud (docs/SETUP_CICD.md), so it never enters the Terraform state.
resource "google_secret_manager_secret" "pii_hash_key" {
  secret_id = "${var.name_prefix}-pii-hash-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}
