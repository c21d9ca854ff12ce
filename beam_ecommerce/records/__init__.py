"""The bottom layer: records as they flow through the platform, plain data every other layer may use.

``raw``: an input record and the event built from it; ``batches``: the batches (and their coder)
the transform core passes between stages; ``dead_letter``: the row of a record that failed.

The batches are imported on first use: their coder is Beam's, and the warehouse resource and
the dashboard use records without a runner.
"""

from typing import Any

from beam_ecommerce.records.dead_letter import RunContext, dead_letter_row
from beam_ecommerce.records.raw import (
    CSV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_RECORD_BYTES,
    JSON,
    READ_ERROR_ATTRIBUTE,
    TOO_LARGE_ATTRIBUTE,
    Event,
    RawRecord,
    Row,
)

_BATCHES = ("EventBatch", "RawBatch", "RowBatch")


def __getattr__(name: str) -> Any:
    if name in _BATCHES:
        from beam_ecommerce.records import batches

        return getattr(batches, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CSV",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_RECORD_BYTES",
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
