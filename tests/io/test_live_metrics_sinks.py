"""The live_metrics sinks: the local upsert keeps the newest pane per key; BigQuery gets CDC upserts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.bigquery_live_metrics import to_cdc_row
from beam_ecommerce.io.duckdb_live_metrics import create_live_metrics, upsert_live_metrics
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse
from beam_ecommerce.schemas import LIVE_METRICS

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


def test_the_bigquery_upsert_carries_the_record_and_the_pane_index_as_sequence_number():
    cdc = to_cdc_row(_pane(26, 3))
    assert cdc["row_mutation_info"] == {"mutation_type": "UPSERT", "change_sequence_number": "1A"}
    assert set(cdc["record"]) == set(LIVE_METRICS.column_names)
    assert cdc["record"]["window_start"] == Timestamp.from_utc_datetime(START)
    assert cdc["record"]["orders"] == 3


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
