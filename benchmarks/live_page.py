"""Publish -> visible on the dashboard page: the live panel's latency at steady order rates.

    python -m benchmarks.live_page --rates 20 100 --seconds 30 [--base warehouse.duckdb] [--screenshot page.png]

For each rate: a fresh topic on Google's Pub/Sub emulator, the streaming pipeline
(``LiveMetrics`` upserting ``live_metrics``) into a fresh DuckDB file (a copy of
``--base`` if given, e.g. a warehouse with marts, for a full screenshot), the dashboard
served by its own command in its own process, and headless Debian Chromium on it.
The generator's orders are published at the rate, stamped now. The page notes when
each minute's order count changes (``window.liveHistory``); an order is *visible* when
its minute first shows at least as many orders as had been published in that minute up
to and including it. Side by side, the baseline polls the dashboard's JSON
(``api/dashboard?panel=live``) at the page's cadence, every second, without a browser:
the browser's own cost (fetch, JSON, plotly) is the ratio between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime

from beam_ecommerce.generator import GeneratorConfig, generate_events
from beam_ecommerce.generator.publish import live_payload, message_attributes
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, emulator_missing_reason, pubsub_emulator
from beam_ecommerce.pipelines import streaming
from beam_ecommerce.pipelines.options import new_run_id

# The browser and the served dashboard as the dashboard's browser tests drive them.
from tests.dashboard.browser import CHROMEDRIVER, CHROMIUM, chromium, served

PROJECT = "benchmark-shop"
# The generator's share of order_placed among its events is about 1.8 %.
_EVENTS_PER_ORDER = 70
_WARM_UP_SECONDS = 5.0
# The page's own cadence: a faster poller would hold the file from the stream's writes.
_API_POLL_SECONDS = 1.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _orders(count: int, seed: int) -> Iterator:
    """``count`` valid order_placed records of the generator."""
    config = GeneratorConfig(num_events=count * _EVENTS_PER_ORDER, seed=seed, invalid_rate=0.0, duplicate_rate=0.0)
    orders = (r for r in generate_events(config) if r.event["event_type"] == "order_placed")
    for _, record in zip(range(count), orders, strict=False):
        yield record


def publish_orders(topic: str, rate: float, seconds: float, seed: int) -> list[tuple[float, str]]:
    """Publishes ``rate`` orders a second for ``seconds``, stamped now; (publish time, minute) of each."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.001)
    )
    sent: OrderedDict[str, bytes] = OrderedDict()
    published, futures = [], []
    started = time.monotonic()
    for index, record in enumerate(_orders(int(rate * seconds), seed)):
        ahead = started + index / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        now = datetime.now(UTC)
        futures.append(publisher.publish(topic, live_payload(record, now, sent), **message_attributes(record)))
        published.append((now.timestamp(), now.strftime("%Y-%m-%dT%H:%M")))
    for future in futures:
        future.result()
    return published


def visible_latencies(published: list[tuple[float, str]], shown: list[tuple[float, str, int]]) -> list[float]:
    """Seconds from each order's publish to the first moment its minute showed enough orders.

    ``shown`` holds (epoch seconds, minute, orders shown) in time order. Linear: one pass
    over the orders per minute and one over what was shown.
    """
    by_minute: dict[str, list[tuple[float, int]]] = {}
    for at, minute, orders in shown:
        by_minute.setdefault(minute, []).append((at, orders))
    latencies, rank = [], Counter()
    cursor: dict[str, int] = {}
    for published_at, minute in published:
        rank[minute] += 1
        history = by_minute.get(minute, [])
        position = cursor.get(minute, 0)
        while position < len(history) and history[position][1] < rank[minute]:
            position += 1
        cursor[minute] = position
        if position < len(history):
            latencies.append(history[position][0] - published_at)
    return latencies


