"""Which warehouse sink a pipeline's options ask for: one choice for batch, streaming and the live metrics."""

from __future__ import annotations

import os

import apache_beam as beam

from beam_ecommerce.io.bigquery.live_metrics import WriteLiveMetricsToBigQuery
from beam_ecommerce.io.bigquery.sinks import BigQuerySink
from beam_ecommerce.io.duckdb.live_metrics import WriteLiveMetricsToDuckDB
from beam_ecommerce.io.duckdb.sinks import DuckDBSink, DuckDBStreamSink
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.pipelines.options import (
    BIGQUERY,
    BatchOptions,
    OptionsError,
    RunOptions,
    dead_letter_dir,
    runner_name,
    runs_locally,
)
from beam_ecommerce.transforms import DeduplicateEvents, RunContext


def duckdb_warehouse(options: RunOptions) -> DuckDBWarehouse:
    """The local warehouse the options name, with their memory, record-size and lock-wait limits."""
    return DuckDBWarehouse(
        options.duckdb_path,
        options.duckdb_memory_limit,
        options.view_as(BatchOptions).max_record_bytes,
        options.warehouse_lock_timeout_seconds,
    )


def warehouse_sink(
    options: RunOptions, context: RunContext, streaming: bool = False, resumable: bool = False
) -> WarehouseSink:
    """BigQuery, or the local DuckDB file (created and checked writable now, before the run).

    Checks at launch that the run can land where it is going: the dead-letter folder
    (``dead_letter_dir``) and, off this machine, a warehouse the workers can reach.
    ``resumable``: a local load that finds the file locked keeps its staged work for
    ``--resume`` instead of failing the run (the batch pipeline's choice).
    """
    dead_letters = dead_letter_dir(options)
    if options.sink == BIGQUERY:
        if not options.bigquery_dataset:
            raise OptionsError("--sink=bigquery needs --bigquery_dataset=PROJECT:DATASET")
        return BigQuerySink(options.bigquery_dataset, dead_letters, context, streaming=streaming)
    if not runs_locally(options):
        raise OptionsError(f"--runner={runner_name(options)} needs --sink=bigquery: a DuckDB file lives on one machine")
    staging_dir = options.staging_dir or os.path.join(os.path.dirname(os.path.abspath(options.duckdb_path)), "staging")
    warehouse = duckdb_warehouse(options)
    warehouse.prepare()
    if streaming:
        return DuckDBStreamSink(warehouse, staging_dir, context.run_id)
    return DuckDBSink(warehouse, staging_dir, dead_letters, context.run_id, resumable)


def write_batch_run(sink: WarehouseSink, row_batches: beam.PCollection, dead_letters: beam.PCollection):
    """Hands a batch run's row batches and dead letters to ``sink``; returns its load reports.

    A sink that cannot absorb duplicates on load (BigQuery's MERGE) gets one row per
    ``event_id``: the dedupe is composed here, in the pipeline, not inside the sink.
    """
    if not sink.absorbs_duplicates:
        row_batches = row_batches | "Deduplicate" >> DeduplicateEvents()
    return sink.write(row_batches, dead_letters)


def live_metrics_sink(options: RunOptions) -> beam.PTransform:
    """BigQuery's ``live_metrics`` (every pane appended) or the local warehouse's (upserts per bundle)."""
    if options.sink == BIGQUERY:
        return WriteLiveMetricsToBigQuery(options.bigquery_dataset)
    return WriteLiveMetricsToDuckDB(duckdb_warehouse(options))
