"""The bottom layer: records as they flow through the platform, plain data every other layer may use.

``raw``: an input record and the event built from it; ``batches``: the batches (and their coder)
the transform core passes between stages; ``dead_letter``: the row of a record that failed.
"""

from beam_ecommerce.records.batches import EventBatch, RawBatch, RowBatch
from beam_ecommerce.records.dead_letter import RunContext, dead_letter_row
from beam_ecommerce.records.raw import CSV, JSON, READ_ERROR_ATTRIBUTE, TOO_LARGE_ATTRIBUTE, Event, RawRecord, Row

__all__ = [
    "CSV",
    "JSON",
    "READ_ERROR_ATTRIBUTE",
    "TOO_LARGE_ATTRIBUTE",
    "Event",
    "EventBatch",
    "RawBatch",
    "RawRecord",
    "Row",
    "RowBatch",
    "RunContext",
    "dead_letter_row",
]
