"""EnrichEvents: valid events to warehouse rows (derived fields, PII pseudonymized)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
from apache_beam.utils.secret import Secret

from beam_ecommerce.records import Event, EventBatch
from beam_ecommerce.schemas import event_schemas
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, ENRICH, RecordError, RouteBatch, RunContext
from beam_ecommerce.transforms.pii import Pseudonymizer, pii_key_text


def _pii_fields() -> tuple[str, ...]:
    return tuple(sorted({name for schema in event_schemas().values() for name in schema.pii_fields}))


def order_revenue(items: list[dict[str, Any]]) -> float:
    """Gross value of order lines, rounded to cents."""
    return round(sum(item["unit_price"] * item["quantity"] for item in items), 2)


class RowEnricher:
    """The enrich stage's work on one event dict, with what is the same for a whole batch computed once.

    ``start_batch`` fixes the batch's ingest time (a batch is processed at one moment);
    ``enrich`` then turns one valid event into a ``raw_events`` row in place.
    """

    def __init__(self, context: RunContext, pseudonymize: Pseudonymizer) -> None:
        self.context = context
        self._pseudonymize = pseudonymize
        self._pii = tuple((name, f"{name}_hash") for name in _pii_fields())
        self.start_batch()

    def start_batch(self) -> None:
        self._stamps = {
            "ingested_at": datetime.now(UTC),
            "pipeline_version": self.context.pipeline_version,
            "run_id": self.context.run_id,
        }

    def enrich(self, row: dict[str, Any], source: str) -> dict[str, Any]:
        """``row`` made a ``raw_events`` row; ``RecordError`` if its timestamp cannot be read."""
        try:
            occurred_at = datetime.fromisoformat(row["occurred_at"])
        except ValueError as error:
            raise RecordError("invalid_timestamp", f"occurred_at: {error}") from None
        row["occurred_at"] = occurred_at
        row["event_date"] = occurred_at.date()
        if row["event_type"] == "order_placed":
            row["revenue"] = order_revenue(row["items"])
        pop = row.pop
        for name, hash_name in self._pii:
            value = pop(name, None)
            if value is not None:
                row[hash_name] = self._pseudonymize(value)
        row.update(self._stamps)
        row["source"] = source
        return row


class EnrichEvent(RouteBatch):
    """The enrich stage: each valid event to a ``raw_events`` row."""

    stage = ENRICH

    def __init__(self, context: RunContext, pii_key: str | Secret) -> None:
        super().__init__(context)
        self.pii_key = pii_key

    def setup(self) -> None:
        self.enricher = RowEnricher(self.context, Pseudonymizer(pii_key_text(self.pii_key)))

    def process(self, batch):
        self.enricher.start_batch()
        return super().process(batch)

    def apply(self, event: Event) -> Event:
        self.enricher.enrich(event.fields, event.raw.source)
        return event


class EnrichEvents(beam.PTransform):
    """``EventBatch`` of valid events -> ``EventBatch`` whose fields are ``raw_events`` rows.

    Adds ``event_date`` (UTC), ``revenue`` (order_placed), ``ingested_at``, ``source``,
    ``pipeline_version`` and ``run_id``; replaces each PII field (``x-pii`` in the
    contract) by its keyed hash ``<field>_hash``, so clear PII never leaves this step.
    """

    def __init__(self, context: RunContext, pii_key: str | Secret) -> None:
        super().__init__()
        self.context = context
        self.pii_key = pii_key

    def expand(self, batches):
        enrich = beam.ParDo(EnrichEvent(self.context, self.pii_key)).with_output_types(EventBatch)
        return batches | enrich.with_outputs(DEAD_LETTER_TAG, main="events")
