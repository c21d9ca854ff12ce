"""Which warehouse sink a pipeline's options ask for: one choice for batch and streaming."""

from __future__ import annotations

import os

from beam_ecommerce.io.bigquery_warehouse import BigQuerySink
from beam_ecommerce.io.duckdb_warehouse import (
    STREAM_LOCK_TIMEOUT_SECONDS,
    DuckDBSink,
    DuckDBStreamSink,
    DuckDBWarehouse,
)
from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.pipelines.options import BIGQUERY, EventSourceOptions, OptionsError
from beam_ecommerce.transforms import RunContext


def warehouse_sink(
    options: EventSourceOptions,
    context: RunContext,
    streaming: bool = False,
    lock_timeout: float = STREAM_LOCK_TIMEOUT_SECONDS,
) -> WarehouseSink:
    """BigQuery, or the local DuckDB file (created and checked writable now, before the run).

    ``lock_timeout``: how long a stream's load waits while another process holds the file.
    """
    if options.sink == BIGQUERY:
        if not options.bigquery_dataset:
            raise OptionsError("--sink=bigquery needs --bigquery_dataset=PROJECT:DATASET")
        return BigQuerySink(options.bigquery_dataset, options.dead_letter_dir, context, streaming=streaming)
    staging_dir = options.staging_dir or os.path.join(os.path.dirname(os.path.abspath(options.duckdb_path)), "staging")
    warehouse = DuckDBWarehouse(options.duckdb_path, options.duckdb_memory_limit)
    warehouse.prepare()
    if streaming:
        return DuckDBStreamSink(warehouse, staging_dir, context.run_id, lock_timeout)
    return DuckDBSink(warehouse, staging_dir, options.dead_letter_dir, context.run_id)
