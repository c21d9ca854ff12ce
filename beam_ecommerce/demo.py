"""The demo's streaming leg: the local emulator, the stream and a live publisher, reconciled."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from beam_ecommerce.generator import GeneratorConfig
from beam_ecommerce.generator.publish import publish_events
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse, LoadReport, WarehouseError
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, pubsub_emulator
from beam_ecommerce.pipelines import streaming
from beam_ecommerce.pipelines.options import new_run_id

PROJECT = "local-shop"


@dataclass
class StreamLeg:
    """What the leg published and what the stream landed."""

    published: Counter
    landed: LoadReport
    seconds: float
    report: str
    """Path of the stream run's JSON report."""
    drained: bool
    """Whether the stream drained at its stop (every window closed with its final pane) or was cancelled."""

    @property
    def reconciles(self) -> bool:
        return self.landed.accounted == sum(self.published.values())


def run_stream_leg(config: GeneratorConfig, warehouse_path: str, rate: float | None, timeout: float = 120) -> StreamLeg:
    """Publishes ``config``'s records while the stream runs; stops when all have landed (or at ``timeout``).

    The stop drains the stream, so that its live windows close with their final panes.
    """
    warehouse = DuckDBWarehouse(warehouse_path)
    run_id = new_run_id()
    with pubsub_emulator(PROJECT):
        topic, subscription = create_topic_and_subscription(PROJECT, "events", "events-stream")
        stop = threading.Event()
        argv = [f"--input_subscription={subscription}", f"--duckdb_path={warehouse_path}", f"--run_id={run_id}"]
        outcome: list[streaming.StreamRun | None] = []
        stream = threading.Thread(target=lambda: outcome.append(streaming.run(argv, stop=stop)))
        stream.start()
        started = time.monotonic()
        try:
            published = publish_events(config, topic, rate)
            while warehouse.accounted_so_far(run_id) < sum(published.values()) and time.monotonic() - started < timeout:
                time.sleep(0.5)
            seconds = time.monotonic() - started
        finally:
            stop.set()
            stream.join()
    if not outcome or outcome[0] is None:
        raise WarehouseError(f"the stream run {run_id} did not finish")
    return StreamLeg(published, outcome[0].landed, seconds, outcome[0].report, outcome[0].drained)
