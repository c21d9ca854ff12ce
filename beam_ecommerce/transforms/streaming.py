"""The streaming edge of the core: the lateness policy, event time and bounded dedupe.

Policy: an event that reaches the pipeline more than ``allowed_lateness`` after it
occurred is *late*: ``LatenessGate`` sends it to the dead letter with stage ``late``
and its original payload (the batch path can load it), never silently dropped. Every
other row is stamped with its event time (``occurred_at``) and passes a dedupe keyed
by ``event_id`` whose state lives until the watermark is ``horizon`` past the event,
then is cleared by a timer. With a horizon of at least the allowed lateness, every
re-send that is not late meets the state of its first copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import BooleanCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from beam_ecommerce import metrics
from beam_ecommerce.records import Event, Row, RowBatch
from beam_ecommerce.transforms.dead_letter import RecordError, RouteBatch, RunContext

LATE = "late"
DUPLICATES = "duplicates"


class LatenessGate(RouteBatch):
    """A stage after enrich: rejects rows that arrived more than ``allowed_lateness`` after they occurred."""

    stage = LATE

    def __init__(self, context: RunContext, allowed_lateness: timedelta) -> None:
        super().__init__(context)
        self.allowed_lateness = allowed_lateness

    def apply(self, event: Event) -> Event:
        delay = event.fields["ingested_at"] - event.fields["occurred_at"]
        if delay > self.allowed_lateness:
            raise RecordError(
                "beyond_allowed_lateness", f"arrived {delay} after it occurred (allowed {self.allowed_lateness})"
            )
        return event


def stamp_event_time(rows: RowBatch) -> Iterator[beam.window.TimestampedValue]:
    """Unbatches rows, each stamped with its event time."""
    for row in rows:
        yield beam.window.TimestampedValue(row, row["occurred_at"].timestamp())


class DropRepeatedEventIds(beam.DoFn):
    """Keyed by ``event_id``: passes the first row; the rest go to ``duplicates`` until the state expires."""

    SEEN = ReadModifyWriteStateSpec("seen", BooleanCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, horizon: timedelta) -> None:
        self.horizon = horizon

    def process(
        self,
        keyed: tuple[str, Row],
        timestamp=beam.DoFn.TimestampParam,
        seen=beam.DoFn.StateParam(SEEN),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ) -> Iterator[Row]:
        if seen.read():
            metrics.counter(metrics.DUPLICATES).inc()
            yield pvalue.TaggedOutput(DUPLICATES, keyed[1])
            return
        seen.write(True)
        expiry.set(Timestamp.of(timestamp) + self.horizon.total_seconds())
        yield keyed[1]

    @on_timer(EXPIRY)
    def expire(self, seen=beam.DoFn.StateParam(SEEN)) -> None:
        seen.clear()


class DeduplicateStream(beam.PTransform):
    """Row batches -> single rows in event time, one per ``event_id`` within ``horizon``.

    Returns the ``rows`` and the ``duplicates`` it absorbed, so that a sink can count them.
    """

    def __init__(self, horizon: timedelta) -> None:
        super().__init__()
        self.horizon = horizon

    def expand(self, row_batches):
        return (
            row_batches
            | "StampEventTime" >> beam.FlatMap(stamp_event_time)
            | "KeyByEventId" >> beam.Map(lambda row: (row["event_id"], row)).with_output_types(tuple[str, Any])
            | "DropRepeats" >> beam.ParDo(DropRepeatedEventIds(self.horizon)).with_outputs(DUPLICATES, main="rows")
        )
