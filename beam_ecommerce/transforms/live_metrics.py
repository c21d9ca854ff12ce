"""LiveMetrics: the speed layer's figures per event-time minute, fired early, on time and late.

After the core (and the stream's dedupe), every valid event and every dead letter is
counted in a fixed one-minute window of event time, per product category and currency:
orders, gross revenue, items, events by type and dead letters by stage. The window fires
*early* every few seconds of processing time while the minute is still filling, *on
time* when the watermark passes its end, and *late* for each event that arrives behind
the watermark but within the allowed lateness; events later still are dropped here
(the core's ``LatenessGate`` has already made them dead letters). Panes accumulate, so
each firing carries the window's whole figure so far: a sink keeps the newest pane per
(window start, category, currency), so a late pane corrects the figure and a replayed
pane, whose index is not newer, changes nothing. Beam's ``leader_board`` example
uses the same windowing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.utils.windowed_value import PaneInfoTiming

from beam_ecommerce.records import Row
from beam_ecommerce.records.dead_letter import RunContext

WINDOW_SECONDS = 60
EARLY_FIRING_SECONDS = 2
# Events and dead letters without a category or currency are counted under this value.
NONE = "none"
ORDER_PLACED = "order_placed"
_TIMINGS = {
    PaneInfoTiming.EARLY: "EARLY",
    PaneInfoTiming.ON_TIME: "ON_TIME",
    PaneInfoTiming.LATE: "LATE",
    PaneInfoTiming.UNKNOWN: "UNKNOWN",
}


def order_category(items: list[Row]) -> str:
    """The category of an order's largest line by value, the first line on a tie (as ``fct_orders``)."""
    best = max(enumerate(items), key=lambda line: (line[1]["unit_price"] * line[1]["quantity"], -line[0]), default=None)
    return best[1]["product_category"] if best else NONE


def metrics_key(record: Row) -> tuple[str, str]:
    """(product category, currency) of a row; a dead letter has neither."""
    if "dead_letter_id" in record:
        return NONE, NONE
    if record["event_type"] == ORDER_PLACED:
        category = order_category(record.get("items") or [])
    else:
        category = record.get("product_category") or NONE
    return category, record.get("currency") or NONE


def in_event_time(element: Row | list[Row]) -> Iterator[window.TimestampedValue]:
    """Rows (one, or a batch as ``ProcessEvents`` emits them) and dead letters, each keyed and stamped.

    A row's time is when it occurred; a dead letter's, when it failed (as ``dm_dead_letters_daily``).
    """
    for record in element if isinstance(element, list) else (element,):
        if "dead_letter_id" in record:
            moment = datetime.fromisoformat(record["timestamp"])
        else:
            moment = record["occurred_at"]
        yield window.TimestampedValue((metrics_key(record), record), moment.timestamp())


@dataclass
class LiveFigures:
    """What one window holds for one key so far."""

    orders: int = 0
    gross_revenue: float = 0.0
    items: int = 0
    events_by_type: dict[str, int] = field(default_factory=dict)
    dead_letters_by_stage: dict[str, int] = field(default_factory=dict)

    def add(self, record: Row) -> None:
        if "dead_letter_id" in record:
            stage = record["stage"]
            self.dead_letters_by_stage[stage] = self.dead_letters_by_stage.get(stage, 0) + 1
            return
        event_type = record["event_type"]
        self.events_by_type[event_type] = self.events_by_type.get(event_type, 0) + 1
        if event_type == ORDER_PLACED:
            self.orders += 1
            self.gross_revenue += record.get("revenue") or 0.0
            self.items += sum(line["quantity"] for line in record.get("items") or ())

    def merge(self, other: LiveFigures) -> None:
        self.orders += other.orders
        self.gross_revenue += other.gross_revenue
        self.items += other.items
        for mine, theirs in (
            (self.events_by_type, other.events_by_type),
            (self.dead_letters_by_stage, other.dead_letters_by_stage),
        ):
            for name, count in theirs.items():
                mine[name] = mine.get(name, 0) + count


