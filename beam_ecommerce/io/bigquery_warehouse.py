"""The cloud warehouse: BigQuery ``raw_events`` and ``dead_letter`` through Beam's ``WriteToBigQuery``.

Rows go in with streaming inserts so that a row BigQuery rejects comes back in
``failed_rows_with_errors`` and becomes a dead letter (stage ``sink``) instead of
failing the job or being retried forever: ``RETRY_ON_TRANSIENT_ERROR`` retries only
what can succeed. Duplicates within a run are dropped by ``DeduplicateEvents`` before
the write (Dataflow's shuffle holds that state); tables are created partitioned by
day and clustered as the contract says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import orjson
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy

from beam_ecommerce import metrics
from beam_ecommerce.io.dead_letter_files import WriteDeadLetterFiles
from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.records import RawRecord, Row
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS
from beam_ecommerce.schemas.tables import Table
from beam_ecommerce.transforms.dead_letter import SINK, RunContext, dead_letter_row
from beam_ecommerce.transforms.dedupe import DeduplicateEvents


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def to_bigquery_row(row: Row) -> Row:
    """A ``raw_events`` row in the JSON form of the BigQuery insert API."""
    return {name: _json_value(value) for name, value in row.items()}


def rejected_row_to_dead_letter(failed: tuple[str, Row, Any], context: RunContext) -> Row:
    """A row BigQuery rejected, as a dead letter carrying the row and BigQuery's reasons."""
    _, row, errors = failed
    raw = RawRecord(orjson.dumps(row), row.get("source", "bigquery"))
    metrics.counter(metrics.ROWS_LOADED).dec()
    metrics.counter(metrics.DEAD_LETTERS).inc()
    metrics.dead_letter_counter(SINK, "bigquery_rejected").inc()
    return dead_letter_row(raw, context, SINK, "bigquery_rejected", orjson.dumps(errors).decode(), event=row)


def _count_offered(row: Row) -> Iterator[Row]:
    metrics.counter(metrics.ROWS_LOADED).inc()
    yield row


def _write(table: Table, spec: str) -> WriteToBigQuery:
    return WriteToBigQuery(
        table=spec,
        schema=table.bigquery_schema(),
        method=WriteToBigQuery.Method.STREAMING_INSERTS,
        insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
        additional_bq_parameters={
            "timePartitioning": table.bigquery_time_partitioning(),
            "clustering": {"fields": list(table.cluster_fields)},
        },
    )


class BigQuerySink(WarehouseSink):
    """The cloud sink: ``<project>:<dataset>.raw_events`` / ``.dead_letter`` plus JSONL dead-letter files.

    A batch run hands it row batches and it deduplicates them; a stream hands it single
    rows already deduplicated by ``DeduplicateStream`` (``streaming=True``), and its dead
    letters go to the ``dead_letter`` table only.
    """

    def __init__(self, dataset: str, dead_letter_dir: str, context: RunContext, streaming: bool = False) -> None:
        self.dataset = dataset
        self.dead_letter_dir = dead_letter_dir
        self.context = context
        self.streaming = streaming

    def table_spec(self, table: Table) -> str:
        return f"{self.dataset}.{table.name}"

    def write(self, rows, dead_letters, duplicates=None):
        distinct = rows if self.streaming else rows | "Deduplicate" >> DeduplicateEvents()
        result = (
            distinct
            | "CountOffered" >> beam.FlatMap(_count_offered)
            | "ToBigQueryRows" >> beam.Map(to_bigquery_row)
            | "WriteRawEvents" >> _write(RAW_EVENTS, self.table_spec(RAW_EVENTS))
        )
        rejected = result.failed_rows_with_errors | "RejectedToDeadLetters" >> beam.Map(
            rejected_row_to_dead_letter, self.context
        )
        all_dead_letters = (dead_letters, rejected) | "AllDeadLetters" >> beam.Flatten()
        if not self.streaming:
            all_dead_letters | "WriteDeadLetterFiles" >> WriteDeadLetterFiles(self.dead_letter_dir, self.context.run_id)
        dead_letter_result = all_dead_letters | "WriteDeadLetterTable" >> _write(
            DEAD_LETTER, self.table_spec(DEAD_LETTER)
        )
        return dead_letter_result.failed_rows_with_errors
