"""Rows a warehouse rejects: they go to the dead letter with the reason, the run goes on, nothing retries forever.

DuckDB: the core's last stage (``FitWarehouse``) keeps rows the tables cannot hold
from the load, which DuckDB would otherwise fail as a whole (an INT64 overflow) or
quietly truncate (a field without a column), and the rest loads into a real DuckDB file.
BigQuery: no emulator runs Beam's BigQuery connector here (see NOTES), so the sink's
routing of ``failed_rows_with_errors`` is run with Beam's transforms on a faked
PCollection of what ``WriteToBigQuery`` returns, and the cloud pipeline's graph is
checked to feed it from the ``raw_events`` write into both dead-letter outputs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import apache_beam as beam
import duckdb
import orjson
import pytest
from apache_beam.io.gcp.bigquery import WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_ecommerce import metrics
from beam_ecommerce.io.bigquery.sinks import RejectedRowsToDeadLetters, to_bigquery_row
from beam_ecommerce.io.dead_letter_files import WriteDeadLetterFiles
from beam_ecommerce.io.duckdb.sinks import DuckDBSink, rows_to_jsonl
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseError
from beam_ecommerce.records import Event, EventBatch, RawRecord, RowBatch
from beam_ecommerce.transforms import DEAD_LETTER_TAG, RunContext
from beam_ecommerce.transforms.warehouse_fit import FitWarehouse
from tests.cloud_pipeline import bigquery_streaming_pipeline
from tests.samples import sample_event

CONTEXT = RunContext("sink-test", "test")


def _row(event_type: str, event_id: str, **changes) -> dict:
    """A ``raw_events`` row as the enrich stage makes it, with ``changes``."""
    event = sample_event(event_type, event_id)
    del event["email"], event["ip_address"]
    occurred_at = datetime(2026, 11, 3, 10, tzinfo=UTC)
    return (
        event
        | {
            "occurred_at": occurred_at,
            "event_date": date(2026, 11, 3),
            "ingested_at": datetime(2026, 11, 4, tzinfo=UTC),
            "source": f"f.jsonl:{event_id}",
            "pipeline_version": "test",
            "run_id": CONTEXT.run_id,
        }
        | changes
    )


UNFIT = {
    "overflow": _row("add_to_cart", "evt-overflow", quantity=2**63),  # JSON carries it, INT64 cannot
    "nested_overflow": _row(
        "order_placed",
        "evt-nested",
        items=[{"product_id": "p", "product_category": "c", "unit_price": 1.0, "quantity": -(2**63) - 1}],
    ),
    "not_finite": _row("payment", "evt-nan", amount=float("nan")),
    "unknown_column": _row("page_view", "evt-column", coupon="SAVE10"),
}
FIT = [_row(event_type, f"evt-fit-{event_type}") for event_type in ("page_view", "add_to_cart", "payment")]


def _event(row: dict) -> Event:
    return Event(RawRecord(orjson.dumps({"event_id": row["event_id"]}), row["source"]), dict(row))


def _load(pipeline, events: list[Event], warehouse: DuckDBWarehouse, tmp_path):
    fitted = (
        pipeline
        | beam.Create([EventBatch(events)], reshuffle=False)
        | beam.ParDo(FitWarehouse(CONTEXT)).with_outputs(DEAD_LETTER_TAG, main="rows")
    )
    rows = fitted.rows | beam.Map(lambda batch: RowBatch(event.fields for event in batch))
    sink = DuckDBSink(warehouse, str(tmp_path / "staging"), str(tmp_path / "dead_letter"), CONTEXT.run_id)
    return sink.write(rows, fitted[DEAD_LETTER_TAG])


def test_rows_duckdb_cannot_hold_become_sink_dead_letters_and_the_rest_loads(tmp_path):
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.prepare()
    pipeline = TestPipeline()
    _load(pipeline, [_event(row) for row in [*FIT, *UNFIT.values()]], warehouse, tmp_path)
    pipeline.run().wait_until_finish()

    con = duckdb.connect(warehouse.path, read_only=True)
    loaded = {event_id for (event_id,) in con.execute("SELECT event_id FROM raw_events").fetchall()}
    dead = {
        event_id: (stage, error_type, message, payload)
        for event_id, stage, error_type, message, payload in con.execute(
            'SELECT event_id, stage, error_type, "errorMessage", "payloadBytes" FROM dead_letter'
        ).fetchall()
    }
    assert loaded == {row["event_id"] for row in FIT}
    assert {event_id: entry[:2] for event_id, entry in dead.items()} == {
        "evt-overflow": ("sink", "value_out_of_range"),
        "evt-nested": ("sink", "value_out_of_range"),
        "evt-nan": ("sink", "value_out_of_range"),
        "evt-column": ("sink", "unknown_column"),
    }
    assert "column quantity is INT64" in dead["evt-overflow"][2]
    assert "column items.quantity is INT64" in dead["evt-nested"][2]
    assert "column amount is FLOAT64" in dead["evt-nan"][2]
    assert "no column coupon" in dead["evt-column"][2]
    assert dead["evt-overflow"][3] == orjson.dumps({"event_id": "evt-overflow"}), "the record's own bytes"


def test_without_the_check_duckdb_fails_the_whole_load_or_drops_the_field(tmp_path):
    """Why the check exists: what the DuckDB load does with such rows on its own."""
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    staged = tmp_path / "rows.jsonl"
    staged.write_bytes(rows_to_jsonl([*FIT, UNFIT["overflow"]]))
    with pytest.raises(WarehouseError, match="nothing was written"):
        warehouse.load("r", [str(staged)], [])
    staged.write_bytes(rows_to_jsonl([UNFIT["unknown_column"]]))
    warehouse.load("r", [str(staged)], [])
    con = duckdb.connect(warehouse.path, read_only=True)
    assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (1,)
    columns = [name for (name,) in con.execute("SELECT name FROM pragma_table_info('raw_events')").fetchall()]
    assert "coupon" not in columns, "the field was dropped without a word"


BIGQUERY_ERRORS = {
    "evt-overflow": [{"reason": "invalid", "location": "quantity", "message": "Value 1.8e19 out of range for INT64"}],
    "evt-column": [{"reason": "invalid", "location": "coupon", "message": "no such field: coupon."}],
}


def test_rows_bigquery_rejects_become_sink_dead_letters_with_its_reasons():
    failed = [
        ("p:shop.raw_events", to_bigquery_row(UNFIT[name]), BIGQUERY_ERRORS[event_id])
        for name, event_id in (("overflow", "evt-overflow"), ("unknown_column", "evt-column"))
    ]
    pipeline = TestPipeline()
    dead = pipeline | beam.Create(failed) | RejectedRowsToDeadLetters(CONTEXT)
    assert_that(
        dead | beam.Map(lambda d: (d["event_id"], d["stage"], d["error_type"], orjson.loads(d["errorMessage"]))),
        equal_to([(event_id, "sink", "bigquery_rejected", errors) for event_id, errors in BIGQUERY_ERRORS.items()]),
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))["counters"]
    }
    # Rejected rows were counted as loaded when offered: the reconciliation takes them back.
    assert counters[metrics.ROWS_LOADED] == -2
    assert counters["dead_letters.sink.bigquery_rejected"] == 2


def _producers(pipeline) -> dict:
    """Each PCollection's producing transform, and each transform node by full label."""
    nodes, producers = {}, {}

    def walk(node):
        nodes[node.full_label] = node
        for output in node.outputs.values():
            producers[output] = node
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return nodes, producers


