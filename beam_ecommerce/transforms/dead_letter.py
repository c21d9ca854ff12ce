"""The batch-routing DoFn every stage of the core is built on, and the dead-letter output it feeds.

The dead-letter row itself is a record (``beam_ecommerce.records.dead_letter``).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from beam_ecommerce import metrics
from beam_ecommerce.records import Event, EventBatch
from beam_ecommerce.records.dead_letter import UNEXPECTED_ERROR, RunContext, dead_letter_row

DEAD_LETTER_TAG = "dead_letter"


class RecordError(Exception):
    """A record cannot go on: it belongs in the dead letter under ``error_type``."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class RouteBatch(beam.DoFn):
    """Applies one stage of the core to each record of a batch.

    Records the stage accepts leave as one ``EventBatch`` (the main output); each record it
    rejects leaves on its own on the ``dead_letter`` output, with the reason. A
    ``RecordError`` is an expected rejection; any other exception is a bug or an input
    nobody foresaw, and is dead-lettered with its stack trace instead of failing the
    bundle, so one record can never stop the pipeline or take its batch down with it.
    """

    stage: str = ""

    def __init__(self, context: RunContext) -> None:
        self.context = context
        self._records_out = metrics.counter(f"{self.stage}_out")

    def apply(self, item: Any) -> Any:
        """The stage's work on one record; raises ``RecordError`` to reject it."""
        raise NotImplementedError

    def process(self, batch: Iterable[Any]) -> Iterator[Any]:
        accepted = EventBatch()
        for item in batch:
            try:
                accepted.append(self.apply(item))
            except RecordError as error:
                yield self._reject(item, error.error_type, str(error), None)
            except Exception as error:  # noqa: BLE001 - routed to the dead letter with its trace
                message = f"{type(error).__name__}: {error}"
                yield self._reject(item, UNEXPECTED_ERROR, message, traceback.format_exc())
        if accepted:
            self._records_out.inc(len(accepted))
            yield accepted

    def _reject(self, item: Any, error_type: str, message: str, stacktrace: str | None) -> pvalue.TaggedOutput:
        raw, event = (item.raw, item.fields) if isinstance(item, Event) else (item, None)
        metrics.counter(metrics.DEAD_LETTERS).inc()
        metrics.dead_letter_counter(self.stage, error_type).inc()
        row = dead_letter_row(raw, self.context, self.stage, error_type, message, stacktrace=stacktrace, event=event)
        return pvalue.TaggedOutput(DEAD_LETTER_TAG, row)
