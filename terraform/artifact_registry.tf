# The Flex Template images (templates/build.sh pushes them) and a pull-through proxy of
# Docker Hub, so Cloud Run pulls Metabase's pinned image from inside the project.

resource "google_artifact_registry_repository" "templates" {
  repository_id = "${var.name_prefix}-templates"
  location      = var.region
  format        = "DOCKER"
  description   = "beam-ecommerce Flex Template images (launcher and SDK worker in one)."

  cleanup_policy_dry_run = false

  # Each build tags both images with a new tag; keep the recent ones for rollbacks.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_artifact_registry_repository" "dockerhub" {
  repository_id = "${var.name_prefix}-dockerhub"
  location      = var.region
  format        = "DOCKER"
  mode          = "REMOTE_REPOSITORY"
  description   = "Pull-through cache of Docker Hub (Metabase's image)."

  remote_repository_config {
    description = "Docker Hub"
    docker_repository {
      public_repository = "DOCKER_HUB"
    }
  }

  depends_on = [google_project_service.this]
}
