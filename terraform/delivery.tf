# What the delivery workflows may do (.github/workflows/terraform_plan.yml, release.yml).
# Both authenticate through github.tf's Workload Identity Federation, each from its own
# GitHub environment (the token's subject is repo:OWNER/NAME:environment:ENV), so
# environment protection rules in GitHub decide who and which refs get these roles.

locals {
  # terraform plan refreshes every resource this configuration manages: metadata and IAM
  # policies only. No role here reads table data, objects or secret values; the state
  # bucket (outside this configuration) needs roles/storage.objectViewer for the planner.
  planner_roles = toset([
    "roles/iam.securityReviewer",
    "roles/iam.serviceAccountViewer",
    "roles/iam.workloadIdentityPoolViewer",
    "roles/serviceusage.serviceUsageViewer",
    "roles/bigquery.metadataViewer",
    "roles/storage.bucketViewer",
    "roles/pubsub.viewer",
    "roles/secretmanager.viewer",
    "roles/run.viewer",
    "roles/cloudsql.viewer",
    "roles/monitoring.viewer",
    "roles/artifactregistry.reader",
    "roles/compute.networkViewer",
  ])
  github_environments = {
    terraform-plan = "terraform-plan"
    release        = "release"
  }
}

resource "google_project_iam_member" "planner" {
  for_each = local.planner_roles

  project = var.project_id
  role    = each.value
  member  = local.sa["terraform-plan"]
}

# --- release: Cloud Build submissions, template specs, images ------------------------------

resource "google_project_iam_member" "release_builds" {
  project = var.project_id
  role    = "roles/cloudbuild.builds.editor"
  member  = local.sa["release"]
}

# `gcloud builds submit --service-account=cloudbuild` acts as the Cloud Build account.
resource "google_service_account_iam_member" "release_runs_cloudbuild" {
  service_account_id = google_service_account.this["cloudbuild"].name
  role               = "roles/iam.serviceAccountUser"
  member             = local.sa["release"]
}

# Uploads the build source and writes the template specs (templates/NAME[-TAG].json).
resource "google_storage_bucket_iam_member" "release_templates" {
  bucket = google_storage_bucket.this["dataflow"].name
  role   = "roles/storage.objectAdmin"
  member = local.sa["release"]
}

# Pushes the generator image beside the template images.
resource "google_artifact_registry_repository_iam_member" "release_push" {
  repository = google_artifact_registry_repository.templates.id
  location   = google_artifact_registry_repository.templates.location
  role       = "roles/artifactregistry.writer"
  member     = local.sa["release"]
}

resource "google_service_account_iam_member" "github_environments" {
  for_each = local.github_enabled ? local.github_environments : {}

  service_account_id = google_service_account.this[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/subject/repo:${var.github_repository}:environment:${each.value}"
}
