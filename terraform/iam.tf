# One service account per workload, each with only the roles its job needs, granted on
# the narrowest resource that works (a bucket, a dataset, a table, a subscription)
# rather than on the project.
#
# Who can read dead letters (original payloads, PII included): the Dataflow workers that
# write them, the dbt runners that count them into dm_dead_letters_daily, and
# var.dead_letter_readers. Nobody gets project-wide BigQuery or Storage read roles here;
# people with basic roles (Owner, Editor, Viewer) on the project can still read
# everything, so do not hand those out (docs/ARCHITECTURE.md, "Dead letters").

locals {
  service_accounts = {
    dataflow   = "Dataflow workers and Flex Template launchers"
    airflow    = "Airflow: launches the batch template, runs dbt and the checks"
    dbt-ci     = "GitHub Actions dbt_daily, through Workload Identity Federation"
    metabase   = "Metabase on Cloud Run: reads the marts"
    cloudbuild = "Cloud Build: builds and pushes the Flex Template images"
    # GitHub Actions identities (github.tf): read-only planning and tag releases.
    terraform-plan = "GitHub Actions terraform_plan: reads the project's configuration, changes nothing"
    release        = "GitHub Actions release: publishes the Flex Templates and the generator image"
  }
  sa = { for key, account in google_service_account.this : key => "serviceAccount:${account.email}" }
  # Whoever runs dbt reads the raw tables and writes dbt's datasets.
  dbt_runners = { airflow = local.sa["airflow"], dbt-ci = local.sa["dbt-ci"] }
}

resource "google_service_account" "this" {
  for_each = local.service_accounts

  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "beam-ecommerce ${each.key}"
  description  = each.value

  depends_on = [google_project_service.this]
}

# --- project-level roles: only those that exist nowhere narrower -------------------------

locals {
  project_roles = {
    "dataflow-worker"  = { member = local.sa["dataflow"], role = "roles/dataflow.worker" }
    "airflow-dataflow" = { member = local.sa["airflow"], role = "roles/dataflow.developer" }
    "airflow-jobs"     = { member = local.sa["airflow"], role = "roles/bigquery.jobUser" }
    "dbt-ci-jobs"      = { member = local.sa["dbt-ci"], role = "roles/bigquery.jobUser" }
    "metabase-jobs"    = { member = local.sa["metabase"], role = "roles/bigquery.jobUser" }
    "cloudbuild-logs"  = { member = local.sa["cloudbuild"], role = "roles/logging.logWriter" }
  }
  # People who query dead letters or marts run BigQuery jobs too.
  job_users = setunion(var.dead_letter_readers, var.analysts)
}

resource "google_project_iam_member" "this" {
  for_each = local.project_roles

  project = var.project_id
  role    = each.value.role
  member  = each.value.member
}

resource "google_project_iam_member" "job_users" {
  for_each = local.job_users

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = each.value
}

