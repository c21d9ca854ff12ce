"""The batches that carry records through the transform core, and their coder.

Elements of the core's PCollections are *batches* of records: Beam's per-element cost,
not parsing, dominates small events, so every DoFn of the core works on a batch and
routes each record of it on its own. Batches have their own coder: one pickle call
per batch, and a size estimate that does not encode every record again.
"""

from __future__ import annotations

import pickle
from datetime import date, datetime
from typing import Any

import msgspec
from apache_beam import coders

# Beam samples element sizes for its metrics; an estimate per record keeps that cheap.
_ESTIMATED_BYTES_PER_RECORD = 512
# What rows hold besides JSON's types (enrichment's timestamps and dates), kept as they are.
_KEPT_TYPES = (datetime, date, bytes)


class RawBatch(list):
    """A batch of ``RawRecord``: one element of the core's input."""


class EventBatch(list):
    """A batch of ``Event`` between the stages of the core."""


class RowBatch(list):
    """A batch of ``raw_events`` rows: the core's main output.

    A row is a dict, or where the sink asks for typed rows (``ProcessEvents(typed_rows=True)``)
    the fast decoder's struct, which msgspec encodes to the same JSON; ``rows_as_dicts``
    turns any of them into dicts.
    """


def rows_as_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts: structs converted field by field (unset fields left out), datetimes and dates kept."""
    return msgspec.to_builtins(rows, builtin_types=_KEPT_TYPES)


class _BatchCoder(coders.Coder):
    """Encodes a whole batch with one pickle call; subclassed once per batch type."""

    batch_type: type[list] = list

    def encode(self, value: list) -> bytes:
        return pickle.dumps(list(value), pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> list:
        return self.batch_type(pickle.loads(encoded))

    def estimate_size(self, value: list) -> int:
        return _ESTIMATED_BYTES_PER_RECORD * len(value)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return self.batch_type

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))


class RawBatchCoder(_BatchCoder):
    batch_type = RawBatch


class EventBatchCoder(_BatchCoder):
    batch_type = EventBatch


class RowBatchCoder(_BatchCoder):
    batch_type = RowBatch

    def encode(self, value: list) -> bytes:
        try:
            return super().encode(value)
        except pickle.PicklingError:
            # Typed rows: the decoder's struct classes are made at import, so pickle cannot name them.
            return pickle.dumps(rows_as_dicts(list(value)), pickle.HIGHEST_PROTOCOL)


coders.registry.register_coder(RawBatch, RawBatchCoder)
coders.registry.register_coder(EventBatch, EventBatchCoder)
coders.registry.register_coder(RowBatch, RowBatchCoder)
