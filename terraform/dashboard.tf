# Metabase on Cloud Run, not public: no allUsers invoker, only var.metabase_users may call
# it (open it with `gcloud run services proxy`, docs/SETUP_METABASE.md). Its application
# database (questions, dashboards, users) is a small Cloud SQL PostgreSQL instance on a
# private IP, reached through Direct VPC egress; the passwords live in Secret Manager.
# Metabase reads BigQuery as its own service account, which sees the dbt marts and
# staging views only, never the raw dataset.

resource "google_compute_network" "metabase" {
  name                    = "${var.name_prefix}-metabase"
  auto_create_subnetworks = false

  depends_on = [google_project_service.this]
}

resource "google_compute_subnetwork" "metabase" {
  name                     = "${var.name_prefix}-metabase"
  network                  = google_compute_network.metabase.id
  region                   = var.region
  ip_cidr_range            = "10.10.0.0/24"
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Private services access: the range Cloud SQL's private IP comes from.
resource "google_compute_global_address" "private_services" {
  name          = "${var.name_prefix}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = google_compute_network.metabase.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.metabase.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

resource "google_sql_database_instance" "metabase" {
  name                = "${var.name_prefix}-metabase"
  database_version    = "POSTGRES_18"
  region              = var.region
  deletion_protection = var.deletion_protection

  settings {
    tier              = var.metabase_db_tier
    edition           = "ENTERPRISE"
    availability_type = "ZONAL"
    disk_autoresize   = true

    ip_configuration {
      ipv4_enabled    = false
      private_network = google_compute_network.metabase.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
    }

    # Connection and query logging for audits (the CIS PostgreSQL benchmark's flags). Written
    # out rather than generated, so that static checks (checkov) can read them.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "metabase" {
  name     = "metabase"
  instance = google_sql_database_instance.metabase.name
}

resource "random_password" "metabase_db" {
  length  = 32
  special = false
}

resource "google_sql_user" "metabase" {
  name     = "metabase"
  instance = google_sql_database_instance.metabase.name
  password = random_password.metabase_db.result
}

# Metabase encrypts the connection details it stores (the BigQuery key) with this.
resource "random_password" "metabase_encryption" {
  length  = 48
  special = false
}

locals {
  metabase_secrets = {
    MB_DB_PASS               = random_password.metabase_db.result
    MB_ENCRYPTION_SECRET_KEY = random_password.metabase_encryption.result
  }
}

resource "google_secret_manager_secret" "metabase" {
  for_each = toset(keys(local.metabase_secrets))

  secret_id = "${var.name_prefix}-metabase-${lower(replace(each.key, "_", "-"))}"

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "metabase" {
  for_each = google_secret_manager_secret.metabase

  secret      = each.value.id
  secret_data = local.metabase_secrets[each.key]
}

resource "google_secret_manager_secret_iam_member" "metabase" {
  for_each = google_secret_manager_secret.metabase

  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.sa["metabase"]
}

resource "google_cloud_run_v2_service" "metabase" {
  name                = "${var.name_prefix}-metabase"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account = google_service_account.this["metabase"].email
    timeout         = "300s"

    scaling {
      min_instance_count = var.metabase_min_instances
      # One instance: Metabase's scheduler and migrations expect a single node here.
      max_instance_count = 1
    }

    vpc_access {
      network_interfaces {
        network    = google_compute_network.metabase.id
        subnetwork = google_compute_subnetwork.metabase.id
      }
      egress = "PRIVATE_RANGES_ONLY"
    }

    containers {
      image = "${google_artifact_registry_repository.dockerhub.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.dockerhub.repository_id}/metabase/metabase:${var.metabase_version}"

      ports {
        container_port = 3000
      }

      resources {
        limits = {
          cpu    = "2"
          memory = "4Gi"
        }
        startup_cpu_boost = true
      }

      env {
        name  = "MB_DB_TYPE"
        value = "postgres"
      }
      env {
        name  = "MB_DB_CONNECTION_URI"
        value = "postgres://${google_sql_database_instance.metabase.private_ip_address}:5432/${google_sql_database.metabase.name}?sslmode=require"
      }
      env {
        name  = "MB_DB_USER"
        value = google_sql_user.metabase.name
      }
      env {
        name  = "JAVA_TOOL_OPTIONS"
        value = "-Xmx3g"
      }
      dynamic "env" {
        for_each = google_secret_manager_secret.metabase
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value.secret_id
              version = "latest"
            }
          }
        }
      }

      # Metabase migrates its database on the first start: give it minutes, not seconds.
      startup_probe {
        http_get {
          path = "/api/health"
        }
        initial_delay_seconds = 30
        period_seconds        = 10
        timeout_seconds       = 5
        failure_threshold     = 30
      }

      liveness_probe {
        http_get {
          path = "/api/health"
        }
        period_seconds  = 30
        timeout_seconds = 5
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.metabase,
    google_secret_manager_secret_version.metabase,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "metabase_users" {
  for_each = toset(var.metabase_users)

  name     = google_cloud_run_v2_service.metabase.name
  location = google_cloud_run_v2_service.metabase.location
  role     = "roles/run.invoker"
  member   = each.value
}

# The network carries only Cloud Run's egress to Cloud SQL: refuse every inbound connection.
resource "google_compute_firewall" "metabase_deny_ingress" {
  name      = "${var.name_prefix}-metabase-deny-ingress"
  network   = google_compute_network.metabase.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
