# Shop events arrive on one topic; the streaming Dataflow job reads one subscription.
# A message Pub/Sub fails to deliver max_delivery_attempts times goes to the dead-letter
# topic, whose own subscription keeps it for inspection (monitoring.tf alerts on it).
# Note: Dataflow acknowledges a message once it has durably taken it in and extends
# deadlines instead of nacking, so the pipeline's own dead letters (bad records) go to the
# dead_letter table; this topic catches what never reached the pipeline.

resource "google_pubsub_topic" "events" {
  name                       = "${var.name_prefix}-events"
  message_retention_duration = "86400s"

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "events_dead_letter" {
  name                       = "${var.name_prefix}-events-dead-letter"
  message_retention_duration = "604800s"

  depends_on = [google_project_service.this]
}

resource "google_pubsub_subscription" "dataflow" {
  name                       = "${var.name_prefix}-events-dataflow"
  topic                      = google_pubsub_topic.events.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = "" # never expires, even while the job is stopped
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.events_dead_letter.id
    max_delivery_attempts = 10
  }
}

resource "google_pubsub_subscription" "events_dead_letter" {
  name                       = "${var.name_prefix}-events-dead-letter"
  topic                      = google_pubsub_topic.events_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's service agent moves undeliverable messages: it must publish to the
# dead-letter topic and acknowledge them on the source subscription.
locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.events_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_forwarder" {
  subscription = google_pubsub_subscription.dataflow.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_pubsub_topic_iam_member" "event_publishers" {
  for_each = toset(var.event_publishers)

  topic  = google_pubsub_topic.events.id
  role   = "roles/pubsub.publisher"
  member = each.value
}
