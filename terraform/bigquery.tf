# The raw dataset the pipelines write and dbt's datasets. raw_events and dead_letter are
# created here exactly as the pipelines would create them (their CREATE_IF_NEEDED then
# finds them): the schemas in schemas/*.json are generated from the event contract by
# generate_schemas.py, and tests/deploy/test_terraform.py checks schema, partitioning
# and clustering against beam_ecommerce.schemas.tables.

resource "google_bigquery_dataset" "raw" {
  dataset_id    = var.raw_dataset_id
  friendly_name = "beam-ecommerce raw events"
  description   = "What the Beam pipelines load: raw_events and dead_letter. No broad readers: see iam.tf."
  location      = var.bigquery_location

  depends_on = [google_project_service.this]
}

resource "google_bigquery_table" "raw_events" {
  dataset_id          = google_bigquery_dataset.raw.dataset_id
  table_id            = "raw_events"
  description         = "Every valid, distinct event, typed by the contract, PII pseudonymized."
  schema              = file("${path.module}/schemas/raw_events.json")
  clustering          = ["event_type", "product_category"]
  deletion_protection = var.deletion_protection

  time_partitioning {
    type  = "DAY"
    field = "event_date"
  }
}

resource "google_bigquery_table" "dead_letter" {
  dataset_id          = google_bigquery_dataset.raw.dataset_id
  table_id            = "dead_letter"
  description         = "Records that could not be loaded, with the original payload (PII included): restricted."
  schema              = file("${path.module}/schemas/dead_letter.json")
  clustering          = ["stage", "error_type"]
  deletion_protection = var.deletion_protection

  time_partitioning {
    type  = "DAY"
    field = "timestamp"
    # Original payloads are kept no longer than the dead-letter files.
    expiration_ms = var.dead_letter_retention_days * 24 * 60 * 60 * 1000
  }
}

# The speed layer: the stream's LiveMetrics appends every pane (early, on time, late) of
# each minute, category and currency by streaming inserts; readers take each key's newest
# pane (dbt's live_minutes view). Only recent minutes matter, so partitions expire.
resource "google_bigquery_table" "live_metrics" {
  dataset_id          = google_bigquery_dataset.raw.dataset_id
  table_id            = "live_metrics"
  description         = "The stream's figures per event-time minute, category and currency: every pane; the newest counts."
  schema              = file("${path.module}/schemas/live_metrics.json")
  clustering          = ["product_category", "currency"]
  deletion_protection = var.deletion_protection

  time_partitioning {
    type          = "DAY"
    field         = "window_start"
    expiration_ms = 7 * 24 * 60 * 60 * 1000
  }
}

# dbt's target dataset and the two its generate_schema_name macro derives on BigQuery.
locals {
  dbt_datasets = {
    target  = var.dbt_dataset_id
    staging = "${var.dbt_dataset_id}_staging"
    marts   = "${var.dbt_dataset_id}_marts"
  }
}

resource "google_bigquery_dataset" "dbt" {
  for_each = local.dbt_datasets

  dataset_id    = each.value
  friendly_name = "beam-ecommerce dbt ${each.key}"
  description   = "Built by dbt (dbt/) from ${var.raw_dataset_id}; no payloads or clear-text PII."
  location      = var.bigquery_location

  depends_on = [google_project_service.this]
}
