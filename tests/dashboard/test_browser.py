"""The dashboard in headless Chromium: charts drawn, numbers equal to the marts, filters, messages.

The expected numbers come from SQL written here, straight on the marts, not from the
dashboard's own queries.
"""

from __future__ import annotations

import duckdb
import pytest
from selenium.webdriver.support.ui import Select

from beam_ecommerce.dashboard import DuckDBReader, write_snapshot
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from tests.dashboard.browser import (
    CHARTS,
    chart_traces,
    chromium,
    console_errors,
    drawn_charts,
    kpi_texts,
    renders,
    served,
    wait_for,
    wait_for_render,
)
from tests.dashboard.conftest import writer_holding
from tests.dashboard.warehouse_fixture import insert_raw_events

pytestmark = pytest.mark.e2e


def mart_numbers(path: str, category: str | None = None, start: str | None = None) -> dict:
    """The headline numbers and two charts' series, by direct SQL on the marts."""
    con = duckdb.connect(path, read_only=True)
    try:
        category_clause = "($category::VARCHAR IS NULL OR product_category = $category)"
        params = {"category": category, "start": start or "0001-01-01"}
        net, orders = con.execute(
            f"""SELECT (SELECT sum(net_revenue_eur) FROM marts.dm_daily_revenue
                        WHERE {category_clause} AND revenue_date >= $start::DATE),
                       (SELECT count(*) FROM marts.fct_orders
                        WHERE {category_clause} AND order_date >= $start::DATE)""",
            params,
        ).fetchone()
        viewed, paid = con.execute(
            "SELECT sum(sessions_with_view), sum(sessions_with_payment) FROM marts.dm_daily_funnel"
            " WHERE funnel_date >= $start::DATE",
            {"start": params["start"]},
        ).fetchone()
        (dead,) = con.execute(
            "SELECT coalesce(sum(dead_letters), 0) FROM marts.dm_dead_letters_daily"
            " WHERE dead_letter_date >= $start::DATE",
            {"start": params["start"]},
        ).fetchone()
        daily = con.execute(
            f"SELECT strftime(revenue_date, '%Y-%m-%d'), sum(net_revenue_eur) FROM marts.dm_daily_revenue"
            f" WHERE {category_clause} AND revenue_date >= $start::DATE GROUP BY 1 ORDER BY 1",
            params,
        ).fetchall()
        funnel = con.execute(
            "SELECT sum(sessions_with_view), sum(sessions_with_cart), sum(sessions_with_order),"
            " sum(sessions_with_payment) FROM marts.dm_daily_funnel WHERE funnel_date >= $start::DATE",
            {"start": params["start"]},
        ).fetchone()
    finally:
        con.close()
    return {
        "kpis": {
            "net_revenue_eur": f"€{net or 0:,.0f}",
            "orders": f"{orders:,}",
            "conversion": f"{paid / viewed:.1%}",
            "dead_letters": f"{dead:,}",
        },
        "daily_dates": [day for day, _ in daily],
        "daily_revenue": [value for _, value in daily],
        "funnel": list(funnel),
    }


def check_page_against_marts(driver, warehouse: str, category: str | None = None, start: str | None = None) -> None:
    expected = mart_numbers(warehouse, category, start)
    assert kpi_texts(driver) == expected["kpis"]
    (revenue,) = chart_traces(driver, "revenue")
    assert revenue["x"] == expected["daily_dates"]
    assert revenue["y"] == pytest.approx(expected["daily_revenue"])
    (funnel,) = chart_traces(driver, "funnel")
    assert funnel["type"] == "funnel" and funnel["x"] == expected["funnel"]


