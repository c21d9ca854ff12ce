# A monthly billing budget on the project, off unless var.billing_account and
# var.monthly_budget are set: e-mails (var.alert_emails' channels and the billing
# account's admins) at 50 %, 90 % and 100 % of actual spend and at 100 % forecast.
# Budgets alert, they never stop spending: dbt's maximum_bytes_billed caps each query.

locals {
  budget_enabled = var.billing_account != "" && var.monthly_budget > 0
}

data "google_project" "this" {}

resource "google_billing_budget" "monthly" {
  count = local.budget_enabled ? 1 : 0

  billing_account = var.billing_account
  display_name    = "${var.name_prefix} monthly"

  budget_filter {
    projects = ["projects/${data.google_project.this.number}"]
  }

  amount {
    specified_amount {
      currency_code = var.budget_currency
      units         = tostring(var.monthly_budget)
    }
  }

  dynamic "threshold_rules" {
    for_each = [0.5, 0.9, 1.0]
    content {
      threshold_percent = threshold_rules.value
      spend_basis       = "CURRENT_SPEND"
    }
  }

  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  all_updates_rule {
    monitoring_notification_channels = local.notification_channels
    disable_default_iam_recipients   = false
  }

  depends_on = [google_project_service.this]
}
