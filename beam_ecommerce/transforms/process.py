"""ProcessEvents: the one transform core that batch and streaming pipelines share."""

from __future__ import annotations

from datetime import timedelta
from itertools import compress, repeat
from operator import attrgetter, is_not, not_
from typing import NamedTuple

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.utils.secret import Secret

from beam_ecommerce import metrics
from beam_ecommerce.collector import raise_collector_thresholds, skip_collection_at_exit
from beam_ecommerce.records import JSON, Event, EventBatch, RawBatch, RawRecord, RowBatch
from beam_ecommerce.records.batches import rows_as_dicts
from beam_ecommerce.records.dead_letter import RunContext
from beam_ecommerce.schemas.decoders import contract_decoder
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RecordError, RouteBatch
from beam_ecommerce.transforms.enrich import EnrichEvent
from beam_ecommerce.transforms.lateness import LatenessGate
from beam_ecommerce.transforms.parse import READ_ERROR_ATTRIBUTE, ParseRecord
from beam_ecommerce.transforms.validate import ValidateEvent
from beam_ecommerce.transforms.warehouse_fit import FitWarehouse


class ProcessedEvents(NamedTuple):
    """The two results of the core: every input record is in exactly one of them."""

    rows: pvalue.PCollection
    """``RowBatch`` elements: lists of ``raw_events`` rows."""
    dead_letters: pvalue.PCollection
    """One ``dead_letter`` row dict per rejected record."""


