"""Incremental runs against a full refresh, on two real loads of the batch pipeline."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from beam_ecommerce import dbt_project
from tests.dbt.conftest import LOCAL_MODELS, Landing, load, query

MODELS = {
    "staging": ["stg_ecommerce__events"],
    "marts": ["fct_orders", "fct_order_items", "fct_sessions", "dim_users", "dm_daily_funnel", "dm_daily_revenue"],
}


def _snapshot(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("CREATE SCHEMA incremental")
        for schema, names in MODELS.items():
            for name in names:
                con.execute(f"CREATE TABLE incremental.{name} AS SELECT * FROM {schema}.{name}")
    finally:
        con.close()


@pytest.mark.e2e
def test_an_incremental_run_after_a_second_load_equals_a_full_refresh(landing: Landing, tmp_path: Path):
    """The second file holds new visits and orders and late status changes of the first's orders."""
    warehouse = tmp_path / "ecommerce.duckdb"
    load(landing.first, warehouse)
    dbt_project.build(warehouse)
    orders_before = dict(query(warehouse, "select order_id, status from marts.fct_orders"))

    load(landing.second, warehouse)
    incremental = dbt_project.build(warehouse)
    assert incremental.count("model") == LOCAL_MODELS
    _snapshot(warehouse)
    changed = [
        order_id
        for order_id, status in query(warehouse, "select order_id, status from incremental.fct_orders")
        if order_id in orders_before and orders_before[order_id] != status
    ]
    assert len(changed) > 50, "late status changes of earlier orders reached fct_orders"

    dbt_project.build(warehouse, full_refresh=True)
    for schema, names in MODELS.items():
        for name in names:
            differing = query(
                warehouse,
                f"""select count(*) from (
                        (select * from incremental.{name} except all select * from {schema}.{name})
                        union all
                        (select * from {schema}.{name} except all select * from incremental.{name}))""",
            )[0][0]
            assert differing == 0, f"{name}: {differing} rows differ between the incremental run and a full refresh"
