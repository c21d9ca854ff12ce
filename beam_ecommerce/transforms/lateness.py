"""The stream's lateness policy: a core stage that dead-letters events that arrived too late.

An event that reaches the pipeline more than ``allowed_lateness`` after it occurred is
*late*: ``LatenessGate`` sends it to the dead letter with stage ``late`` and its original
payload (the batch path can load it), never silently dropped.
"""

from __future__ import annotations

from datetime import timedelta

from beam_ecommerce.records import Event
from beam_ecommerce.records.dead_letter import RunContext
from beam_ecommerce.transforms.dead_letter import RecordError, RouteBatch

LATE = "late"


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