class RunStages(beam.DoFn):
    """Runs the core's stages one after the other on each batch: the reference core.

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
        rows = RowBatch()
        yield from self.run_stages(batch, rows)
        if rows:
            yield rows

    def run_stages(self, batch: list, rows: RowBatch):
        """Yields the dead letters of ``batch`` through all stages and adds its rows to ``rows``."""
        events = yield from _through(self.stages, batch)
        rows.extend(event.fields for event in events)


def _through(stages: list[RouteBatch], batch: list):
    """Yields the dead letters of ``batch`` through ``stages``; returns the events the last stage accepted."""
    for stage in stages:
        accepted = EventBatch()
        for output in stage.process(batch):
            if isinstance(output, pvalue.TaggedOutput):
                yield output
            else:
                accepted = output
        if not accepted:
            return accepted
        batch = accepted
    return batch


class RunFastCore(RunStages):
    """The same stages, with the records the contract's fast decoder vouches for kept off the per-record path.

    Per batch, the generated decoder (``schemas.decoders``) turns each JSON record it can
    judge into a valid event struct in one call; those are enriched a column at a time, in
    place, and checked against the warehouse's columns. Any record the fast path cannot
    take to the end (the decoder cannot vouch for it, its timestamp does not parse, it has a
    column the table lacks) runs the reference stages from its raw bytes, so every rejection
    and its reason are the reference's own. Stages after enrich other than ``FitWarehouse``
    (the streaming lateness gate) run on the fast rows too, as dicts.

    With ``typed_rows`` the fast rows are enriched and leave as the decoder's structs, which
    msgspec encodes as it does their dicts: a sink that stages rows that way (DuckDB's)
    never has a dict made per row. Otherwise, or where the structs lack a column enriching
    sets (the table is not the decoder's), they are made dicts first, like the reference's.
    """

    def __init__(self, stages: list[RouteBatch], typed_rows: bool = False) -> None:
        super().__init__(stages)
        self.typed_rows = typed_rows
        enrich_at = next(i for i, stage in enumerate(stages) if isinstance(stage, EnrichEvent))
        self.enrich, self.after_enrich, self.fit = stages[enrich_at], stages[enrich_at + 1 : -1], stages[-1]
        if not isinstance(self.fit, FitWarehouse):
            raise TypeError("the fast core needs FitWarehouse as the last stage")
        self._records_in = metrics.counter(metrics.RECORDS_IN)
        # The fast rows pass these stages too: count them where the reference core would.
        self._enriched_out = [metrics.counter(f"{stage.stage}_out") for stage in stages[: enrich_at + 1]]
        self._fit_out = metrics.counter(f"{self.fit.stage}_out")

    def setup(self) -> None:
        super().setup()
        raise_collector_thresholds()
        skip_collection_at_exit()
        decoder = contract_decoder()
        self._decode_batch = decoder.decode_batch
        # The decoder bounds every integer to INT64 and msgspec refuses a float beyond the double
        # range: only the numeric columns enrich derives (revenue) can hold a number that does not fit.
        self._derived_numeric = tuple((name, kind) for name, kind in self.fit.numeric if name not in decoder.fields)
        # Whether the table has a column for every field a decoded event can have once enriched:
        # then no batch needs its rows' keys gathered (0.14 µs an event).
        enriched = self.enrich.enricher.columns(decoder.fields)
        self._columns_fit = enriched <= self.fit.columns
        # Structs can take rows only where they have every column enriching sets, and need no key check.
        self._typed = self.typed_rows and self._columns_fit and enriched <= decoder.row_columns

    def process(self, batch: RawBatch):
        self.enrich.enricher.start_batch()
        if set(map(attrgetter("format"), batch)) == {JSON} and not any(map(attrgetter("attributes"), batch)):
            candidates, rest = batch, RawBatch()
        else:
            candidates, rest = RawBatch(), RawBatch()
            for raw in batch:
                (candidates if raw.format == JSON and not _read_error(raw) else rest).append(raw)
        decoded = self._decode_batch(list(map(attrgetter("payload"), candidates)))
        rows, raws = _keep(decoded, candidates, rest, list(map(is_not, decoded, repeat(None))))
        if not self._typed:
            # Dicts made now: enriching dicts costs less than enriching structs and converting them after.
            rows = RowBatch(rows_as_dicts(rows))
        rows, raws = self._enrich(rows, raws, rest)
        self._records_in.inc(len(batch) - len(rest))
        for counter in self._enriched_out:
            counter.inc(len(rows))
        if self.after_enrich:
            rows = RowBatch(rows_as_dicts(rows)) if self._typed else rows
            yield from self._run_after_enrich(raws, rows)
        self._fit_out.inc(len(rows))
        yield from self.run_stages(rest, rows)
        if rows:
            yield rows

    def _enrich(self, rows: RowBatch, raws: list[RawRecord], rest: RawBatch) -> tuple[RowBatch, list[RawRecord]]:
        """The decoded rows enriched, those that cannot be (or do not fit the table) moved to ``rest``."""
        typed = self._typed
        enrich = self.enrich.enricher.enrich_structs if typed else self.enrich.enricher.enrich_rows
        try:
            enrich(rows, list(map(attrgetter("source"), raws)))
        except RecordError:
            # Some timestamp cannot be read: row by row, the failing ones to the reference stages.
            rows, raws = _keep(
                rows, raws, rest, [_passes(enrich, [row], [raw.source]) for row, raw in zip(rows, raws, strict=True)]
            )
        # Numbers the decoder gave always fit (see setup): only the columns and derived numbers need checking.
        fit = self.fit
        columns_fit = self._columns_fit or set().union(*rows) <= fit.columns  # typed rows: always the former
        if not (columns_fit and fit.top_level_numbers_fit(rows, self._derived_numeric, structs=typed)):
            checked = rows_as_dicts(rows) if typed else rows
            rows, raws = _keep(rows, raws, rest, [_passes(fit.check_row, row) for row in checked])
        return rows, raws

    def _run_after_enrich(self, raws: list[RawRecord], rows: RowBatch):
        """Runs the stages between enrich and ``FitWarehouse`` on the fast rows, keeping in ``rows`` those they pass."""
        events = yield from _through(self.after_enrich, EventBatch(map(Event, raws, rows)))
        rows[:] = [event.fields for event in events]


def _read_error(raw: RawRecord) -> bool:
    return bool(raw.attributes) and any(key == READ_ERROR_ATTRIBUTE for key, _ in raw.attributes)


def _keep(rows: list[dict], raws: list[RawRecord], rest: RawBatch, keep: list[bool]) -> tuple[RowBatch, list]:
    """The rows (and their records) ``keep`` marks; the records of the others go to ``rest``."""
    rest.extend(compress(raws, map(not_, keep)))
    return RowBatch(compress(rows, keep)), list(compress(raws, keep))


def _passes(check, *args) -> bool:
    """Whether ``check(*args)`` goes through without a ``RecordError``."""
    try:
        check(*args)
    except RecordError:
        return False
    return True


def core_stages(context: RunContext, pii_key: str | Secret, allowed_lateness: timedelta | None = None) -> list:
    """The core's stages in order: parse, validate, enrich, the lateness gate (streaming), fit the warehouse."""
    stages = [ParseRecord(context), ValidateEvent(context), EnrichEvent(context, pii_key)]
    if allowed_lateness is not None:
        stages.append(LatenessGate(context, allowed_lateness))
    return [*stages, FitWarehouse(context)]


FAST, REFERENCE = "fast", "reference"
CORES = {FAST: RunFastCore, REFERENCE: RunStages}


class ProcessEvents(beam.PTransform):
    """Parse -> validate -> enrich -> fit the warehouse, over batches of ``RawRecord``.

    Input: a PCollection of ``RawBatch`` (file sources emit batches; wrap a per-record
    source such as Pub/Sub in ``BatchRecords``). Output: ``ProcessedEvents``. The same
    stages as ``ParseEvents`` | ``ValidateEvents`` | ``EnrichEvents``, in one step; a
    streaming pipeline adds the ``LatenessGate`` stage with ``allowed_lateness``. The last
    stage, ``FitWarehouse``, dead-letters rows the warehouse tables cannot hold (stage ``sink``).
    ``core`` picks ``fast`` (``RunFastCore``, the default) or ``reference`` (``RunStages``,
    record by record): same rows, same dead letters. ``typed_rows`` lets the fast core's rows
    leave as the decoder's structs (see ``RowBatch``), for a sink that encodes rows with
    msgspec. The fast core raises its worker process's cyclic-collector thresholds
    (``raise_collector_thresholds``) when it starts, and has the process skip its last
    collection at exit (``skip_collection_at_exit``).
    """

    def __init__(
        self,
        context: RunContext,
        pii_key: str | Secret,
        allowed_lateness: timedelta | None = None,
        core: str = FAST,
        typed_rows: bool = False,
    ) -> None:
        super().__init__()
        self.context = context
        self.pii_key = pii_key
        self.allowed_lateness = allowed_lateness
        self.core = CORES[core]
        self.typed_rows = typed_rows

    def expand(self, batches) -> ProcessedEvents:
        stages = core_stages(self.context, self.pii_key, self.allowed_lateness)
        dofn = RunFastCore(stages, self.typed_rows) if self.core is RunFastCore else self.core(stages)
        core = beam.ParDo(dofn)
        core = core.with_output_types(RowBatch)
        outputs = batches | "ParseValidateEnrich" >> core.with_outputs(DEAD_LETTER_TAG, main="rows")
        return ProcessedEvents(outputs.rows, outputs[DEAD_LETTER_TAG])


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