class _ApiPoller(threading.Thread):
    """The baseline: the dashboard's live JSON, polled every second, noting each change per minute."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}api/dashboard?panel=live"
        self.halt = threading.Event()
        self.shown: list[tuple[float, str, int]] = []

    def run(self) -> None:
        last: dict[str, int] = {}
        while not self.halt.wait(_API_POLL_SECONDS):
            with urllib.request.urlopen(self.url, timeout=10) as response:
                payload = json.load(response)
            now = time.time()
            section = payload.get("sections", {}).get("live", {})
            for minute in section.get("data", []) if section.get("ok") else []:
                if last.get(minute["minute"]) != minute["orders"]:
                    last[minute["minute"]] = minute["orders"]
                    self.shown.append((now, minute["minute"], minute["orders"]))


def measure_rate(rate: float, seconds: float, workdir: str, base: str | None, screenshot: str | None) -> dict:
    tag = f"live-{int(rate)}"
    topic, subscription = create_topic_and_subscription(PROJECT, f"orders-{tag}", f"stream-{tag}")
    path = os.path.join(workdir, f"{tag}.duckdb")
    if base:
        shutil.copyfile(base, path)
    DuckDBWarehouse(path).prepare()
    halt = threading.Event()
    argv = [f"--input_subscription={subscription}", f"--duckdb_path={path}", f"--run_id={new_run_id()}"]
    stream = threading.Thread(target=streaming.run, args=(argv,), kwargs={"stop": halt})
    stream.start()
    try:
        with served(path) as url, chromium(os.path.join(workdir, f"chromium-{tag}")) as driver:
            driver.get(url)
            poller = _ApiPoller(url)
            poller.start()
            time.sleep(_WARM_UP_SECONDS)  # the pipeline starts pulling, the page draws its first answer
            published = publish_orders(topic, rate, seconds, seed=int(rate))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                history = driver.execute_script("return window.liveHistory;")
                shown = [(h["at"] / 1000, h["minute"], h["orders"]) for h in history]
                if len(visible_latencies(published, shown)) == len(published):
                    break
                time.sleep(0.5)
            poller.halt.set()
            poller.join()
            if screenshot:
                driver.save_screenshot(screenshot)
    finally:
        halt.set()
        stream.join()
    on_page = visible_latencies(published, shown)
    on_api = visible_latencies(published, poller.shown)
    return {"rate": rate, "orders": len(published), "page": on_page, "api": on_api}


def _summary(latencies: list[float]) -> tuple[float, float, float]:
    if not latencies:
        return float("nan"), float("nan"), float("nan")
    return _percentile(latencies, 0.5), _percentile(latencies, 0.95), statistics.fmean(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[20, 100])
    parser.add_argument("--seconds", type=float, default=30, help="how long each rate publishes")
    parser.add_argument("--base", help="a warehouse to start from (copied), e.g. one with marts")
    parser.add_argument("--screenshot", help="save the page at the end of the last rate here (PNG)")
    args = parser.parse_args()
    if reason := emulator_missing_reason():
        print(reason)
        return 1
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        print("Chromium or ChromeDriver missing: bash .ci/install-browser.sh")
        return 1
    print(f"{'measured':<44}{'orders/s':>9}{'visible':>12}{'p50 s':>8}{'p95 s':>8}{'mean s':>8}{'p95 ratio':>10}")
    with tempfile.TemporaryDirectory() as workdir, pubsub_emulator(PROJECT):
        for number, rate in enumerate(args.rates):
            last = number == len(args.rates) - 1
            result = measure_rate(rate, args.seconds, workdir, args.base, args.screenshot if last else None)
            api = _summary(result["api"])
            for name, latencies in (
                ("baseline: dashboard JSON polled every 1 s", result["api"]),
                ("page: live panel in headless Chromium", result["page"]),
            ):
                p50, p95, mean = _summary(latencies)
                print(
                    f"{name:<44}{rate:>9.0f}{len(latencies):>6}/{result['orders']:<5}{p50:>8.2f}{p95:>8.2f}"
                    f"{mean:>8.2f}{p95 / api[1]:>9.2f}x",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
