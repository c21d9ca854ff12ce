"""ProcessEvents: the one transform core that batch and streaming pipelines share."""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue

from beam_ecommerce.records import EventBatch, RawBatch, RowBatch
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RunContext
from beam_ecommerce.transforms.enrich import EnrichEvents
from beam_ecommerce.transforms.parse import ParseEvents
from beam_ecommerce.transforms.validate import ValidateEvents


class ProcessedEvents(NamedTuple):
    """The two results of the core: every input record is in exactly one of them."""

    rows: pvalue.PCollection
    """``RowBatch`` elements: lists of ``raw_events`` row dicts."""
    dead_letters: pvalue.PCollection
    """One ``dead_letter`` row dict per rejected record."""


class ProcessEvents(beam.PTransform):
    """Parse -> validate -> enrich over batches of ``RawRecord``.

    Input: a PCollection of ``RawBatch`` (file sources emit batches; wrap a per-record
    source such as Pub/Sub in ``BatchRecords``). Output: ``ProcessedEvents``.
    """

    def __init__(self, context: RunContext, pii_key: str) -> None:
        super().__init__()
        self.context = context
        self.pii_key = pii_key

    def expand(self, batches) -> ProcessedEvents:
        parsed = batches | "Parse" >> ParseEvents(self.context)
        valid = parsed.events | "Validate" >> ValidateEvents(self.context)
        enriched = valid.events | "Enrich" >> EnrichEvents(self.context, self.pii_key)
        rows = enriched.events | "ToRows" >> beam.Map(_rows).with_output_types(RowBatch)
        dead_letters = (
            parsed[DEAD_LETTER_TAG],
            valid[DEAD_LETTER_TAG],
            enriched[DEAD_LETTER_TAG],
        ) | "MergeDeadLetters" >> beam.Flatten()
        return ProcessedEvents(rows, dead_letters)


def _rows(events: EventBatch) -> RowBatch:
    return RowBatch(event.fields for event in events)


class BatchRecords(beam.PTransform):
    """Groups a per-record PCollection (e.g. Pub/Sub messages) into the batches the core takes."""

    def __init__(self, max_batch_size: int = 500) -> None:
        super().__init__()
        self.max_batch_size = max_batch_size

    def expand(self, records):
        return (
            records
            | beam.BatchElements(min_batch_size=1, max_batch_size=self.max_batch_size)
            | beam.Map(RawBatch).with_output_types(RawBatch)
        )
