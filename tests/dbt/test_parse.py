"""`dbt parse` of the project for both warehouses, offline: configs and schemas per target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner

from beam_ecommerce.dbt_project import PROFILES_DIR, PROJECT_DIR

PARTITIONED = {
    "stg_ecommerce__events": ("event_date", ["event_type", "order_id"]),
    "fct_orders": ("order_date", ["product_category", "status"]),
    "fct_order_items": ("order_date", ["product_category"]),
    "fct_sessions": ("session_date", ["user_id"]),
    "dm_daily_funnel": ("funnel_date", None),
    "dm_daily_revenue": ("revenue_date", ["product_category", "currency"]),
}


def _invoke_parse(target: str, tmp_path: Path):
    """``dbt parse`` for ``target``, its state and logs under ``tmp_path``."""
    return dbtRunner().invoke(
        [
            "parse",
            "--target",
            target,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROFILES_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
            "--quiet",
        ]
    )


def _parse(target: str, tmp_path: Path) -> dict[str, dict]:
    """Parses for ``target`` into ``tmp_path``; the manifest's models, seeds, sources and unit tests by name."""
    outcome = _invoke_parse(target, tmp_path)
    assert outcome.success, outcome.exception
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    nodes = {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")}
    nodes.update({f"source:{s['name']}": s for s in manifest["sources"].values()})
    nodes.update({f"unit_test:{u['name']}": u for u in manifest["unit_tests"].values()})
    return nodes


@pytest.mark.e2e
def test_the_bigquery_target_parses_offline_with_partitioning_and_clustering(tmp_path, monkeypatch):
    """No credentials, no network: every model's BigQuery variant goes through dbt's parser."""
    monkeypatch.setenv("BEAM_ECOMMERCE_GCP_PROJECT", "shop-analytics")
    monkeypatch.setenv("BEAM_ECOMMERCE_BQ_DATASET", "ci")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    nodes = _parse("bigquery", tmp_path)
    for name, (field, cluster) in PARTITIONED.items():
        config = nodes[name]["config"]
        assert config["partition_by"] == {"field": field, "data_type": "date", "granularity": "day"}, name
        assert config.get("cluster_by") == cluster, name
    assert nodes["fct_orders"]["schema"] == "ci_marts"
    assert nodes["stg_ecommerce__events"]["schema"] == "ci_staging"
    assert nodes["fct_orders"]["database"] == "shop-analytics"
    assert nodes["source:raw_events"]["schema"] == "ecommerce"
    # Their fixtures are DuckDB SQL: unit tests run on the local target only.
    assert not [name for name in nodes if name.startswith("unit_test:")]


@pytest.mark.e2e
def test_the_local_target_lands_in_staging_and_marts_without_bigquery_configs(tmp_path):
    nodes = _parse("local", tmp_path)
    for name in PARTITIONED:
        assert nodes[name]["config"].get("partition_by") is None, name
        assert nodes[name]["config"].get("cluster_by") is None, name
    assert {nodes[name]["schema"] for name in PARTITIONED if name.startswith("stg_")} == {"staging"}
    assert {nodes[name]["schema"] for name in PARTITIONED if not name.startswith("stg_")} == {"marts"}
    assert nodes["dm_dead_letters_daily"]["schema"] == "marts"
    assert nodes["source:raw_events"]["schema"] == nodes["source:dead_letter"]["schema"] == "main"
    assert len([name for name in nodes if name.startswith("unit_test:")]) >= 14


@pytest.mark.parametrize("target", ["bigquery", "bigquery_sa"])
def test_a_bigquery_target_without_its_project_says_which_variable_is_missing(target, tmp_path, monkeypatch):
    monkeypatch.delenv("BEAM_ECOMMERCE_GCP_PROJECT", raising=False)
    monkeypatch.setenv("BEAM_ECOMMERCE_BQ_KEYFILE", str(tmp_path / "key.json"))
    outcome = _invoke_parse(target, tmp_path)
    assert not outcome.success
    assert "BEAM_ECOMMERCE_GCP_PROJECT" in str(outcome.exception)
