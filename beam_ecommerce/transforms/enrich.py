"""EnrichEvents: valid events to warehouse rows (derived fields, PII pseudonymized)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import attrgetter, is_not, itemgetter, setitem
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.utils.secret import Secret
from msgspec import UNSET

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


def _struct_order_revenue(items: list[Any]) -> float:
    """``order_revenue`` of the decoder's order lines, which are structs."""
    return order_revenue([{"unit_price": item.unit_price, "quantity": item.quantity} for item in items])


class RowEnricher:
    """The enrich stage's work on a batch of events, with what is the same for the whole batch computed once.

    ``start_batch`` fixes the batch's ingest time (a batch is processed at one moment);
    ``enrich_rows`` (event dicts) and ``enrich_structs`` (the fast decoder's structs) then
    turn valid events into ``raw_events`` rows in place.
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
        """``rows`` (event dicts) made ``raw_events`` rows in place, column by column.

        Raises ``RecordError`` before changing any row if a timestamp cannot be read.
        """
        self._enrich(_DICTS, rows, sources)

    def enrich_structs(self, rows: list[Any], sources: list[str]) -> None:
        """``enrich_rows`` for the decoder's event structs, whose row columns it sets in place."""
        self._enrich(_STRUCTS, rows, sources)

    def _enrich(self, rows_of: _RowAccess, rows: list[Any], sources: list[str]) -> None:
        try:
            times = list(map(datetime.fromisoformat, rows_of.column(rows, "occurred_at")))
        except ValueError as error:
            raise RecordError("invalid_timestamp", f"occurred_at: {error}") from None
        rows_of.set_column(rows, "occurred_at", times)
        rows_of.set_column(rows, "event_date", map(datetime.date, times))
        rows_of.set_column(rows, "source", sources)
        rows_of.set_constants(rows, self._stamps)
        for name, hash_name in self._pii:
            tokens = self._pseudonymize.many(rows_of.take_column(rows, name))
            # Only rows that carried the field get its hash: a token is never empty.
            rows_of.set_column(compress(rows, tokens), hash_name, filter(None, tokens))
        orders = [row for row in rows if rows_of.event_type(row) == "order_placed"]
        rows_of.set_column(orders, "revenue", map(rows_of.revenue, rows_of.column(orders, "items")))


class _RowAccess(NamedTuple):
    """How enrichment reads and writes a batch's rows a column at a time, each in one pass at C speed."""

    column: Callable[[list[Any], str], list[Any]]
    set_column: Callable[[Iterable[Any], str, Iterable[Any]], None]
    set_constants: Callable[[list[Any], dict[str, Any]], None]
    take_column: Callable[[list[Any], str], list[Any]]
    """The column's values (``None`` where a row lacks it), the field removed from every row."""
    event_type: Callable[[Any], str]
    revenue: Callable[[list[Any]], float]


def _set_items(rows: Iterable[dict[str, Any]], name: str, values: Iterable[Any]) -> None:
    deque(map(setitem, rows, repeat(name), values), maxlen=0)


def _set_attributes(rows: Iterable[Any], name: str, values: Iterable[Any]) -> None:
    deque(map(setattr, rows, repeat(name), values), maxlen=0)


def _set_attribute_constants(rows: list[Any], values: dict[str, Any]) -> None:
    for name, value in values.items():
        _set_attributes(rows, name, repeat(value))


def _take_attributes(rows: list[Any], name: str) -> list[Any]:
    values = list(map(getattr, rows, repeat(name), repeat(UNSET)))
    _set_attributes(compress(rows, map(is_not, values, repeat(UNSET))), name, repeat(UNSET))
    return [None if value is UNSET else value for value in values]


_DICTS = _RowAccess(
    column=lambda rows, name: list(map(itemgetter(name), rows)),
    set_column=_set_items,
    set_constants=lambda rows, values: deque(map(dict.update, rows, repeat(values)), maxlen=0),
    take_column=lambda rows, name: list(map(dict.pop, rows, repeat(name), repeat(None))),
    event_type=itemgetter("event_type"),
    revenue=order_revenue,
)
_STRUCTS = _RowAccess(
    column=lambda rows, name: list(map(attrgetter(name), rows)),
    set_column=_set_attributes,
    set_constants=_set_attribute_constants,
    take_column=_take_attributes,
    event_type=attrgetter("event_type"),
    revenue=_struct_order_revenue,
)


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
