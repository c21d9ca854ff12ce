"""Headless Debian Chromium driven by Selenium, and the dashboard served by its own command.

The dashboard runs in a separate process, as a user runs it: the test process can then
write the warehouse (as the stream or dbt would) while the page reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHARTS = ("revenue", "orders", "funnel", "top_products", "dead_letters")
KPIS = ("net_revenue_eur", "orders", "conversion", "dead_letters")


def require_browser() -> None:
    """Skips where Chromium is not installed; in CI (which installs it) that is a failure."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        reason = f"{' and '.join(missing)} missing: install with .ci/install-browser.sh"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def chromium(user_data_dir: str) -> Iterator[WebDriver]:
    require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Headless as root, and none of Chromium's background calls home: this machine has no network.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1900",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def served(duckdb_path: str) -> Iterator[str]:
    """``beam-ecommerce dashboard`` on a free port; yields its URL."""
    command = [sys.executable, "-m", "beam_ecommerce.cli", "dashboard", "--duckdb_path", duckdb_path, "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if " on http://" not in line:
            raise AssertionError(f"dashboard did not start: {line!r} {process.stderr.read()}")
        yield line.split(" on ")[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def renders(driver: WebDriver) -> int:
    return int(driver.find_element("tag name", "body").get_attribute("data-renders"))


def wait_for_render(driver: WebDriver, query: str, after: int = 0) -> None:
    """Until the page has drawn an answer for ``query`` (the filters as a query string)."""

    def drawn(d: WebDriver) -> bool:
        body = d.find_element("tag name", "body")
        return renders(d) > after and (body.get_attribute("data-query") or "") == query

    wait_for(driver, drawn)


def kpi_texts(driver: WebDriver) -> dict[str, str]:
    return {name: driver.find_element("css selector", f'[data-kpi="{name}"]').text for name in KPIS}


def chart_traces(driver: WebDriver, name: str) -> list[dict[str, Any]]:
    """The traces plotly.js drew in one chart, read back from the chart's element."""
    return driver.execute_script(
        "return document.getElementById(arguments[0]).data.map("
        "t => ({name: t.name, type: t.type, x: Array.from(t.x || []), y: Array.from(t.y || [])}));",
        f"chart-{name}",
    )


def drawn_charts(driver: WebDriver) -> dict[str, int]:
    """For each chart, how many marks (line points, bars, funnel steps) plotly.js drew as SVG."""
    return {
        name: driver.execute_script(
            "return document.querySelectorAll(arguments[0]).length;",
            f"#chart-{name} .cartesianlayer .trace .point",
        )
        for name in CHARTS
    }


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
