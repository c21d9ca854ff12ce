"""DeduplicateEvents: one row per ``event_id`` within a run, on a runner with a real shuffle."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam

from beam_ecommerce import metrics
from beam_ecommerce.records import Row


def _first_by_source(keyed: tuple[str, Iterable[Row]]) -> Row:
    _, rows = keyed
    rows = list(rows)
    if len(rows) > 1:
        metrics.counter(metrics.DUPLICATES).inc(len(rows) - 1)
    # The lowest source reference wins, so every run keeps the same copy.
    return min(rows, key=lambda row: row["source"])


class DeduplicateEvents(beam.PTransform):
    """Batches of rows -> single rows, one per ``event_id``; counts the copies it drops.

    Groups by ``event_id``: on Dataflow the shuffle holds the state. The local DuckDB
    sink does not use it: it deduplicates inside DuckDB on load, which also absorbs
    re-runs, and keeps the DirectRunner from holding a whole input in memory.
    """

    def expand(self, row_batches):
        return (
            row_batches
            | "Unbatch" >> beam.FlatMap(lambda rows: rows)
            | "KeyByEventId" >> beam.Map(lambda row: (row["event_id"], row))
            | "GroupByEventId" >> beam.GroupByKey()
            | "KeepFirst" >> beam.Map(_first_by_source)
        )
