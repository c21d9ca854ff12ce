"""The dbt project as files: the contract's names, one documented yml per model, a clean lint."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from beam_ecommerce.dbt_project import PROJECT_DIR
from beam_ecommerce.generator.pools import EXCHANGE_RATES

MODELS = sorted((PROJECT_DIR / "models").rglob("*.sql"))
CONTRACT_MODELS = {
    "stg_ecommerce__events",
    "fct_orders",
    "fct_order_items",
    "dim_users",
    "fct_sessions",
    "dm_daily_funnel",
    "dm_daily_revenue",
    "dm_dead_letters_daily",
}


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_project_and_profile_have_the_contracts_names():
    project = _yaml(PROJECT_DIR / "dbt_project.yml")
    profile = _yaml(PROJECT_DIR / "profiles.yml")["beam_ecommerce"]
    assert project["name"] == project["profile"] == "beam_ecommerce"
    assert profile["target"] == "local"
    outputs = profile["outputs"]
    assert outputs["local"]["type"] == "duckdb"
    assert outputs["local"]["path"] == "{{ env_var('BEAM_ECOMMERCE_DUCKDB', '../demo/warehouse/ecommerce.duckdb') }}"
    assert (outputs["bigquery"]["type"], outputs["bigquery"]["method"]) == ("bigquery", "oauth")
    assert (outputs["bigquery_sa"]["type"], outputs["bigquery_sa"]["method"]) == ("bigquery", "service-account")
    assert "env_var(" in outputs["bigquery_sa"]["keyfile"] and "env_var(" in outputs["bigquery"]["project"]
    assert CONTRACT_MODELS <= {model.stem for model in MODELS}


@pytest.mark.parametrize("model", MODELS, ids=lambda path: path.stem)
def test_every_model_has_its_own_documented_yml(model: Path):
    doc = _yaml(model.with_suffix(".yml"))
    [entry] = doc["models"]
    assert entry["name"] == model.stem
    assert entry["description"].strip()
    assert entry["columns"], "every column is listed"
    undocumented = [column["name"] for column in entry["columns"] if not column.get("description", "").strip()]
    assert not undocumented
    for unit_test in doc.get("unit_tests", []):
        assert unit_test["model"] == model.stem


def test_every_model_has_data_tests_and_an_incremental_one_a_unit_test_of_its_increment():
    for model in MODELS:
        text = model.read_text()
        doc = _yaml(model.with_suffix(".yml"))
        tests = [t for column in doc["models"][0]["columns"] for t in column.get("data_tests", [])]
        assert tests or doc["models"][0].get("data_tests"), model.stem
        if "materialized='incremental'" in text:
            assert any(t["overrides"]["macros"]["is_incremental"] for t in doc.get("unit_tests", [])), model.stem


def test_the_exchange_rates_seed_is_the_generators():
    with open(PROJECT_DIR / "seeds" / "exchange_rates.csv", newline="") as seed:
        rates = {row["currency"]: float(row["units_per_eur"]) for row in csv.DictReader(seed)}
    assert rates == EXCHANGE_RATES


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_dbt_state_folders_are_ignored_by_git():
    ignored = ["dbt/target/manifest.json", "dbt/logs/dbt.log", "dbt/dbt_packages/x/dbt_project.yml"]
    kept = ["dbt/models/marts/core/fct_orders.sql"]
    root = PROJECT_DIR.parent
    check = subprocess.run(["git", "check-ignore", *ignored, *kept], cwd=root, capture_output=True, text=True)
    assert check.stdout.split() == ignored


@pytest.mark.e2e
def test_sqlfluff_finds_nothing_in_the_models():
    lint = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "models", "--nofail", "--format", "github-annotation-native"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert lint.returncode == 0, lint.stderr
    assert lint.stdout.strip() == "", lint.stdout
