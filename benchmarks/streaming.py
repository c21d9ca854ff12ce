"""Publish-to-queryable latency of the local stream, at several publish rates.

    python -m benchmarks.streaming --rates 50 200 500 --events 1000

For each rate: a fresh topic on Google's Pub/Sub emulator, the streaming pipeline into a
fresh DuckDB file, and the generator publishing live events at that rate. A poller
records when each event_id first becomes queryable in ``raw_events``; latency is that
moment minus the moment the event was handed to the Pub/Sub client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

import duckdb

from beam_ecommerce.generator import GeneratorConfig, generate_events
from beam_ecommerce.generator.publish import publish_events
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, emulator_missing_reason, pubsub_emulator
from beam_ecommerce.pipelines import streaming
from beam_ecommerce.pipelines.options import new_run_id

PROJECT = "benchmark-shop"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_rate(rate: float, events: int, workdir: str, timeout: float) -> dict[str, float]:
    config = GeneratorConfig(num_events=events, seed=int(rate), invalid_rate=0.0, duplicate_rate=0.0)
    event_ids = [record.event["event_id"] for record in generate_events(config)]
    warehouse_path = os.path.join(workdir, f"rate-{int(rate)}.duckdb")
    warehouse = DuckDBWarehouse(warehouse_path)
    run_id = new_run_id()
    topic, subscription = create_topic_and_subscription(PROJECT, f"events-{int(rate)}", f"stream-{int(rate)}")
    stop = threading.Event()
    args = [f"--input_subscription={subscription}", f"--duckdb_path={warehouse_path}", f"--run_id={run_id}"]
    stream = threading.Thread(target=streaming.run, args=(args,), kwargs={"stop": stop})
    stream.start()
    time.sleep(3)  # let the pipeline start pulling
    sent: dict[int, float] = {}
    publisher = threading.Thread(
        target=publish_events, args=(config, topic, rate), kwargs={"on_sent": lambda i, t: sent.__setitem__(i, t)}
    )
    seen: dict[str, float] = {}
    publisher.start()
    deadline = time.monotonic() + timeout
    # One connection for the whole run: in this process it shares the pipeline's database
    # instance, so polling never waits for, or blocks, the stream's loads.
    con = warehouse.connect()
    while len(seen) < events and time.monotonic() < deadline:
        try:
            ids = con.execute("SELECT event_id FROM raw_events WHERE run_id = ?", [run_id]).fetchall()
        except duckdb.CatalogException:
            ids = []  # the stream has not created the table yet
        now = time.monotonic()
        for (event_id,) in ids:
            seen.setdefault(event_id, now)
        time.sleep(0.02)
    con.close()
    publisher.join()
    stop.set()
    stream.join()
    latencies = [seen[event_id] - sent[index] for index, event_id in enumerate(event_ids) if event_id in seen]
    span = max(seen.values()) - min(sent.values()) if seen else float("inf")
    return {
        "rate": rate,
        "landed": len(latencies),
        "events": events,
        "p50": _percentile(latencies, 0.50) if latencies else float("nan"),
        "p95": _percentile(latencies, 0.95) if latencies else float("nan"),
        "p99": _percentile(latencies, 0.99) if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "throughput": len(latencies) / span,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 200, 500])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    if reason := emulator_missing_reason():
        print(reason)
        return 1
    print(f"{'publish/s':>10}{'landed':>14}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}{'landed/s':>10}")
    with tempfile.TemporaryDirectory() as workdir, pubsub_emulator(PROJECT):
        for rate in args.rates:
            r = measure_rate(rate, args.events, workdir, args.timeout)
            print(
                f"{r['rate']:>10.0f}{r['landed']:>8}/{r['events']:<5}{r['p50']:>8.2f}{r['p95']:>8.2f}"
                f"{r['p99']:>8.2f}{r['throughput']:>10.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