def test_the_cloud_stream_routes_rejected_rows_into_both_dead_letter_outputs_without_endless_retries():
    """The stream inserts rows one by one, so BigQuery can reject one; a batch loads by jobs and a MERGE."""
    pipeline = bigquery_streaming_pipeline()
    nodes, producers = _producers(pipeline)
    (reject,) = [node for node in nodes.values() if isinstance(node.transform, RejectedRowsToDeadLetters)]
    (failed_rows,) = reject.inputs
    assert producers[failed_rows].full_label.startswith("WriteRawEvents/")
    (rejected,) = reject.outputs.values()
    flatten = next(
        node for node in nodes.values() if rejected in node.inputs and isinstance(node.transform, beam.Flatten)
    )
    (all_dead_letters,) = flatten.outputs.values()
    consumers = [node for node in nodes.values() if all_dead_letters in node.inputs]
    assert any(isinstance(n.transform, WriteDeadLetterFiles) for n in consumers), "they reach the dead-letter files"
    (wait,) = [n for n in consumers if n.full_label == "WaitForDeadLetterTable"]
    (checked,) = wait.outputs.values()
    table_write = next(n for n in nodes.values() if checked in n.inputs)
    assert table_write.full_label == "WriteDeadLetterTable", "and the dead_letter table"
    writes = [node.transform for node in nodes.values() if isinstance(node.transform, WriteToBigQuery)]
    assert {w.insert_retry_strategy for w in writes} == {RetryStrategy.RETRY_ON_TRANSIENT_ERROR}
