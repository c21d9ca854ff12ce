"""Which sink the stream's ``LiveMetrics`` rows go to: the same choice as the warehouse sink's."""

from __future__ import annotations

import apache_beam as beam

from beam_ecommerce.io.bigquery.live_metrics import WriteLiveMetricsToBigQuery
from beam_ecommerce.io.duckdb.live_metrics import WriteLiveMetricsToDuckDB
from beam_ecommerce.pipelines.options import BIGQUERY, RunOptions
from beam_ecommerce.pipelines.sinks import duckdb_warehouse


def live_metrics_sink(options: RunOptions) -> beam.PTransform:
    """BigQuery's ``live_metrics`` (every pane appended) or the local warehouse's (upserts per bundle)."""
    if options.sink == BIGQUERY:
        return WriteLiveMetricsToBigQuery(options.bigquery_dataset)
    return WriteLiveMetricsToDuckDB(duckdb_warehouse(options))
