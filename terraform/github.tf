# Workload Identity Federation for the GitHub workflows: GitHub's OIDC token becomes
# short-lived credentials of one service account, chosen by the token's subject:
#   dbt_daily.yml on the main branch          -> dbt-ci
#   terraform_plan.yml, environment terraform-plan -> terraform-plan (delivery.tf)
#   release.yml, environment release              -> release (delivery.tf)
# No service account key exists anywhere.

locals {
  github_enabled = var.github_repository != ""
}

resource "google_iam_workload_identity_pool" "github" {
  count = local.github_enabled ? 1 : 0

  workload_identity_pool_id = "${var.name_prefix}-github"
  display_name              = "GitHub Actions"
  description               = "GitHub Actions runs of ${var.github_repository}"

  depends_on = [google_project_service.this]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  count = local.github_enabled ? 1 : 0

  workload_identity_pool_id          = google_iam_workload_identity_pool.github[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "github-actions"
  display_name                       = "GitHub Actions OIDC"

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
  }
  # Only this repository's main branch and its two delivery environments: forks, other
  # branches and pull requests outside those environments get nothing.
  attribute_condition = "assertion.sub in ['repo:${var.github_repository}:ref:refs/heads/main', 'repo:${var.github_repository}:environment:terraform-plan', 'repo:${var.github_repository}:environment:release']"

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "github_runs_dbt" {
  count = local.github_enabled ? 1 : 0

  service_account_id = google_service_account.this["dbt-ci"].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principal://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/subject/repo:${var.github_repository}:ref:refs/heads/main"
}
