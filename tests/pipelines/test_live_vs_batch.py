"""The speed layer agrees with the batch layer: the stream's live_metrics against the marts after dbt build.

The stream is fed in process by Beam's TestStream (the pipeline's own transforms and
local sinks, from ``ProcessEvents`` on); the generator's records, malformed ones and
re-sends included, are stamped as recent events over several minutes, arriving out of
order, then the watermark passes them all and every window fires on time.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream

from beam_ecommerce import dbt_project
from beam_ecommerce.generator import GeneratorConfig
from beam_ecommerce.generator.publish import live_payload
from beam_ecommerce.generator.record_stream import generate_events
from beam_ecommerce.io.duckdb.live_metrics import WriteLiveMetricsToDuckDB
from beam_ecommerce.io.duckdb.sinks import DuckDBStreamSink
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.live_vs_batch import LiveVsBatch, compare_live_with_marts
from beam_ecommerce.records import RawRecord
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from beam_ecommerce.transforms.live_metrics import LiveMetrics
from beam_ecommerce.transforms.stream_dedupe import DeduplicateStream
from tests.conftest import built_once, copy_warehouse

LATENESS = timedelta(hours=1)
CONTEXT = RunContext("live-vs-batch", "test")


def _messages(now: datetime, minutes: int) -> list[RawRecord]:
    """The generator's records as published live over the last ``minutes``, then shuffled (out of order)."""
    count = 600
    step = timedelta(minutes=minutes) / count
    sent: OrderedDict[str, bytes] = OrderedDict()
    records = generate_events(GeneratorConfig(num_events=count, seed=5, num_products=40))
    messages = [
        RawRecord(live_payload(record, now - (count - n) * step, sent), f"projects/p/subscriptions/s#{n}")
        for n, record in enumerate(records)
    ]
    random.Random(7).shuffle(messages)
    return messages


def _stream(warehouse: DuckDBWarehouse, staging: str, messages: list[RawRecord]) -> None:
    stream = TestStream()
    for start in range(0, len(messages), 100):
        stream = stream.add_elements(messages[start : start + 100]).advance_processing_time(3)
    stream = stream.advance_watermark_to_infinity()
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(options=options) as pipeline:
        processed = pipeline | stream | BatchRecords() | ProcessEvents(CONTEXT, "key", LATENESS)
        distinct = processed.rows | DeduplicateStream(2 * LATENESS)
        DuckDBStreamSink(warehouse, staging, CONTEXT.run_id).write(
            distinct.rows, processed.dead_letters, distinct.duplicates
        )
        live = (distinct.rows, processed.dead_letters) | LiveMetrics(CONTEXT, LATENESS)
        _ = live | WriteLiveMetricsToDuckDB(warehouse)


def _stream_then_build(folder: Path) -> None:
    warehouse = DuckDBWarehouse(str(folder / "ecommerce.duckdb"))
    warehouse.prepare()
    _stream(warehouse, str(folder / "staging"), _messages(datetime.now(UTC), minutes=5))
    dbt_project.build(Path(warehouse.path))


@pytest.fixture(scope="session")
def streamed_and_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five minutes of the stream's live_metrics and raw rows, then `dbt build`: made once per session."""
    return built_once(tmp_path_factory, "live-vs-batch", _stream_then_build) / "ecommerce.duckdb"


@pytest.mark.e2e
def test_closed_windows_of_the_stream_equal_the_marts_after_dbt_build(streamed_and_built, tmp_path):
    path = copy_warehouse(streamed_and_built, tmp_path)  # the comparison opens it read-write
    result = compare_live_with_marts(str(path))

    con = duckdb.connect(str(path), read_only=True)
    try:
        ((windows, orders, dead_letters),) = con.execute(
            "SELECT count(*), sum(orders), sum(dead_letters) FROM live_metrics WHERE pane_timing = 'ON_TIME'"
        ).fetchall()
    finally:
        con.close()
    assert orders > 0 and dead_letters > 0, "the stream should have carried orders and malformed records"
    assert (result.compared, result.differing) == (windows, 0)
    assert str(result) == f"live vs batch: {windows} windows compared, 0 differ"


@pytest.mark.e2e
def test_a_changed_live_figure_is_reported_as_a_difference(streamed_and_built, tmp_path):
    """The comparison can fail: one window's orders changed by hand makes exactly one difference."""
    path = copy_warehouse(streamed_and_built, tmp_path)
    con = duckdb.connect(str(path))
    try:
        con.execute("UPDATE live_metrics SET orders = orders + 1 WHERE rowid = (SELECT min(rowid) FROM live_metrics)")
    finally:
        con.close()
    assert compare_live_with_marts(str(path)).differing == 1


def test_a_warehouse_no_stream_has_written_has_no_window_to_compare(tmp_path):
    path = str(tmp_path / "batch-only.duckdb")
    DuckDBWarehouse(path).prepare()
    assert compare_live_with_marts(path) == LiveVsBatch(0, 0)
