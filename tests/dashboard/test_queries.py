"""What the dashboard reads from the marts, and what it says when it cannot."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from beam_ecommerce.dashboard.queries import Filters, collect
from beam_ecommerce.dashboard.reader import DuckDBReader
from tests.dashboard.conftest import writer_holding
from tests.dashboard.warehouse_fixture import (
    BATCH_LOADED,
    NEWEST_EVENT,
    STREAM_LOADED,
    make_warehouse,
)


def _collect(path: str, **filters) -> dict:
    return collect(DuckDBReader(path, lock_wait_seconds=0.2), Filters(**filters))


def test_filters_parse_query_parameters():
    filters = Filters.parse({"start": "2026-11-01", "end": "2026-11-02", "category": "books"})
    assert filters == Filters(date(2026, 11, 1), date(2026, 11, 2), "books")
    assert Filters.parse({"start": " ", "category": ""}) == Filters()


@pytest.mark.parametrize(
    "params, complaint",
    [({"start": "yesterday"}, "start must be a date"), ({"start": "2026-11-03", "end": "2026-11-01"}, "after")],
)
def test_filters_refuse_bad_dates(params, complaint):
    with pytest.raises(ValueError, match=complaint):
        Filters.parse(params)


def test_sections_add_up_in_euros(warehouse):
    data = _collect(warehouse)
    assert data["status"] == "ok" and data["message"] is None
    revenue = data["sections"]["revenue"]["data"]
    assert revenue == [
        {"date": "2026-11-01", "net_revenue_eur": 650.0},
        {"date": "2026-11-02", "net_revenue_eur": 360.0},
        {"date": "2026-11-03", "net_revenue_eur": 200.0},
    ]
    assert data["kpis"]["net_revenue_eur"] == {"value": 1210.0, "text": "€1,210"}
    assert data["kpis"]["orders"] == {"value": 8, "text": "8"}
    assert data["kpis"]["conversion"]["text"] == "8.9%"  # 24 paid of 270 viewed
    assert data["kpis"]["dead_letters"] == {"value": 6, "text": "6"}
    assert {"category": "electronics", "status": "shipped", "orders": 1} in data["sections"]["orders"]["data"]
    assert data["sections"]["funnel"]["data"] == [
        {"step": "view", "sessions": 270},
        {"step": "cart", "sessions": 105},
        {"step": "order", "sessions": 27},
        {"step": "payment", "sessions": 24},
    ]
    top = data["sections"]["top_products"]["data"]
    assert [(p["product_id"], p["units"], p["orders"]) for p in top[:3]] == [
        ("p-cable", 5, 1),
        ("p-book-1", 3, 2),  # ties in units go by product id
        ("p-book-3", 3, 1),
    ]
    assert data["sections"]["dead_letters"]["data"][0] == {
        "date": "2026-11-01",
        "reason": "parse: invalid_json",
        "dead_letters": 3,
    }
    assert data["options"] == {
        "categories": ["books", "electronics"],
        "min_date": "2026-11-01",
        "max_date": "2026-11-03",
    }


def test_filters_narrow_every_section_they_apply_to(warehouse):
    data = _collect(warehouse, start=date(2026, 11, 2), end=date(2026, 11, 3), category="electronics")
    assert data["kpis"]["net_revenue_eur"]["value"] == 500.0
    assert data["kpis"]["orders"]["value"] == 3
    assert [p["product_id"] for p in data["sections"]["top_products"]["data"]] == ["p-cable", "p-phone"]
    # Sessions and dead letters have no category: only the dates apply.
    assert data["sections"]["funnel"]["data"][0] == {"step": "view", "sessions": 170}
    assert data["kpis"]["dead_letters"]["value"] == 1


def test_filters_matching_nothing_give_empty_sections_not_errors(warehouse):
    data = _collect(warehouse, start=date(2027, 1, 1))
    assert data["status"] == "ok"
    assert data["sections"]["revenue"]["data"] == []
    assert data["kpis"]["net_revenue_eur"]["text"] == "€0"
    assert data["kpis"]["conversion"]["text"] == "–"


def test_freshness_tells_batch_from_stream(warehouse):
    fresh = _collect(warehouse)["freshness"]
    assert fresh["events"] == 5
    assert fresh["dead_letters"] == 0
    assert fresh["newest_event"] == NEWEST_EVENT.timestamp()
    assert fresh["last_batch_load"] == BATCH_LOADED.timestamp()
    assert fresh["last_stream_load"] == STREAM_LOADED.timestamp()
    assert fresh["stream_lag_seconds"] == pytest.approx(3.0)


def test_missing_file_says_run_the_demo(tmp_path):
    data = _collect(str(tmp_path / "nowhere.duckdb"))
    assert data["status"] == "missing"
    assert "beam-ecommerce demo" in data["message"]
    assert "sections" not in data


def test_empty_warehouse_says_no_data_yet(tmp_path):
    data = _collect(make_warehouse(str(tmp_path / "w.duckdb"), raw=False, marts=False))
    assert data["status"] == "no_data"
    assert "beam-ecommerce demo" in data["message"]


def test_raw_rows_without_marts_show_freshness_and_say_build_the_marts(tmp_path):
    data = _collect(make_warehouse(str(tmp_path / "w.duckdb"), marts=False))
    assert data["status"] == "partial"
    assert "dbt" in data["message"] and "marts.fct_orders" in data["message"]
    assert not data["sections"]["orders"]["ok"]
    assert "marts.fct_orders" in data["sections"]["orders"]["message"]
    assert data["freshness"]["events"] == 5
    assert data["kpis"] == {}


def test_a_writer_holding_the_file_makes_it_busy_not_an_error(warehouse):
    with writer_holding(warehouse):
        data = _collect(warehouse)
    assert data["status"] == "busy"
    assert "retrying" in data["message"]
    assert _collect(warehouse)["status"] == "ok"


def test_a_file_that_is_not_a_warehouse_is_reported(tmp_path):
    path = tmp_path / "w.duckdb"
    path.write_text("not a database")
    data = _collect(str(path))
    assert data["status"] == "error"
    assert str(path) in data["message"]


def test_a_mart_without_a_contract_column_fails_only_its_own_panel(warehouse):
    con = duckdb.connect(warehouse)
    con.execute("ALTER TABLE marts.fct_order_items DROP COLUMN quantity")
    con.close()
    data = _collect(warehouse)
    assert data["status"] == "partial"
    assert "Cannot read marts.fct_order_items" in data["message"]
    assert not data["sections"]["top_products"]["ok"]
    assert "quantity" in data["sections"]["top_products"]["message"]
    assert data["sections"]["revenue"]["ok"] and data["kpis"]["orders"]["value"] == 8
