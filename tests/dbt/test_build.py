"""`dbt build` for real on DuckDB files, through beam_ecommerce.dbt_project."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from beam_ecommerce import dbt_project
from beam_ecommerce.dbt_project import PROJECT_DIR, DbtError
from tests.conftest import copy_warehouse
from tests.dbt.conftest import BIGQUERY_ONLY_MODELS, LOCAL_MODELS, Built, query


def test_a_missing_warehouse_is_a_one_line_error(tmp_path):
    with pytest.raises(DbtError, match=r"^no warehouse at .*missing\.duckdb: run `beam-ecommerce batch`"):
        dbt_project.build(tmp_path / "missing.duckdb")
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_selection_that_matches_nothing_is_an_error(tiny_warehouse):
    with pytest.raises(DbtError, match=r"^nothing to build: --select 'fct_order' matches no model"):
        dbt_project.build(tiny_warehouse, select="fct_order")


@pytest.mark.e2e
def test_build_on_a_small_warehouse_computes_the_marts(tiny_built: Built):
    result, tiny_warehouse = tiny_built.result, tiny_built.warehouse
    assert result.count("model") == LOCAL_MODELS and result.count("unit_test") >= 12 and result.count("test") >= 100
    assert all(not node.failed for node in result.nodes)
    assert result.target_path == tiny_warehouse.parent / "dbt" / "target"
    assert (result.target_path / "run_results.json").is_file()
    assert query(
        tiny_warehouse, "select status, gross_revenue, net_revenue, paid_at is not null from marts.fct_orders"
    ) == [("paid", 114.0, 114.0, True)]
    # 114 SEK at 11.4 SEK per EUR
    assert query(tiny_warehouse, "select net_revenue_eur, orders from marts.dm_daily_revenue") == [(10.0, 1)]
    assert query(tiny_warehouse, "select lifetime_orders, lifetime_revenue_eur from marts.dim_users") == [(1, 10.0)]
    summary = dbt_project.daily_revenue(tiny_warehouse)
    assert [(day.isoformat(), d.orders, d.net_revenue_eur) for d in summary for day in [d.revenue_date]] == [
        ("2026-11-01", 1, 10.0)
    ]


@pytest.mark.e2e
def test_a_failing_data_test_is_a_one_line_error_naming_it(tiny_built: Built, tmp_path: Path):
    tiny_warehouse = copy_warehouse(tiny_built.warehouse, tmp_path)  # built once; written and built again here
    con = duckdb.connect(str(tiny_warehouse))
    try:
        # A new order in a currency the exchange rates do not know: a relationships test must stop the build.
        con.execute(
            """INSERT INTO raw_events
               SELECT * REPLACE ('e9' AS event_id, 'o2' AS order_id, 'XXX' AS currency,
                                 ingested_at + INTERVAL 1 DAY AS ingested_at)
               FROM raw_events WHERE event_type = 'order_placed'"""
        )
    finally:
        con.close()
    with pytest.raises(DbtError) as failure:
        dbt_project.build(tiny_warehouse)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("dbt build failed on ")
    assert "relationships_" in message and "exchange_rates" in message
    assert f"log: {tiny_warehouse.parent / 'dbt' / 'logs'}/dbt.log" in message


@pytest.mark.e2e
def test_build_on_the_generators_data_passes_every_test(built: Built):
    result = built.result
    assert result.count("model") == LOCAL_MODELS
    assert result.count("seed") == 2  # exchange_rates, products
    assert result.count("unit_test") >= 14
    assert result.count("test") >= 100
    assert {node.status for node in result.nodes} <= {"success", "pass"}
    assert result.summary().startswith(f"dbt build OK: {LOCAL_MODELS} models, 2 seeds, ")


@pytest.mark.e2e
def test_every_built_column_is_documented_and_every_documented_column_built(built: Built):
    for doc_path in (PROJECT_DIR / "models").rglob("*.yml"):
        doc = yaml.safe_load(doc_path.read_text())
        for model in doc.get("models", []):
            if model["name"] in BIGQUERY_ONLY_MODELS:
                continue
            schema = "staging" if model["name"].startswith("stg_") else "marts"
            columns = query(
                built.warehouse,
                "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                [schema, model["name"]],
            )
            assert {c for (c,) in columns} == {c["name"] for c in model["columns"]}, model["name"]


@pytest.mark.e2e
def test_staging_keeps_every_loaded_event_once(built: Built):
    raw = query(built.warehouse, "select count(*), count(distinct event_id) from main.raw_events")
    staged = query(built.warehouse, "select count(*), count(distinct event_id) from staging.stg_ecommerce__events")
    assert staged == raw
    assert raw[0][0] > 15_000


@pytest.mark.e2e
def test_the_daily_revenue_summary_adds_up_the_mart(built: Built):
    summary = dbt_project.daily_revenue(built.warehouse, days=3)
    expected = query(
        built.warehouse,
        """select revenue_date, sum(orders), round(sum(net_revenue_eur), 2) from marts.dm_daily_revenue
           group by 1 order by 1 desc limit 3""",
    )
    assert [(d.revenue_date, d.orders, d.net_revenue_eur) for d in summary] == [
        (day, orders, float(eur)) for day, orders, eur in reversed(expected)
    ]


@pytest.mark.e2e
def test_docs_generate_writes_a_catalog_of_the_marts(built: Built, tmp_path: Path):
    warehouse = copy_warehouse(built.warehouse, tmp_path / "warehouse")  # dbt opens it read-write
    outcome = dbt_project.invoke(["docs", "generate"], warehouse, tmp_path / "target", tmp_path / "logs")
    assert outcome.success, outcome.exception
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert {"fct_orders", "dm_daily_revenue", "stg_ecommerce__events"} <= documented
    assert (tmp_path / "target" / "index.html").is_file()
