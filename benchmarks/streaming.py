"""Publish-to-queryable latency of the local stream, at several publish rates, side by side.

    python -m benchmarks.streaming --rates 50 500 2000 5000 --events 3000

For each rate and contender: a fresh topic on Google's Pub/Sub emulator and the generator
publishing live events at that rate. The contenders: the baseline, Beam's own Pub/Sub
reader on the local runner with no work behind it (``baselines.pubsub_reader_alone``),
and the streaming pipeline into a fresh DuckDB file. A poller records when each
event_id first arrives (baseline) or becomes queryable in ``raw_events`` (pipeline);
latency is that moment minus the moment the event was handed to the Pub/Sub client.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable

import duckdb

from beam_ecommerce.generator import GeneratorConfig, generate_events
from beam_ecommerce.generator.publish import publish_events
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, emulator_missing_reason, pubsub_emulator
from beam_ecommerce.pipelines import streaming
from beam_ecommerce.pipelines.options import new_run_id
from benchmarks import baselines

PROJECT = "benchmark-shop"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Contender:
    """One streaming job under test: started on a subscription, asked what has landed, stopped."""

    name = ""

    def start(self, subscription: str, workdir: str) -> None:
        raise NotImplementedError

    def landed(self) -> Iterable[str]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class _ReaderAlone(_Contender):
    name = "baseline: Beam's Pub/Sub reader alone"

    def start(self, subscription: str, workdir: str) -> None:
        baselines.READER_ARRIVALS.clear()
        self.result = baselines.pubsub_reader_alone(subscription).run()

    def landed(self) -> Iterable[str]:
        return list(baselines.READER_ARRIVALS)

    def stop(self) -> None:
        # Its cancel waits for the reader's last pull; nothing is measured after this.
        threading.Thread(target=self.result.cancel, daemon=True).start()


class _Stream(_Contender):
    name = "beam-ecommerce stream -> DuckDB"

    def start(self, subscription: str, workdir: str) -> None:
        path = os.path.join(workdir, f"{subscription.rsplit('/', 1)[-1]}.duckdb")
        self.run_id = new_run_id()
        self.halt = threading.Event()
        args = [f"--input_subscription={subscription}", f"--duckdb_path={path}", f"--run_id={self.run_id}"]
        self.thread = threading.Thread(target=streaming.run, args=(args,), kwargs={"stop": self.halt})
        self.thread.start()
        # One connection for the whole run: in this process it shares the pipeline's database
        # instance, so polling never waits for, or blocks, the stream's loads.
        self.con = DuckDBWarehouse(path).connect()

    def landed(self) -> Iterable[str]:
        try:
            rows = self.con.execute("SELECT event_id FROM raw_events WHERE run_id = ?", [self.run_id]).fetchall()
        except duckdb.CatalogException:
            return []  # the stream has not created the table yet
        return [event_id for (event_id,) in rows]

    def stop(self) -> None:
        self.con.close()
        self.halt.set()
        self.thread.join()


def measure_rate(contender: _Contender, rate: float, events: int, workdir: str, timeout: float) -> dict[str, float]:
    config = GeneratorConfig(num_events=events, seed=int(rate), invalid_rate=0.0, duplicate_rate=0.0)
    event_ids = [record.event["event_id"] for record in generate_events(config)]
    tag = f"{type(contender).__name__.strip('_').lower()}-{int(rate)}"
    topic, subscription = create_topic_and_subscription(PROJECT, f"events-{tag}", f"stream-{tag}")
    contender.start(subscription, workdir)
    time.sleep(3)  # let the pipeline start pulling
    sent: dict[int, float] = {}
    publisher = threading.Thread(
        target=publish_events, args=(config, topic, rate), kwargs={"on_sent": lambda i, t: sent.__setitem__(i, t)}
    )
    seen: dict[str, float] = {}
    publisher.start()
    deadline = time.monotonic() + timeout
    while len(seen) < events and time.monotonic() < deadline:
        ids = contender.landed()
        now = time.monotonic()
        for event_id in ids:
            seen.setdefault(event_id, now)
        time.sleep(0.02)
    publisher.join()
    contender.stop()
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
    columns = ("publish/s", "landed", "p50 s", "p95 s", "p99 s", "landed/s", "ratio")
    print(f"{'contender':<40}" + "".join(f"{c:>{w}}" for c, w in zip(columns, (10, 14, 8, 8, 8, 10, 7), strict=True)))
    with tempfile.TemporaryDirectory() as workdir, pubsub_emulator(PROJECT):
        for rate in args.rates:
            baseline = None
            for contender in (_ReaderAlone(), _Stream()):
                r = measure_rate(contender, rate, args.events, workdir, args.timeout)
                baseline = baseline or r["throughput"]
                print(
                    f"{contender.name:<40}{r['rate']:>10.0f}{r['landed']:>8}/{r['events']:<5}{r['p50']:>8.2f}"
                    f"{r['p95']:>8.2f}{r['p99']:>8.2f}{r['throughput']:>10.0f}{r['throughput'] / baseline:>6.2f}x",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
