output "project_id" {
  description = "The project."
  value       = var.project_id
}

output "region" {
  description = "Region of the jobs, buckets and services."
  value       = var.region
}

output "metabase_url" {
  description = "Metabase's Cloud Run URL (authenticated: open it through `gcloud run services proxy`)."
  value       = google_cloud_run_v2_service.metabase.uri
}

output "metabase_service" {
  description = "Name of Metabase's Cloud Run service."
  value       = google_cloud_run_v2_service.metabase.name
}

output "metabase_service_account" {
  description = "The account Metabase reads BigQuery as (its key goes into Metabase's BigQuery connection)."
  value       = google_service_account.this["metabase"].email
}

output "landing_bucket" {
  description = "Bucket the event files land in (landing/dt=YYYY-MM-DD/)."
  value       = google_storage_bucket.this["landing"].name
}

output "dead_letter_bucket" {
  description = "Bucket of the dead-letter files (restricted)."
  value       = google_storage_bucket.this["dead-letter"].name
}

output "dataflow_bucket" {
  description = "Bucket of the template specs, staging and temp files."
  value       = google_storage_bucket.this["dataflow"].name
}

output "flex_template_registry" {
  description = "Artifact Registry path the template images are pushed to."
  value       = "${google_artifact_registry_repository.templates.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.templates.repository_id}"
}

output "batch_template" {
  description = "Template spec of the batch pipeline (written by templates/build.sh)."
  value       = "gs://${google_storage_bucket.this["dataflow"].name}/templates/batch.json"
}

output "streaming_template" {
  description = "Template spec of the streaming pipeline (written by templates/build.sh)."
  value       = "gs://${google_storage_bucket.this["dataflow"].name}/templates/streaming.json"
}

output "bigquery_dataset" {
  description = "The pipelines' --bigquery_dataset (PROJECT:DATASET)."
  value       = "${var.project_id}:${google_bigquery_dataset.raw.dataset_id}"
}

output "pubsub_topic" {
  description = "Topic shop events are published to."
  value       = google_pubsub_topic.events.id
}

output "pubsub_subscription" {
  description = "Subscription the streaming job reads."
  value       = google_pubsub_subscription.dataflow.id
}

output "pii_hash_key_secret" {
  description = "Secret Manager version of the PII hash key (the templates' pii_hash_key_secret)."
  value       = "${google_secret_manager_secret.pii_hash_key.id}/versions/latest"
}

output "dataflow_service_account" {
  description = "The account Dataflow workers and template launchers run as."
  value       = google_service_account.this["dataflow"].email
}

output "airflow_service_account" {
  description = "The account Airflow uses (directly on Composer, by impersonation locally)."
  value       = google_service_account.this["airflow"].email
}

output "cloudbuild_service_account" {
  description = "The account Cloud Build runs the image builds as."
  value       = google_service_account.this["cloudbuild"].email
}

output "dbt_ci_service_account" {
  description = "The account GitHub Actions runs dbt as (GitHub variable GCP_SERVICE_ACCOUNT)."
  value       = google_service_account.this["dbt-ci"].email
}

output "workload_identity_provider" {
  description = "Full name of the GitHub OIDC provider (GitHub variable GCP_WORKLOAD_IDENTITY_PROVIDER)."
  value       = local.github_enabled ? google_iam_workload_identity_pool_provider.github[0].name : null
}

output "batch_dead_letter_dir" {
  description = "The batch template's dead_letter_dir: its dead-letter files and run reports."
  value       = "gs://${google_storage_bucket.this["dead-letter"].name}/batch"
}

output "streaming_dead_letter_dir" {
  description = "The streaming template's dead_letter_dir: a file per minute of dead letters."
  value       = "gs://${google_storage_bucket.this["dead-letter"].name}/streaming"
}

output "terraform_plan_service_account" {
  description = "The account terraform_plan.yml plans as (GitHub variable GCP_TERRAFORM_PLAN_SERVICE_ACCOUNT)."
  value       = google_service_account.this["terraform-plan"].email
}

output "release_service_account" {
  description = "The account release.yml publishes as (GitHub variable GCP_RELEASE_SERVICE_ACCOUNT)."
  value       = google_service_account.this["release"].email
}
