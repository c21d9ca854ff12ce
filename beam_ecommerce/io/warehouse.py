"""The warehouse sink interface: one small contract, a local and a cloud implementation."""

from __future__ import annotations

import abc

import apache_beam as beam


class WarehouseSink(abc.ABC):
    """Lands a run: rows into ``raw_events``, dead letters into ``dead_letter``.

    Dead letters also go to JSONL files (``WriteDeadLetterFiles``) wherever the table is
    not the local store of record: the batch sinks and BigQuery's stream do; the local
    stream (``DuckDBStreamSink``) keeps them in its table only.

    Implementations count what they load under the ``rows_loaded`` and ``duplicates``
    metrics and add the rows the warehouse itself rejects to the dead letters (stage
    ``sink``), so every run reconciles the same way: records in = rows loaded + dead
    letters + duplicates absorbed.
    """

    # Whether a batch run may hand ``write`` the core's row batches with duplicates left in
    # (the sink absorbs them on load); if not, the pipeline deduplicates before the sink.
    absorbs_duplicates: bool = True
    # Whether ``write`` takes rows as the fast core's structs as well as dicts (see ``RowBatch``).
    takes_typed_rows: bool = False

    @abc.abstractmethod
    def write(
        self, rows: beam.PCollection, dead_letters: beam.PCollection, duplicates: beam.PCollection | None = None
    ) -> beam.PCollection:
        """Lands rows and dead-letter rows; returns the sink's load reports.

        ``duplicates`` are rows a stream's dedupe absorbed before the sink: a sink that
        keeps books on its loads counts them there.
        """
