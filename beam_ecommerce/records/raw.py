"""One input record as it arrived, and the event derived from it in flight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

JSON = "json"
CSV = "csv"
# Attributes a reader sets on a record it could not read whole; the core dead-letters such a record.
READ_ERROR_ATTRIBUTE = "read_error"
TOO_LARGE_ATTRIBUTE = "record_too_large"
# The largest record a reader passes on whole (--max_record_bytes); larger ones become dead letters.
DEFAULT_MAX_RECORD_BYTES = 10 << 20
# Records per batch in the core (--batch_size): 1000 measured less CPU per event than 2000 or 5000.
DEFAULT_BATCH_SIZE = 1000

Row = dict[str, Any]


class RawRecord(NamedTuple):
    """One input record exactly as it arrived, and where it came from.

    ``source`` names the origin precisely enough to find the record again:
    ``<file uri>:<line>`` for files, ``<subscription>#<message id>`` for Pub/Sub.
    ``attributes`` are ``(key, value)`` pairs (Pub/Sub attributes, read errors): a tuple,
    not a dict, so the many records without any share one empty value.
    ``csv_header`` is the header of the file a CSV record came from. A named tuple: it
    is built once per input line, and a frozen dataclass costs four times as much.
    """

    payload: bytes
    source: str
    format: str = JSON
    attributes: tuple[tuple[str, str], ...] = ()
    csv_header: tuple[str, ...] | None = None


@dataclass
class Event:
    """A record in flight: the raw record and the fields derived from it so far."""

    raw: RawRecord
    fields: dict[str, Any]
