"""ProcessEvents: the one transform core that batch and streaming pipelines share."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.utils.secret import Secret

from beam_ecommerce.records import EventBatch, RawBatch, RowBatch
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RouteBatch, RunContext
from beam_ecommerce.transforms.enrich import EnrichEvent
from beam_ecommerce.transforms.parse import ParseRecord
from beam_ecommerce.transforms.streaming import LatenessGate
from beam_ecommerce.transforms.validate import ValidateEvent
from beam_ecommerce.transforms.warehouse_fit import FitWarehouse


class ProcessedEvents(NamedTuple):
    """The two results of the core: every input record is in exactly one of them."""

    rows: pvalue.PCollection
    """``RowBatch`` elements: lists of ``raw_events`` row dicts."""
    dead_letters: pvalue.PCollection
    """One ``dead_letter`` row dict per rejected record."""


class RunStages(beam.DoFn):
    """Runs the core's stages one after the other on each batch.

    The stages are the DoFns of ``ParseEvents``, ``ValidateEvents`` and ``EnrichEvents``;
    chaining them inside one DoFn gives one output of dead letters without a
    ``Flatten``, which Beam's local runner would hold in memory for the whole input.
    """

    def __init__(self, stages: list[RouteBatch]) -> None:
        self.stages = stages

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def process(self, batch: RawBatch):
        for stage in self.stages:
            accepted = None
            for output in stage.process(batch):
                if isinstance(output, pvalue.TaggedOutput):
                    yield output
                else:
                    accepted = output
            if accepted is None:
                return
            batch = accepted
        yield _rows(batch)


class ProcessEvents(beam.PTransform):
    """Parse -> validate -> enrich -> fit the warehouse, over batches of ``RawRecord``.

    Input: a PCollection of ``RawBatch`` (file sources emit batches; wrap a per-record
    source such as Pub/Sub in ``BatchRecords``). Output: ``ProcessedEvents``. The same
    stages as ``ParseEvents`` | ``ValidateEvents`` | ``EnrichEvents``, in one step; a
    streaming pipeline adds the ``LatenessGate`` stage with ``allowed_lateness``. The last
    stage, ``FitWarehouse``, dead-letters rows the warehouse tables cannot hold (stage ``sink``).
    """

    def __init__(self, context: RunContext, pii_key: str | Secret, allowed_lateness: timedelta | None = None) -> None:
        super().__init__()
        self.context = context
        self.pii_key = pii_key
        self.allowed_lateness = allowed_lateness

    def expand(self, batches) -> ProcessedEvents:
        stages = [ParseRecord(self.context), ValidateEvent(self.context), EnrichEvent(self.context, self.pii_key)]
        if self.allowed_lateness is not None:
            stages.append(LatenessGate(self.context, self.allowed_lateness))
        stages.append(FitWarehouse(self.context))
        core = beam.ParDo(RunStages(stages)).with_output_types(RowBatch)
        outputs = batches | "ParseValidateEnrich" >> core.with_outputs(DEAD_LETTER_TAG, main="rows")
        return ProcessedEvents(outputs.rows, outputs[DEAD_LETTER_TAG])


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
