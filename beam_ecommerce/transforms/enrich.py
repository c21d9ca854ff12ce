"""EnrichEvents: valid events to warehouse rows (derived fields, PII pseudonymized)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import itemgetter, setitem
from typing import Any

import apache_beam as beam
from apache_beam.utils.secret import Secret

from beam_ecommerce.records import Event, EventBatch
from beam_ecommerce.records.dead_letter import ENRICH, RunContext
from beam_ecommerce.schemas import event_schemas
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RecordError, RouteBatch
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

    def columns(self, fields: frozenset[str]) -> frozenset[str]:
        """Every column a row can have after enriching an event that can have ``fields``."""
        derived = {"event_date", "source", "revenue", *self._stamps}
        return (fields - {name for name, _ in self._pii}) | {hash_name for _, hash_name in self._pii} | derived

    def start_batch(self) -> None:
        self._stamps = {
            "ingested_at": datetime.now(UTC),
            "pipeline_version": self.context.pipeline_version,
            "run_id": self.context.run_id,
        }

    def enrich_rows(self, rows: list[dict[str, Any]], sources: list[str]) -> None:
        """``rows`` made ``raw_events`` rows in place, column by column.

        Raises ``RecordError`` before changing any row if a timestamp cannot be read.
        """
        try:
            times = list(map(datetime.fromisoformat, map(itemgetter("occurred_at"), rows)))
        except ValueError as error:
            raise RecordError("invalid_timestamp", f"occurred_at: {error}") from None
        _set_column(rows, "occurred_at", times)
        _set_column(rows, "event_date", map(datetime.date, times))
        _set_column(rows, "source", sources)
        deque(map(dict.update, rows, repeat(self._stamps)), maxlen=0)
        for name, hash_name in self._pii:
            tokens = self._pseudonymize.many(list(map(dict.pop, rows, repeat(name), repeat(None))))
            # Only rows that carried the field get its hash: a token is never empty.
            _set_column(compress(rows, tokens), hash_name, filter(None, tokens))
        for row in rows:
            if row["event_type"] == "order_placed":
                row["revenue"] = order_revenue(row["items"])


def _set_column(rows: Iterable[dict[str, Any]], name: str, values: Iterable[Any]) -> None:
    """``row[name] = value`` for each row and value, in one pass at C speed."""
    deque(map(setitem, rows, repeat(name), values), maxlen=0)


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
        self.enricher.enrich_rows([event.fields], [event.raw.source])
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
