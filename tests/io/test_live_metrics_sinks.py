"""The live_metrics sinks: the local upsert keeps the newest pane per key; BigQuery gets every pane."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pytest
from apache_beam.io.gcp.bigquery import WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.bigquery.sinks import to_bigquery_row
from beam_ecommerce.io.duckdb.live_metrics import _UpsertEachBundle, create_live_metrics, upsert_live_metrics
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.pipelines.streaming import build_pipeline
from beam_ecommerce.schemas import LIVE_METRICS
from tests.io.test_bigquery_warehouse import _writes

START = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


def _pane(index: int, orders: int, category: str = "books", run_id: str = "run-1") -> dict:
    return {
        "window_start": START,
        "window_end": START + timedelta(minutes=1),
        "product_category": category,
        "currency": "EUR",
        "orders": orders,
        "gross_revenue": 9.99 * orders,
        "items": orders,
        "events": orders,
        "events_by_type": [{"event_type": "order_placed", "events": orders}],
        "dead_letters": 0,
        "dead_letters_by_stage": [],
        "pane_timing": "EARLY" if index == 0 else "LATE",
        "pane_index": index,
        "emitted_at": START,
        "watermark_lag_seconds": None if index == 0 else 1.5,
        "pipeline_version": "test",
        "run_id": run_id,
    }


def _table(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "SELECT product_category, pane_index, orders, run_id FROM live_metrics ORDER BY product_category"
    ).fetchall()


@pytest.fixture
def con():
    connection = duckdb.connect()
    create_live_metrics(connection)
    yield connection
    connection.close()


def test_a_late_pane_corrects_the_row_and_a_replayed_older_pane_changes_nothing(con):
    upsert_live_metrics(con, [_pane(0, 1), _pane(0, 4, category="garden")])
    upsert_live_metrics(con, [_pane(1, 3)])
    upsert_live_metrics(con, [_pane(0, 1), _pane(1, 99)])  # replays: not newer than the row
    assert _table(con) == [("books", 1, 3, "run-1"), ("garden", 0, 4, "run-1")]


def test_a_restarted_run_replaces_the_rows_of_the_run_before(con):
    upsert_live_metrics(con, [_pane(5, 10)])
    upsert_live_metrics(con, [_pane(0, 2, run_id="run-2")])
    assert _table(con) == [("books", 0, 2, "run-2")]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=12), st.integers(1, 4))
def test_any_order_and_bundling_of_panes_leaves_the_newest(indexes, bundle):
    """Panes of an accumulating window carry growing figures; whatever order they land in, the newest stays."""
    connection = duckdb.connect()
    create_live_metrics(connection)
    try:
        panes = [_pane(i, orders=i + 1) for i in indexes]
        for start in range(0, len(panes), bundle):
            upsert_live_metrics(connection, panes[start : start + bundle])
        assert _table(connection) == [("books", max(indexes), max(indexes) + 1, "run-1")]
    finally:
        connection.close()


def test_the_streaming_pipeline_appends_every_pane_to_bigquery_as_insert_api_json():
    """Built, not run (no BigQuery here): the write the stream's BigQuery sink makes for live_metrics."""
    pipeline, _ = build_pipeline(
        PipelineOptions(
            [
                "--input_topic=projects/local-shop/topics/events",
                "--sink=bigquery",
                "--bigquery_dataset=proj:shop",
                "--dead_letter_dir=/tmp/dead-letters",
            ]
        )
    )
    (write,) = [w for w in _writes(pipeline) if str(w.table_reference.tableId) == LIVE_METRICS.name]
    assert write.method == WriteToBigQuery.Method.STREAMING_INSERTS
    assert write.insert_retry_strategy == RetryStrategy.RETRY_ON_TRANSIENT_ERROR
    assert write.schema == LIVE_METRICS.bigquery_schema()
    assert write.additional_bq_parameters["timePartitioning"] == {"type": "DAY", "field": "window_start"}
    row = to_bigquery_row(_pane(2, 3))
    assert row["window_start"] == "2026-11-03T10:00:00+00:00"
    assert set(row) == set(LIVE_METRICS.column_names)
    assert orjson.loads(orjson.dumps(row)) == row


def test_upserts_from_several_threads_beside_another_writer_all_land(tmp_path):
    """The local runner finishes bundles on several threads while the raw loads write the same file."""
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.prepare()
    con = warehouse.connect()
    create_live_metrics(con)
    con.close()
    failures: list[Exception] = []

    def write(action) -> None:
        for index in range(40):
            connection = warehouse.connect()
            try:
                action(connection, index)
            except Exception as error:  # noqa: BLE001 - collected for the assertion below
                failures.append(error)
            finally:
                connection.close()

    def other_writer(connection, index):
        connection.execute("CREATE TABLE IF NOT EXISTS other (x INT)")
        connection.execute("INSERT INTO other VALUES (?)", [index])

    threads = [
        threading.Thread(target=write, args=(lambda c, i, n=n: upsert_live_metrics(c, [_pane(i, i, f"c{n}")]),))
        for n in range(3)
    ] + [threading.Thread(target=write, args=(other_writer,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    con = warehouse.connect()
    try:
        assert _table(con) == [(f"c{n}", 39, 39, "run-1") for n in range(3)]
    finally:
        con.close()


_HOLD_THE_FILE = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_panes_the_locked_warehouse_cannot_take_are_skipped_and_the_next_ones_land(tmp_path):
    """Another process holds the file past the lock timeout: the bundle's panes are skipped
    (the next pane carries the window's whole value), the stream is not stalled."""
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"), lock_timeout_seconds=0.2)
    setup = duckdb.connect(warehouse.path)
    create_live_metrics(setup)
    setup.close()
    upsert = _UpsertEachBundle(warehouse)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_FILE, warehouse.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        upsert.start_bundle()
        upsert.process(_pane(0, 1))
        upsert.finish_bundle()  # returns: skipped, not raised
    finally:
        holder.communicate(b"")
    upsert.start_bundle()
    upsert.process(_pane(1, 3))
    upsert.finish_bundle()
    con = duckdb.connect(warehouse.path, read_only=True)
    try:
        assert _table(con) == [("books", 1, 3, "run-1")]
    finally:
        con.close()
