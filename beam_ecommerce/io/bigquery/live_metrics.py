"""The cloud sink of ``LiveMetrics``: every pane appended to BigQuery's ``live_metrics`` by streaming inserts.

BigQuery's streaming inserts cannot update a row, so the table is the log of panes and
readers take each key's newest pane (the highest ``pane_index``, then the latest
``emitted_at``): the dbt view ``live_minutes`` does, for Metabase. A late pane then
corrects the figure, and a pane written twice (a retried bundle; Beam's insert ids
also de-duplicate most retries) is the same row twice, which changes nothing.

Why not the Storage Write API's CDC upserts, which would keep one row per key: in
Python they run through Beam's Java expansion service, which the pipeline needs at
construction, so the streaming Flex Template's Python launcher (and any offline build)
would need Java and a download from Maven. Streaming inserts are what the raw tables use.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from beam_ecommerce import metrics
from beam_ecommerce.io.bigquery.sinks import insert_into, to_bigquery_row
from beam_ecommerce.schemas import LIVE_METRICS

# A figure BigQuery refuses is derived data, not an input record: it is counted, not dead-lettered.
LIVE_METRICS_REJECTED = "live_metrics_rejected"


def _count_rejected(_: Any) -> None:
    metrics.counter(LIVE_METRICS_REJECTED).inc()


class WriteLiveMetricsToBigQuery(beam.PTransform):
    """``LiveMetrics`` rows -> ``<project>:<dataset>.live_metrics``, one row per pane."""

    def __init__(self, dataset: str) -> None:
        super().__init__()
        self.dataset = dataset

    def expand(self, rows):
        result = (
            rows
            | "ToBigQueryRows" >> beam.Map(to_bigquery_row)
            | "AppendPanes" >> insert_into(LIVE_METRICS, f"{self.dataset}.{LIVE_METRICS.name}")
        )
        return result.failed_rows_with_errors | "CountRejected" >> beam.Map(_count_rejected)