class SumLiveFigures(beam.CombineFn):
    """Rows and dead letters -> their ``LiveFigures``."""

    def create_accumulator(self) -> LiveFigures:
        return LiveFigures()

    def add_input(self, figures: LiveFigures, record: Row) -> LiveFigures:
        figures.add(record)
        return figures

    def merge_accumulators(self, accumulators: Iterable[LiveFigures]) -> LiveFigures:
        merged = LiveFigures()
        for figures in accumulators:
            merged.merge(figures)
        return merged

    def extract_output(self, figures: LiveFigures) -> LiveFigures:
        return figures


class ToLiveMetricsRow(beam.DoFn):
    """One pane of one window and key -> a ``live_metrics`` row with the pane's timing."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def process(
        self,
        keyed: tuple[tuple[str, str], LiveFigures],
        win=beam.DoFn.WindowParam,
        pane=beam.DoFn.PaneInfoParam,
    ) -> Iterator[Row]:
        (category, currency), figures = keyed
        emitted_at = datetime.now(UTC)
        window_end = win.end.to_utc_datetime().replace(tzinfo=UTC)
        timing = _TIMINGS[pane.timing]
        yield {
            "window_start": win.start.to_utc_datetime().replace(tzinfo=UTC),
            "window_end": window_end,
            "product_category": category,
            "currency": currency,
            "orders": figures.orders,
            "gross_revenue": round(figures.gross_revenue, 2),
            "items": figures.items,
            "events": sum(figures.events_by_type.values()),
            "events_by_type": [{"event_type": t, "events": n} for t, n in sorted(figures.events_by_type.items())],
            "dead_letters": sum(figures.dead_letters_by_stage.values()),
            "dead_letters_by_stage": [
                {"stage": s, "dead_letters": n} for s, n in sorted(figures.dead_letters_by_stage.items())
            ],
            "pane_timing": timing,
            "pane_index": pane.index,
            "emitted_at": emitted_at,
            "watermark_lag_seconds": None if timing == "EARLY" else (emitted_at - window_end).total_seconds(),
            "pipeline_version": self.context.pipeline_version,
            "run_id": self.context.run_id,
        }


class LiveMetrics(beam.PTransform):
    """(rows, dead letters) -> ``live_metrics`` rows, one per pane of each minute and key.

    ``rows`` are the stream's valid events, single rows or ``RowBatch`` elements (put it
    after the stream's dedupe, so that a re-send is not counted twice); ``dead_letters``
    the core's dead letters. Windows fire every ``early_firing`` of processing time while
    they fill, at the watermark, and once per late arrival up to ``allowed_lateness``.
    """

    def __init__(
        self,
        context: RunContext,
        allowed_lateness: timedelta,
        early_firing: timedelta = timedelta(seconds=EARLY_FIRING_SECONDS),
        window_seconds: int = WINDOW_SECONDS,
    ) -> None:
        super().__init__()
        self.context = context
        self.allowed_lateness = allowed_lateness
        self.early_firing = early_firing
        self.window_seconds = window_seconds

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        rows, dead_letters = inputs
        return (
            (rows, dead_letters)
            | "Merge" >> beam.Flatten()
            | "KeyInEventTime" >> beam.FlatMap(in_event_time)
            | "Minutes"
            >> beam.WindowInto(
                window.FixedWindows(self.window_seconds),
                trigger=trigger.AfterWatermark(
                    early=trigger.AfterProcessingTime(int(self.early_firing.total_seconds())),
                    late=trigger.AfterCount(1),
                ),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                allowed_lateness=int(self.allowed_lateness.total_seconds()),
            )
            | "SumFigures" >> beam.CombinePerKey(SumLiveFigures())
            | "ToRows" >> beam.ParDo(ToLiveMetricsRow(self.context))
        )
