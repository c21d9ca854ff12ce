"""The cloud sink of ``LiveMetrics``: BigQuery's Storage Write API with CDC upserts.

Why not streaming inserts, which the raw tables use: they can only append, so every
pane would be a new row and every reader would have to pick the newest pane per key.
The Storage Write API's change data capture upserts by the table's primary key
(window start, category, currency), and its change sequence number, the pane index,
makes BigQuery keep the newest pane: a late pane corrects the row, and a pane written
again (a retried bundle) does not overwrite a newer one. It needs at-least-once mode
and Beam's Java expansion service (the Dataflow runner starts it; it is not available
offline, so this path is exercised only on Google Cloud). The table is created by
Terraform (``terraform/bigquery.tf``) with its primary key.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.utils.timestamp import Timestamp

from beam_ecommerce.records import Row
from beam_ecommerce.schemas import LIVE_METRICS

UPSERT = "UPSERT"


def to_cdc_row(row: Row) -> dict[str, Any]:
    """A ``live_metrics`` row as a CDC upsert: its record, and the pane index as change sequence number.

    The sequence number is hexadecimal, as BigQuery compares it (``_CHANGE_SEQUENCE_NUMBER``).
    """
    record = {
        column.name: Timestamp.from_utc_datetime(row[column.name]) if column.type == "TIMESTAMP" else row[column.name]
        for column in LIVE_METRICS.columns
    }
    return {
        "record": record,
        "row_mutation_info": {"mutation_type": UPSERT, "change_sequence_number": f"{row['pane_index']:X}"},
    }


class WriteLiveMetricsToBigQuery(beam.PTransform):
    """``LiveMetrics`` rows -> ``<project>:<dataset>.live_metrics``, upserted by pane."""

    def __init__(self, dataset: str) -> None:
        super().__init__()
        self.dataset = dataset

    def expand(self, rows):
        return (
            rows
            | "ToUpserts" >> beam.Map(to_cdc_row)
            | "UpsertLiveMetrics"
            >> WriteToBigQuery(
                table=f"{self.dataset}.{LIVE_METRICS.name}",
                schema=LIVE_METRICS.bigquery_schema(),
                method=WriteToBigQuery.Method.STORAGE_WRITE_API,
                use_at_least_once=True,
                use_cdc_writes=True,
                primary_key=list(LIVE_METRICS.primary_key),
                create_disposition=BigQueryDisposition.CREATE_NEVER,
                write_disposition=BigQueryDisposition.WRITE_APPEND,
            )
        )
