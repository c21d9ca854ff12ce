"""The cloud warehouse: BigQuery ``raw_events`` and ``dead_letter`` through Beam's ``WriteToBigQuery``.

A batch run loads: its rows, deduplicated before the sink by the pipeline (a MERGE
cannot take two source rows for one key), go through free load jobs into a per-run staging table and one MERGE
on the key into the target (``bigquery_load``), so a rerun or replay adds nothing.

A stream inserts: rows go in with streaming inserts (seconds to queryable; billed per
GB) so that a row BigQuery rejects comes back in ``failed_rows_with_errors`` and becomes
a dead letter (stage ``sink``) instead of failing the job or being retried forever:
``RETRY_ON_TRANSIENT_ERROR`` retries only what can succeed.

Tables are created partitioned by day and clustered as the contract says, and tables an
older contract created gain the new contract's columns before the first row is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import orjson
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from beam_ecommerce import metrics
from beam_ecommerce.io.bigquery.load import LoadAndMerge, MergeTarget
from beam_ecommerce.io.dead_letter_files import STREAM_WINDOW_SECONDS, WriteDeadLetterFiles
from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.records import RawRecord, Row
from beam_ecommerce.records.dead_letter import SINK, RunContext, dead_letter_row
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS
from beam_ecommerce.schemas.tables import Table


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


class RejectedRowsToDeadLetters(beam.PTransform):
    """``WriteToBigQuery``'s ``failed_rows_with_errors`` -> dead letters of stage ``sink`` with BigQuery's reasons."""

    def __init__(self, context: RunContext) -> None:
        super().__init__()
        self.context = context

    def expand(self, failed_rows):
        return failed_rows | "ToDeadLetters" >> beam.Map(rejected_row_to_dead_letter, self.context)


class IncompatibleTable(RuntimeError):
    """A BigQuery table's columns contradict the event contract: an additive change cannot fix it."""


# BigQuery's API answers with its legacy type names; the contract spells the standard SQL ones.
_LEGACY_TYPES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD"}


def _legacy_type(name: str) -> str:
    return _LEGACY_TYPES.get(name.upper(), name.upper())


def evolve_table(client: bigquery.Client, table_spec: str, table: Table) -> list[str]:
    """Adds ``table``'s new columns to the BigQuery table ``table_spec`` if it exists; returns their names.

    What ``ALLOW_FIELD_ADDITION`` allows a load job, done as a table patch, because
    streaming inserts cannot add columns: new columns are appended as NULLABLE or
    REPEATED. A column whose type differs, or a new REQUIRED one, raises ``IncompatibleTable``.
    """
    try:
        current = client.get_table(table_spec.replace(":", "."))
    except NotFound:
        return []  # the first write creates it with every column (CREATE_IF_NEEDED)
    existing = {field.name: field for field in current.schema}
    problems = [
        f"{c.name} is {existing[c.name].field_type}, not {c.type}"
        for c in table.columns
        if c.name in existing and _legacy_type(existing[c.name].field_type) != _legacy_type(c.type)
    ]
    added = [c for c in table.columns if c.name not in existing]
    problems += [f"cannot add REQUIRED column {c.name} to existing rows" for c in added if c.mode == "REQUIRED"]
    if problems:
        raise IncompatibleTable(f"table {table_spec} does not match the event contract: {'; '.join(problems)}")
    if added:
        current.schema = [*current.schema, *(bigquery.SchemaField.from_api_repr(c.bigquery()) for c in added)]
        client.update_table(current, ["schema"])
    return [c.name for c in added]


class _EvolveTables(beam.DoFn):
    """Runs once per job: brings existing tables up to the contract (``evolve_table``)."""

    def __init__(self, project: str | None, tables: list[tuple[str, Table]]) -> None:
        self.project = project
        self.tables = tables

    def process(self, _: None) -> Iterator[str]:
        client = bigquery.Client(project=self.project)
        for spec, table in self.tables:
            for name in evolve_table(client, spec, table):
                yield f"{spec}.{name}"


