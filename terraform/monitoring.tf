# Alert policies: dead letters growing, and data going stale. They notify
# var.alert_emails; docs/ARCHITECTURE.md says what each means and where to look.

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  display_name = "beam-ecommerce: ${each.value}"
  type         = "email"

  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.this]
}

locals {
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.id]
  raw_dataset_filter    = "resource.type = \"bigquery_dataset\" AND resource.labels.project_id = \"${var.project_id}\" AND resource.labels.dataset_id = \"${var.raw_dataset_id}\""
}

# The stream writes dead letters with streaming inserts, which BigQuery counts per table:
# this counts the dead_letter rows it wrote in the last hour. A batch run's dead letters
# arrive by load job and MERGE, which this metric does not count: the Airflow DAG's
# check_run fails the run when its dead-letter ratio is too high.
resource "google_monitoring_alert_policy" "dead_letters_growing" {
  display_name          = "beam-ecommerce: dead letters growing"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "More than ${var.dead_letter_alert_threshold} dead letters in an hour"
    condition_threshold {
      filter          = "metric.type = \"bigquery.googleapis.com/storage/uploaded_row_count\" AND ${local.raw_dataset_filter} AND metric.labels.table = \"dead_letter\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.dead_letter_alert_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  # Messages Pub/Sub gave up delivering: they never reached the pipeline.
  conditions {
    display_name = "Undeliverable events in the Pub/Sub dead-letter subscription"
    condition_threshold {
      filter          = "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.events_dead_letter.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"

    content = <<-EOT
      Dead letters are growing. Query them by stage and reason (the dead-letter readers group can):
      `SELECT stage, error_type, COUNT(*) FROM ${var.raw_dataset_id}.dead_letter WHERE timestamp > TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 HOUR) GROUP BY 1, 2 ORDER BY 3 DESC`.
      Undeliverable Pub/Sub messages wait in subscription ${google_pubsub_subscription.events_dead_letter.name}.
      See docs/ARCHITECTURE.md, "Dead letters".
    EOT
  }
}

# Freshness of the streaming path: events waiting unread, or nothing loaded for a while.
resource "google_monitoring_alert_policy" "data_freshness" {
  count = var.streaming_enabled ? 1 : 0

  display_name          = "beam-ecommerce: data is stale"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Oldest unprocessed event older than ${var.freshness_max_age_seconds} s"
    condition_threshold {
      filter          = "metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${google_pubsub_subscription.dataflow.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.freshness_max_age_seconds
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  conditions {
    display_name = "No rows loaded into raw_events for ${var.freshness_max_silence_seconds} s"
    condition_absent {
      filter   = "metric.type = \"bigquery.googleapis.com/storage/uploaded_row_count\" AND ${local.raw_dataset_filter} AND metric.labels.table = \"raw_events\""
      duration = "${var.freshness_max_silence_seconds}s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"

    content = <<-EOT
      Events are not reaching raw_events. Check the streaming job (`gcloud dataflow jobs list --region ${var.region} --status active`),
      its backlog on ${google_pubsub_subscription.dataflow.name} and its logs. See docs/ARCHITECTURE.md, "Alerts".
    EOT
  }
}