# Reads of buckets and tables show in Data Access audit logs: who opened a dead letter.
resource "google_project_iam_audit_config" "data_access" {
  for_each = toset(["storage.googleapis.com", "bigquery.googleapis.com"])

  project = var.project_id
  service = each.value

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

# --- Dataflow workers (and the template launcher, which runs as the same account) -------

resource "google_storage_bucket_iam_member" "dataflow" {
  for_each = {
    landing     = "roles/storage.objectViewer"
    dataflow    = "roles/storage.objectAdmin" # staging and temp files
    dead-letter = "roles/storage.objectAdmin" # writes go through temp files and renames
  }

  bucket = google_storage_bucket.this[each.key].name
  role   = each.value
  member = local.sa["dataflow"]
}

resource "google_bigquery_dataset_iam_member" "dataflow_writer" {
  dataset_id = google_bigquery_dataset.raw.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.sa["dataflow"]
}

resource "google_pubsub_subscription_iam_member" "dataflow" {
  for_each = toset(["roles/pubsub.subscriber", "roles/pubsub.viewer"])

  subscription = google_pubsub_subscription.dataflow.id
  role         = each.value
  member       = local.sa["dataflow"]
}

resource "google_artifact_registry_repository_iam_member" "dataflow_pull" {
  repository = google_artifact_registry_repository.templates.id
  location   = google_artifact_registry_repository.templates.location
  role       = "roles/artifactregistry.reader"
  member     = local.sa["dataflow"]
}

resource "google_secret_manager_secret_iam_member" "dataflow_pii_key" {
  secret_id = google_secret_manager_secret.pii_hash_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["dataflow"]
}

# --- Airflow: launch the batch template as the Dataflow account, watch the landing bucket -

resource "google_service_account_iam_member" "airflow_acts_as_dataflow" {
  service_account_id = google_service_account.this["dataflow"].name
  role               = "roles/iam.serviceAccountUser"
  member             = local.sa["airflow"]
}

# A local Airflow (airflow_dags/docker-compose.yaml) runs as the account through
# `gcloud auth application-default login --impersonate-service-account`: no key.
resource "google_service_account_iam_member" "airflow_impersonators" {
  for_each = toset(var.airflow_impersonators)

  service_account_id = google_service_account.this["airflow"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}

resource "google_storage_bucket_iam_member" "airflow" {
  for_each = toset(["landing", "dataflow"]) # new files; the template spec

  bucket = google_storage_bucket.this[each.key].name
  role   = "roles/storage.objectViewer"
  member = local.sa["airflow"]
}

# --- dbt (run by Airflow and by GitHub Actions) -------------------------------------------

resource "google_bigquery_table_iam_member" "dbt_reads_raw" {
  for_each = {
    for pair in setproduct(keys(local.dbt_runners), ["raw_events", "dead_letter"]) :
    "${pair[0]}-${pair[1]}" => { member = local.dbt_runners[pair[0]], table = pair[1] }
  }

  dataset_id = google_bigquery_dataset.raw.dataset_id
  table_id   = each.value.table == "raw_events" ? google_bigquery_table.raw_events.table_id : google_bigquery_table.dead_letter.table_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value.member
}

resource "google_bigquery_dataset_iam_member" "dbt_writes" {
  for_each = {
    for pair in setproduct(keys(local.dbt_runners), keys(local.dbt_datasets)) :
    "${pair[0]}-${pair[1]}" => { member = local.dbt_runners[pair[0]], dataset = pair[1] }
  }

  dataset_id = google_bigquery_dataset.dbt[each.value.dataset].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = each.value.member
}

# --- people and Metabase: the marts (and staging views) only --------------------------------

locals {
  # Keyed by names known at plan time (an account's e-mail is not, before it exists).
  mart_readers = merge({ metabase = local.sa["metabase"] }, { for member in var.analysts : member => member })
}

resource "google_bigquery_dataset_iam_member" "mart_readers" {
  for_each = {
    for pair in setproduct(keys(local.mart_readers), ["staging", "marts"]) :
    "${pair[0]}-${pair[1]}" => { member = local.mart_readers[pair[0]], dataset = pair[1] }
  }

  dataset_id = google_bigquery_dataset.dbt[each.value.dataset].dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value.member
}

# --- the dedicated dead-letter readers -----------------------------------------------------

resource "google_storage_bucket_iam_member" "dead_letter_readers" {
  for_each = toset(var.dead_letter_readers)

  bucket = google_storage_bucket.this["dead-letter"].name
  role   = "roles/storage.objectViewer"
  member = each.value
}

resource "google_bigquery_table_iam_member" "dead_letter_readers" {
  for_each = toset(var.dead_letter_readers)

  dataset_id = google_bigquery_dataset.raw.dataset_id
  table_id   = google_bigquery_table.dead_letter.table_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

# --- Cloud Build: read the uploaded source, push the images ---------------------------------

resource "google_storage_bucket_iam_member" "cloudbuild_source" {
  bucket = google_storage_bucket.this["dataflow"].name
  role   = "roles/storage.objectViewer"
  member = local.sa["cloudbuild"]
}

resource "google_artifact_registry_repository_iam_member" "cloudbuild_push" {
  repository = google_artifact_registry_repository.templates.id
  location   = google_artifact_registry_repository.templates.location
  role       = "roles/artifactregistry.writer"
  member     = local.sa["cloudbuild"]
}