def _when_tables_are_ready(row: Row, _added_columns: list[str]) -> Row:
    """Passes ``row`` on; the side input holds every write back until the tables match the contract."""
    return row


def _count_offered(row: Row) -> Iterator[Row]:
    metrics.counter(metrics.ROWS_LOADED).inc()
    yield row


def insert_into(table: Table, spec: str) -> WriteToBigQuery:
    """Streaming inserts into ``spec``, created partitioned and clustered as ``table`` says if missing."""
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

    A batch run hands it single rows, one per ``event_id`` (``absorbs_duplicates`` is False:
    the pipeline runs ``DeduplicateEvents`` first): it loads them with load jobs and a MERGE.
    A stream hands it single rows already deduplicated by ``DeduplicateStream``
    (``streaming=True``): they go in by streaming inserts.
    """

    absorbs_duplicates = False

    def __init__(self, dataset: str, dead_letter_dir: str, context: RunContext, streaming: bool = False) -> None:
        self.dataset = dataset
        self.dead_letter_dir = dead_letter_dir
        self.context = context
        self.streaming = streaming

    @property
    def project(self) -> str | None:
        return self.dataset.split(":")[0] if ":" in self.dataset else None

    def table_spec(self, table: Table) -> str:
        return f"{self.dataset}.{table.name}"

    def write(self, rows, dead_letters, duplicates=None):
        tables = [(self.table_spec(table), table) for table in (RAW_EVENTS, DEAD_LETTER)]
        ready = beam.pvalue.AsList(
            rows.pipeline
            | "Once" >> beam.Create([None])
            | "EvolveTables" >> beam.ParDo(_EvolveTables(self.project, tables))
        )
        if self.streaming:
            return self._insert(rows, dead_letters, ready)
        return self._load(rows, dead_letters, ready)

    def _load(self, rows, dead_letters, ready):
        """Batch: load jobs into per-run staging tables, then a MERGE each; returns the MERGEs' row counts."""
        inserted = (
            rows
            | "CountOffered" >> beam.FlatMap(_count_offered)
            | "LoadRawEvents" >> LoadAndMerge(self.project, self._target(RAW_EVENTS, "event_id"), ready)
        )
        dead_letters | "WriteDeadLetterFiles" >> WriteDeadLetterFiles(self.dead_letter_dir, self.context.run_id)
        dead_inserted = dead_letters | "LoadDeadLetters" >> LoadAndMerge(
            self.project, self._target(DEAD_LETTER, "dead_letter_id", prune=False), ready
        )
        return (inserted, dead_inserted) | "MergedRows" >> beam.Flatten()

    def _target(self, table: Table, key: str, prune: bool = True) -> MergeTarget:
        return MergeTarget(table, key, self.table_spec(table), self.context.run_id, prune)

    def _insert(self, rows, dead_letters, ready):
        """Streaming: streaming inserts, rejected rows become dead letters; returns those it could not insert."""
        result = (
            rows
            | "WaitForTables" >> beam.Map(_when_tables_are_ready, ready)
            | "CountOffered" >> beam.FlatMap(_count_offered)
            | "ToBigQueryRows" >> beam.Map(to_bigquery_row)
            | "WriteRawEvents" >> insert_into(RAW_EVENTS, self.table_spec(RAW_EVENTS))
        )
        rejected = result.failed_rows_with_errors | "RejectedToDeadLetters" >> RejectedRowsToDeadLetters(self.context)
        all_dead_letters = (dead_letters, rejected) | "AllDeadLetters" >> beam.Flatten()
        all_dead_letters | "WriteDeadLetterFiles" >> WriteDeadLetterFiles(
            self.dead_letter_dir, self.context.run_id, STREAM_WINDOW_SECONDS
        )
        dead_letter_result = (
            all_dead_letters
            | "WaitForDeadLetterTable" >> beam.Map(_when_tables_are_ready, ready)
            | "WriteDeadLetterTable" >> insert_into(DEAD_LETTER, self.table_spec(DEAD_LETTER))
        )
        return dead_letter_result.failed_rows_with_errors
