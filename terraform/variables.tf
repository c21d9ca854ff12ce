variable "project_id" {
  description = "The Google Cloud project everything is created in."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID such as my-shop-analytics."
  }
}

variable "region" {
  description = "Region of the buckets, Dataflow jobs, Artifact Registry, Cloud Run and Cloud SQL."
  type        = string
  default     = "europe-west1"
}

variable "bigquery_location" {
  description = "Location of the BigQuery datasets; must contain var.region (EU for European regions, US for US ones)."
  type        = string
  default     = "EU"
}

variable "name_prefix" {
  description = "Prefix of the names of buckets, service accounts and services."
  type        = string
  default     = "beam-ecommerce"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,14}$", var.name_prefix))
    error_message = "name_prefix must be 3 to 15 lower-case letters, digits or dashes (service account ids are at most 30 characters)."
  }
}

variable "raw_dataset_id" {
  description = "Dataset of raw_events and dead_letter: the pipelines' --bigquery_dataset, dbt's BEAM_ECOMMERCE_BQ_RAW_DATASET."
  type        = string
  default     = "ecommerce"
}

variable "dbt_dataset_id" {
  description = "dbt's target dataset (BEAM_ECOMMERCE_BQ_DATASET); dbt writes <it>_staging and <it>_marts."
  type        = string
  default     = "analytics"
}

variable "landing_retention_days" {
  description = "Days landing files are kept before deletion."
  type        = number
  default     = 90
}

variable "dead_letter_retention_days" {
  description = "Days dead-letter files (original payloads, PII included) are kept; also the dead_letter table's partition expiration."
  type        = number
  default     = 30
}

variable "dead_letter_readers" {
  description = "The only principals, besides the pipelines, that may read dead letters, e.g. [\"group:data-stewards@example.com\"]."
  type        = list(string)
  default     = []
}

variable "analysts" {
  description = "Principals that may query the dbt marts and staging views, e.g. [\"group:analysts@example.com\"]."
  type        = list(string)
  default     = []
}

variable "event_publishers" {
  description = "Principals that publish shop events to the Pub/Sub topic, e.g. a shop backend's service account."
  type        = list(string)
  default     = []
}

variable "metabase_users" {
  description = "Principals allowed to open Metabase (Cloud Run invoker), e.g. [\"group:analysts@example.com\"]."
  type        = list(string)
  default     = []
}

variable "metabase_version" {
  description = "Tag of the metabase/metabase image (pulled through the Artifact Registry Docker Hub proxy)."
  type        = string
  default     = "v0.64.2.2"
}

variable "metabase_min_instances" {
  description = "Metabase instances kept warm: 0 costs nothing when idle but starts in about a minute."
  type        = number
  default     = 0
}

variable "metabase_db_tier" {
  description = "Cloud SQL machine type of Metabase's application database."
  type        = string
  default     = "db-f1-micro"
}

variable "deletion_protection" {
  description = "Protect the tables, the Cloud SQL instance and the Metabase service from terraform destroy."
  type        = bool
  default     = true
}

variable "alert_emails" {
  description = "E-mail addresses notified by the alert policies."
  type        = list(string)
  default     = []
}

variable "dead_letter_alert_threshold" {
  description = "Alert when more dead letters than this are written in one hour."
  type        = number
  default     = 100
}

variable "streaming_enabled" {
  description = "Whether the streaming job runs: enables the freshness alerts on the subscription backlog and on raw_events loads."
  type        = bool
  default     = true
}

variable "freshness_max_age_seconds" {
  description = "Alert when the oldest unacknowledged event in the Dataflow subscription is older than this."
  type        = number
  default     = 900
}

variable "freshness_max_silence_seconds" {
  description = "Alert when no row has been loaded into raw_events for this long (streaming on)."
  type        = number
  default     = 3600
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose main branch may run dbt (Workload Identity Federation); empty: no federation."
  type        = string
  default     = ""
}

variable "airflow_impersonators" {
  description = "Principals that may act as the Airflow service account (a local docker-compose Airflow does, through impersonated credentials), e.g. [\"user:you@example.com\"]."
  type        = list(string)
  default     = []
}

variable "billing_account" {
  description = "Billing account ID (XXXXXX-XXXXXX-XXXXXX) for the monthly budget alert; empty: no budget."
  type        = string
  default     = ""
}

variable "monthly_budget" {
  description = "Monthly budget of the project, in var.budget_currency; 0: no budget."
  type        = number
  default     = 0

  validation {
    condition     = var.monthly_budget >= 0
    error_message = "monthly_budget cannot be negative."
  }
}

variable "budget_currency" {
  description = "Currency of var.monthly_budget: the billing account's currency."
  type        = string
  default     = "EUR"
}
