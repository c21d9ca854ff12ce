# Exact versions: a plan made today and one made next year use the same provider code.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "= 7.45.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "= 3.7.2"
    }
  }

  # State holds the generated database passwords: keep it in a bucket only the platform
  # administrators can read (docs/SETUP_CICD.md, "Terraform state").
  # backend "gcs" { bucket = "PROJECT-tfstate"  prefix = "beam-ecommerce" }
}