def test_every_chart_renders_with_the_marts_numbers_and_filters_change_them(warehouse, tmp_path):
    with served(warehouse) as url, chromium(str(tmp_path / "chromium")) as driver:
        driver.get(url)
        wait_for_render(driver, "")
        assert driver.find_element("tag name", "body").get_attribute("data-status") == "ok"
        assert all(marks > 0 for marks in drawn_charts(driver).values()), drawn_charts(driver)
        check_page_against_marts(driver, warehouse)
        everything = kpi_texts(driver)

        Select(driver.find_element("id", "category")).select_by_value("books")
        wait_for_render(driver, "category=books")
        check_page_against_marts(driver, warehouse, category="books")
        assert kpi_texts(driver)["net_revenue_eur"] != everything["net_revenue_eur"]
        assert driver.current_url.endswith("?category=books")

        # Date inputs take keystrokes in the browser's locale; set the value as a picker would.
        driver.execute_script(
            "const input = document.getElementById('start'); input.value = '2026-11-02';"
            "input.dispatchEvent(new Event('change'));"
        )
        wait_for_render(driver, "start=2026-11-02&category=books")
        check_page_against_marts(driver, warehouse, category="books", start="2026-11-02")

        driver.find_element("id", "reset").click()
        wait_for_render(driver, "")
        assert kpi_texts(driver) == everything
        assert console_errors(driver) == []


def test_new_rows_show_without_reloading_the_page(warehouse, tmp_path):
    with served(warehouse) as url, chromium(str(tmp_path / "chromium")) as driver:
        driver.get(url)
        wait_for_render(driver, "")
        events = driver.find_element("css selector", '[data-fresh="events"]')
        assert events.text == "5"
        # As the pipelines write: waiting for the page's reads to stand aside (writers first).
        con = DuckDBWarehouse(warehouse).connect(wait_for_lock=60)
        try:
            insert_raw_events(
                con,
                [
                    ("live-1", "page_view", 1, "2026-11-05 08:00:00+00", "u", "s", "2026-11-05",
                     "2026-11-05 08:00:01+00", "projects/p/subscriptions/s#7", "t", "stream-2"),
                ],
            )  # fmt: skip
        finally:
            con.close()
        wait_for(driver, lambda _: events.text == "6")
        assert console_errors(driver) == []


def test_a_busy_warehouse_shows_a_message_then_recovers(warehouse, tmp_path):
    with served(warehouse) as url, chromium(str(tmp_path / "chromium")) as driver:
        driver.get(url)
        wait_for_render(driver, "")
        before = kpi_texts(driver)
        banner = driver.find_element("id", "banner")
        with writer_holding(warehouse):
            wait_for(driver, lambda _: "busy" in banner.text)
            # What was drawn stays on screen while the writer works.
            assert kpi_texts(driver) == before
        seen = renders(driver)
        wait_for(driver, lambda d: renders(d) > seen and not banner.is_displayed())
        assert console_errors(driver) == []


def test_no_warehouse_yet_is_a_message_on_the_page(tmp_path):
    with served(str(tmp_path / "none.duckdb")) as url, chromium(str(tmp_path / "chromium")) as driver:
        driver.get(url)
        banner = driver.find_element("id", "banner")
        wait_for(driver, lambda _: banner.is_displayed())
        assert "No warehouse at" in banner.text and "beam-ecommerce demo" in banner.text
        assert "Traceback" not in driver.page_source
        assert all(marks == 0 for marks in drawn_charts(driver).values())
        assert set(CHARTS) == set(drawn_charts(driver))
        assert console_errors(driver) == []


def test_the_snapshot_renders_from_a_file_without_a_server(warehouse, tmp_path):
    snapshot = write_snapshot(DuckDBReader(warehouse), tmp_path / "dashboard.html")
    with chromium(str(tmp_path / "chromium")) as driver:
        driver.get(snapshot.as_uri())
        wait_for_render(driver, "")
        assert all(marks > 0 for marks in drawn_charts(driver).values()), drawn_charts(driver)
        check_page_against_marts(driver, warehouse)
        assert not driver.find_element("id", "category").is_enabled()
        assert "Static snapshot" in driver.find_element("id", "banner").text
        assert console_errors(driver) == []
