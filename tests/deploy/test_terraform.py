"""terraform/, statically: every file parses, versions are pinned, the warehouse tables are the
ones the pipelines write, nothing is public, dead letters are readable only by their group."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from typing import Any

import pytest

from beam_ecommerce.schemas import DEAD_LETTER, LIVE_METRICS, RAW_EVENTS
from beam_ecommerce.schemas.tables import Table
from tests.deploy.conftest import REPO, TERRAFORM, resources


def _generator():
    spec = importlib.util.spec_from_file_location("generate_schemas", TERRAFORM / "generate_schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variables(terraform: dict[str, dict]) -> dict[str, Any]:
    return {
        name: body.get("default") for block in terraform["variables.tf"]["variable"] for name, body in block.items()
    }


def test_every_file_parses_and_the_expected_files_exist(terraform) -> None:
    expected = {
        "versions.tf", "providers.tf", "variables.tf", "outputs.tf", "apis.tf", "storage.tf", "bigquery.tf",
        "pubsub.tf", "artifact_registry.tf", "iam.tf", "secrets.tf", "dashboard.tf", "monitoring.tf", "github.tf",
    }  # fmt: skip
    assert expected <= set(terraform)
    assert all(parsed for parsed in terraform.values())


def test_providers_and_terraform_are_pinned(terraform) -> None:
    (settings,) = terraform["versions.tf"]["terraform"]
    (providers,) = settings["required_providers"]
    for name, spec in providers.items():
        assert re.fullmatch(r"= \d+\.\d+\.\d+", spec["version"]), f"{name} is not pinned exactly"
    assert settings["required_version"]


@pytest.mark.parametrize("table", [RAW_EVENTS, DEAD_LETTER, LIVE_METRICS], ids=lambda t: t.name)
def test_committed_schema_is_what_the_event_contract_produces_now(table: Table) -> None:
    generator = _generator()
    committed = generator.schema_path(table).read_text()
    assert committed == generator.render(table), "the contract changed: run `make terraform-schemas`"
    # And the file is exactly the schema the pipeline hands WriteToBigQuery.
    assert json.loads(committed) == table.bigquery_schema()["fields"]


@pytest.mark.parametrize("table", [RAW_EVENTS, DEAD_LETTER, LIVE_METRICS], ids=lambda t: t.name)
def test_terraform_table_is_partitioned_clustered_and_typed_as_the_pipeline_expects(terraform, table: Table) -> None:
    body = resources(terraform, "google_bigquery_table")[table.name]
    assert body["table_id"] == table.name
    assert body["schema"] == f'${{file("${{path.module}}/schemas/{table.name}.json")}}'
    assert body["clustering"] == list(table.cluster_fields)
    (partitioning,) = body["time_partitioning"]
    expected = table.bigquery_time_partitioning()
    assert (partitioning["type"], partitioning["field"]) == (expected["type"], expected["field"])
    assert body["dataset_id"] == "${google_bigquery_dataset.raw.dataset_id}"


def test_outputs_include_what_the_docs_and_scripts_use(terraform) -> None:
    outputs = {name for block in terraform["outputs.tf"]["output"] for name in block}
    docs = (REPO / "docs" / "SETUP_CICD.md").read_text() + (REPO / "docs" / "SETUP_METABASE.md").read_text()
    used = set(re.findall(r"output -raw (\w+)", docs))
    assert "metabase_url" in outputs
    assert used <= outputs, used - outputs


def test_buckets_are_private_uniform_and_expire_old_objects(terraform) -> None:
    buckets = resources(terraform, "google_storage_bucket")
    assert set(buckets) == {"this"}
    bucket = buckets["this"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    locals_ = {k: v for block in terraform["storage.tf"]["locals"] for k, v in block.items()}
    assert set(locals_["buckets"]) == {"landing", "dead-letter", "dataflow"}
    assert locals_["buckets"]["dead-letter"]["expire_days"] == "${var.dead_letter_retention_days}"
    assert any(rule["action"][0]["type"] == "Delete" for rule in bucket["lifecycle_rule"])


def test_nothing_is_granted_to_the_public(terraform) -> None:
    for name, parsed in terraform.items():  # parsed without comments: only real values count
        text = json.dumps(parsed)
        assert "allUsers" not in text and "allAuthenticatedUsers" not in text, name


def test_metabase_is_not_public_and_keeps_its_secrets_in_secret_manager(terraform) -> None:
    invokers = resources(terraform, "google_cloud_run_v2_service_iam_member")
    assert set(invokers) == {"metabase_users"}
    assert invokers["metabase_users"]["member"] == "${each.value}"
    assert invokers["metabase_users"]["for_each"] == "${toset(var.metabase_users)}"
    service = resources(terraform, "google_cloud_run_v2_service")["metabase"]
    (template,) = service["template"]
    (container,) = template["containers"]
    plain_env = {env["name"] for env in container.get("env", [])}
    assert not plain_env & {"MB_DB_PASS", "MB_ENCRYPTION_SECRET_KEY"}, "secrets must come from Secret Manager"
    (database,) = resources(terraform, "google_sql_database_instance").values()
    (settings,) = database["settings"]
    assert settings["ip_configuration"][0]["ipv4_enabled"] is False


def test_dead_letters_are_readable_only_by_their_readers_and_the_pipelines(terraform) -> None:
    bucket_grants = resources(terraform, "google_storage_bucket_iam_member")
    readers = bucket_grants["dead_letter_readers"]
    assert readers["bucket"] == '${google_storage_bucket.this["dead-letter"].name}'
    assert readers["for_each"] == "${toset(var.dead_letter_readers)}"
    # Besides the readers, only the Dataflow workers (which write them) touch the bucket.
    touching = {name for name, body in bucket_grants.items() if "dead-letter" in json.dumps(body)}
    assert touching == {"dead_letter_readers", "dataflow"}
    table_grants = resources(terraform, "google_bigquery_table_iam_member")
    assert set(table_grants) == {"dbt_reads_raw", "dead_letter_readers"}
    # No project-wide read of data that would include the dead letters.
    iam_locals = {k: v for block in terraform["iam.tf"]["locals"] for k, v in block.items()}
    roles = {grant["role"] for grant in iam_locals["project_roles"].values()}
    assert not {r for r in roles if r.startswith(("roles/storage.", "roles/bigquery.data"))}, roles
    assert "roles/bigquery.dataViewer" not in json.dumps(resources(terraform, "google_project_iam_member"))


def test_alerts_cover_dead_letter_growth_and_freshness(terraform) -> None:
    policies = resources(terraform, "google_monitoring_alert_policy")
    assert set(policies) == {"dead_letters_growing", "data_freshness"}
    dead = json.dumps(policies["dead_letters_growing"])
    assert 'metric.labels.table = \\"dead_letter\\"' in dead and "num_undelivered_messages" in dead
    fresh = json.dumps(policies["data_freshness"])
    assert "oldest_unacked_message_age" in fresh and "condition_absent" in fresh


def test_pubsub_subscription_has_a_dead_letter_topic_and_retry_policy(terraform) -> None:
    subscription = resources(terraform, "google_pubsub_subscription")["dataflow"]
    assert subscription["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.events_dead_letter.id}"
    assert subscription["retry_policy"][0]["maximum_backoff"]


def test_names_agree_with_the_airflow_dag_defaults(terraform) -> None:
    """The DAG derives bucket, account and secret names from the project as terraform names them."""
    spec = importlib.util.spec_from_file_location("dag_settings", REPO / "airflow_dags/beam_ecommerce_dags/settings.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    settings = module.Settings(project_id="my-shop")
    defaults = _variables(terraform)
    assert (settings.name_prefix, settings.region) == (defaults["name_prefix"], defaults["region"])
    assert (settings.raw_dataset, settings.dbt_dataset) == (defaults["raw_dataset_id"], defaults["dbt_dataset_id"])

    def evaluate(template: str, **values: str) -> str:
        names = {"var.project_id": "my-shop", "var.name_prefix": defaults["name_prefix"], **values}
        return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], template)

    bucket = resources(terraform, "google_storage_bucket")["this"]["name"]
    assert settings.landing_bucket == evaluate(bucket, **{"each.key": "landing"})
    assert settings.dead_letter_bucket == evaluate(bucket, **{"each.key": "dead-letter"})
    assert settings.dataflow_bucket == evaluate(bucket, **{"each.key": "dataflow"})
    account = resources(terraform, "google_service_account")["this"]["account_id"]
    assert settings.dataflow_service_account.split("@")[0] == evaluate(account, **{"each.key": "dataflow"})
    secret = resources(terraform, "google_secret_manager_secret")["pii_hash_key"]["secret_id"]
    assert f"/secrets/{evaluate(secret)}/" in settings.pii_hash_key_secret


def _locals(terraform: dict[str, dict], file: str) -> dict[str, Any]:
    return {k: v for block in terraform[file]["locals"] for k, v in block.items()}


def test_the_budget_alert_is_optional_and_off_by_default(terraform) -> None:
    budget = resources(terraform, "google_billing_budget")["monthly"]
    assert budget["count"] == "${local.budget_enabled ? 1 : 0}"
    assert _locals(terraform, "budget.tf")["budget_enabled"] == '${var.billing_account != "" && var.monthly_budget > 0}'
    variables = _variables(terraform)
    assert (variables["billing_account"], variables["monthly_budget"]) == ("", 0)
    (rule,) = budget["all_updates_rule"]
    assert rule["monitoring_notification_channels"] == "${local.notification_channels}"
    forecast = [r for r in budget["threshold_rules"] if r.get("spend_basis") == "FORECASTED_SPEND"]
    assert forecast, "a forecast over budget alerts before the money is spent"
    services = _locals(terraform, "apis.tf")["services"]
    assert "billingbudgets.googleapis.com" in json.dumps(services)


def test_the_planner_reads_configuration_never_data(terraform) -> None:
    roles = _locals(terraform, "delivery.tf")["planner_roles"]
    data_readers = ("roles/storage.object", "roles/bigquery.data", "roles/secretmanager.secretAccessor")
    basic = ("roles/viewer", "roles/editor", "roles/owner")
    assert not [r for r in json.dumps(roles).split('"') if r.startswith(data_readers) or r in basic], roles


def test_each_github_identity_is_bound_to_one_subject(terraform) -> None:
    provider = resources(terraform, "google_iam_workload_identity_pool_provider")["github"]
    condition = provider["attribute_condition"]
    subjects = re.findall(r"'(repo:[^']+)'", condition)
    assert subjects == [
        "repo:${var.github_repository}:ref:refs/heads/main",
        "repo:${var.github_repository}:environment:terraform-plan",
        "repo:${var.github_repository}:environment:release",
    ]
    bindings = resources(terraform, "google_service_account_iam_member")
    assert bindings["github_runs_dbt"]["member"].endswith("/subject/repo:${var.github_repository}:ref:refs/heads/main")
    assert "principalSet" not in json.dumps(bindings), "a whole repository's tokens would get every account"
    environments = _locals(terraform, "delivery.tf")["github_environments"]
    workflows = REPO / ".github" / "workflows"
    for account, environment in environments.items():
        assert (
            f"environment: {environment}"
            in (workflows / f"{'release' if account == 'release' else 'terraform_plan'}.yml").read_text()
        )
