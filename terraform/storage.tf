# Three buckets, all with uniform bucket-level access, public access prevention enforced
# and object versioning (old versions expire quickly): landing files, dead-letter files
# (original payloads, PII included: readable only by the pipelines and
# var.dead_letter_readers, see iam.tf) and Dataflow's own (templates, staging, temp).
locals {
  buckets = {
    landing = {
      # Event files the batch DAG picks up: landing/dt=YYYY-MM-DD/events-*.
      expire_prefixes = null # every object
      expire_days     = var.landing_retention_days
    }
    dead-letter = {
      expire_prefixes = null
      expire_days     = var.dead_letter_retention_days
    }
    dataflow = {
      # Template specs and staged files stay; temp files of finished jobs go.
      expire_prefixes = ["tmp/", "cloudbuild/"]
      expire_days     = 7
    }
  }
}

resource "google_storage_bucket" "this" {
  for_each = local.buckets

  name                        = "${var.project_id}-${var.name_prefix}-${each.key}"
  location                    = upper(var.region)
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age            = each.value.expire_days
      matches_prefix = each.value.expire_prefixes
    }
    action {
      type = "Delete"
    }
  }

  # An overwritten or deleted file stays recoverable for a week, no longer.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}
