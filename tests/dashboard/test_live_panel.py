"""The live panel: the stream's last hour from live_metrics, its one-second poll, and product names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from beam_ecommerce.dashboard.charts import LIVE_SERIES, figures
from beam_ecommerce.dashboard.queries import Filters, collect
from beam_ecommerce.dashboard.reader import DuckDBReader
from beam_ecommerce.io.duckdb.live_metrics import create_live_metrics, upsert_live_metrics
from tests.dashboard.warehouse_fixture import make_warehouse


def _live_row(start: datetime, category: str, currency: str, orders: int, timing: str, **figures) -> dict:
    return {
        "window_start": start,
        "window_end": start + timedelta(minutes=1),
        "product_category": category,
        "currency": currency,
        "orders": orders,
        "gross_revenue": figures.get("revenue", 10.0 * orders),
        "items": orders,
        "events": figures.get("events", 6 * orders),
        "events_by_type": [],
        "dead_letters": figures.get("dead_letters", 0),
        "dead_letters_by_stage": [],
        "pane_timing": timing,
        "pane_index": 0,
        "emitted_at": start,
        "watermark_lag_seconds": None,
        "pipeline_version": "test",
        "run_id": "stream",
    }


@pytest.fixture
def live_warehouse(tmp_path) -> tuple[str, datetime]:
    """The dashboard's warehouse plus live minutes: two closed ones, the open current one, one of yesterday."""
    path = make_warehouse(str(tmp_path / "ecommerce.duckdb"))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    con = duckdb.connect(path)
    try:
        create_live_metrics(con)
        upsert_live_metrics(
            con,
            [
                _live_row(now - timedelta(days=1), "books", "EUR", 50, "ON_TIME"),  # older than the last hour
                _live_row(now - timedelta(minutes=2), "books", "EUR", 2, "ON_TIME"),
                _live_row(now - timedelta(minutes=2), "books", "USD", 1, "LATE", revenue=21.6),
                _live_row(now - timedelta(minutes=1), "electronics", "EUR", 3, "ON_TIME"),
                _live_row(now - timedelta(minutes=1), "none", "none", 0, "ON_TIME", dead_letters=4, events=12),
                _live_row(now, "books", "EUR", 1, "EARLY", events=30),
            ],
        )
        con.execute(
            "CREATE SCHEMA staging; CREATE TABLE staging.exchange_rates AS"
            " SELECT 'USD' AS currency, 1.08 AS units_per_eur UNION ALL SELECT 'EUR', 1.0"
        )
    finally:
        con.close()
    return path, now


def _live(path: str, **params: str) -> dict:
    return collect(DuckDBReader(path, lock_wait_seconds=0.2), Filters.parse({"panel": "live", **params}))


def test_the_live_poll_reads_the_last_hour_per_minute_in_euros(live_warehouse):
    path, now = live_warehouse
    payload = _live(path)
    assert payload["status"] == "ok" and list(payload["sections"]) == ["live"]
    minutes = payload["sections"]["live"]["data"]
    assert [(m["minute"], m["orders"], m["revenue_eur"], m["dead_letters"], m["final"]) for m in minutes] == [
        ((now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M"), 3, 40.0, 0, True),  # 21.60 USD = 20 EUR
        ((now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"), 3, 30.0, 4, True),
        (now.strftime("%Y-%m-%dT%H:%M"), 1, 10.0, 0, False),
    ]
    assert minutes[0]["events_per_second"] == round(18 / 60, 2)  # a closed minute: its events over 60 s
    assert minutes[-1]["events_per_second"] >= round(30 / 60, 2)  # the open one: over the seconds passed


def test_a_category_filter_narrows_the_live_panel_and_leaves_dead_letters_out(live_warehouse):
    path, _ = live_warehouse
    minutes = _live(path, category="electronics")["sections"]["live"]["data"]
    assert [(m["orders"], m["dead_letters"]) for m in minutes] == [(3, 0)]


def test_a_date_filter_keeps_the_live_minutes_of_its_utc_days(live_warehouse):
    path, now = live_warehouse
    days = {(now - timedelta(minutes=back)).date() for back in range(3)}  # two days just after midnight
    within = _live(path, start=str(min(days)), end=str(max(days)))
    assert [m["orders"] for m in within["sections"]["live"]["data"]] == [3, 3, 1]
    assert _live(path, end=str(min(days) - timedelta(days=1)))["sections"]["live"]["data"] == []
    assert _live(path, start=str(max(days) + timedelta(days=1)))["sections"]["live"]["data"] == []


def test_the_full_page_has_the_live_panel_and_its_figure(live_warehouse):
    path, _ = live_warehouse
    payload = collect(DuckDBReader(path, lock_wait_seconds=0.2), Filters())
    assert payload["status"] == "ok"
    live = figures(payload["sections"])["live"]
    assert [trace["name"] for trace in live["data"]] == [title for _, title, _ in LIVE_SERIES]
    assert list(live["data"][0]["y"]) == [3, 3, 1]


def test_without_a_stream_the_live_panel_says_so_and_the_page_is_still_ok(tmp_path):
    path = make_warehouse(str(tmp_path / "ecommerce.duckdb"))
    payload = collect(DuckDBReader(path, lock_wait_seconds=0.2), Filters())
    assert payload["status"] == "ok"
    assert payload["sections"]["live"] == {
        "ok": False,
        "message": "main.live_metrics is not built yet: no stream has written live_metrics yet: "
        "run `beam-ecommerce stream` (or `demo`).",
    }


def test_the_panel_parameter_is_checked():
    assert Filters.parse({"panel": "live"}).live_only
    with pytest.raises(ValueError, match="panel must be"):
        Filters.parse({"panel": "everything"})


def test_top_products_show_names_once_dim_products_is_built(tmp_path):
    path = make_warehouse(str(tmp_path / "ecommerce.duckdb"))
    named = collect(DuckDBReader(path, lock_wait_seconds=0.2), Filters())["sections"]["top_products"]["data"]
    assert [(p["product_id"], p["name"]) for p in named[:3]] == [
        ("p-cable", "USB-C Cable"),
        ("p-book-1", "Quiet Harbor Novel"),
        ("p-book-3", "p-book-3"),  # a product the catalogue lacks keeps its id
    ]
    figure = figures({"top_products": {"ok": True, "data": named}})["top_products"]
    assert "USB-C Cable" in list(figure["data"][0]["y"])
    con = duckdb.connect(path)
    try:
        con.execute("DROP TABLE marts.dim_products")
    finally:
        con.close()
    unnamed = collect(DuckDBReader(path, lock_wait_seconds=0.2), Filters())["sections"]["top_products"]["data"]
    assert unnamed[0]["name"] == unnamed[0]["product_id"] == "p-cable"  # before dbt builds dim_products
