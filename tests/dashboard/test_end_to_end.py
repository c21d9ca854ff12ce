"""The whole chain in a real browser: generated events -> batch pipeline -> dbt build (the demo) -> dashboard."""

from __future__ import annotations

import duckdb
import pytest
from selenium.webdriver.support.ui import Select

from tests.conftest import DEMO_EVENTS
from tests.dashboard.browser import chromium, console_errors, drawn_charts, served, wait_for_render
from tests.dashboard.test_browser import check_page_against_marts

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_warehouse(demo_run) -> str:
    """The shared demo's warehouse: generator -> batch pipeline -> dbt build (read only here)."""
    assert demo_run.exit_code == 0, demo_run.out
    return str(demo_run.warehouse)


def _one_value(warehouse: str, sql: str):
    con = duckdb.connect(warehouse, read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_dashboard_on_marts_dbt_built_from_pipeline_output(demo_warehouse, tmp_path):
    category = _one_value(
        demo_warehouse, "SELECT product_category FROM marts.fct_orders GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )
    with served(demo_warehouse) as url, chromium(str(tmp_path / "chromium")) as driver:
        driver.get(url)
        wait_for_render(driver, "")
        assert driver.find_element("tag name", "body").get_attribute("data-status") == "ok"
        assert all(marks > 0 for marks in drawn_charts(driver).values()), drawn_charts(driver)
        check_page_against_marts(driver, demo_warehouse)
        events = driver.find_element("css selector", '[data-fresh="events"]').text
        loaded = _one_value(demo_warehouse, "SELECT count(*) FROM raw_events")
        assert int(events.replace(",", "")) == loaded > DEMO_EVENTS * 3 // 4

        Select(driver.find_element("id", "category")).select_by_value(category)
        wait_for_render(driver, f"category={category}")
        check_page_against_marts(driver, demo_warehouse, category=category)

        driver.execute_script(
            "const input = document.getElementById('start'); input.value = '2026-11-08';"
            "input.dispatchEvent(new Event('change'));"
        )
        wait_for_render(driver, f"start=2026-11-08&category={category}")
        check_page_against_marts(driver, demo_warehouse, category=category, start="2026-11-08")
        assert console_errors(driver) == []
