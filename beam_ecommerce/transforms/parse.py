"""ParseEvents: raw bytes (JSON, or CSV rows with their file's header) to event dicts."""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import orjson

from beam_ecommerce import metrics
from beam_ecommerce.records import (
    CSV,
    JSON,
    READ_ERROR_ATTRIBUTE,
    TOO_LARGE_ATTRIBUTE,
    Event,
    EventBatch,
    RawBatch,
    RawRecord,
)
from beam_ecommerce.records.dead_letter import PARSE, RunContext
from beam_ecommerce.schemas import event_schemas
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RecordError, RouteBatch

# Records a reader marked as not parseable, by attribute: the dead letter's error type.
_READER_REJECTIONS = {READ_ERROR_ATTRIBUTE: "unreadable_input", TOO_LARGE_ATTRIBUTE: "record_too_large"}
_BOM = b"\xef\xbb\xbf"


def parse_json(payload: bytes) -> dict[str, Any]:
    """One JSON object from ``payload``; rejects anything else with a precise reason."""
    if payload[:1] == b"{":
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass  # the full checks below say precisely what is wrong
        else:
            if isinstance(value, dict):
                return value
    if payload.startswith(_BOM):
        payload = payload[len(_BOM) :]
    if not payload.strip():
        raise RecordError("empty_record", "record is empty")
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        reason = "invalid_utf8" if "utf-8" in str(error).lower() else "invalid_json"
        raise RecordError(reason, f"not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise RecordError("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    return value


def _finite_float(cell: str) -> float:
    """A CSV number; ``nan`` and ``inf`` are text to ``float`` but no JSON number, so the contract has none."""
    value = float(cell)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {cell!r}")
    return value


@functools.lru_cache(maxsize=1)
def _csv_converters() -> dict[str, Callable[[str], Any]]:
    """Per contract field, how a CSV cell becomes the JSON value the schema expects."""
    converters: dict[str, Callable[[str], Any]] = {}
    by_type: dict[str, Callable[[str], Any]] = {"integer": int, "number": _finite_float, "array": orjson.loads}
    for event_schema in event_schemas().values():
        for name, spec in event_schema.schema["properties"].items():
            types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            json_type = next(t for t in types if t != "null")
            converters.setdefault(name, by_type.get(json_type, str))
    return converters


# Without these, a CSV record's cells are exactly its text split on commas.
_CSV_SPECIAL = re.compile('["\r\n\x00]')


def csv_rows(text: str) -> list[list[str]]:
    """The rows Python's ``csv`` reads in ``text``; a record with no quote, line break or NUL is
    split on commas directly (measured 0.6 µs against 2.9 for ``csv.reader`` per record)."""
    if not _CSV_SPECIAL.search(text):
        return [text.split(",")]
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise RecordError("invalid_csv", f"not a valid CSV record: {error}") from None


def parse_csv(payload: bytes, header: tuple[str, ...]) -> dict[str, Any]:
    """One CSV record (possibly spanning lines) to an event dict typed by the contract."""
    try:
        text = payload.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise RecordError("invalid_utf8", f"CSV record is not UTF-8: {error}") from None
    if not text.strip():
        raise RecordError("empty_record", "record is empty")
    rows = csv_rows(text)
    if len(rows) != 1 or len(rows[0]) != len(header):
        found = len(rows[0]) if len(rows) == 1 else f"{len(rows)} rows"
        raise RecordError("csv_column_count", f"expected {len(header)} columns, found {found}")
    converters = _csv_converters()
    event: dict[str, Any] = {}
    for name, cell in zip(header, rows[0], strict=True):
        if cell == "":
            continue
        try:
            event[name] = converters.get(name, str)(cell)
        except ValueError:
            raise RecordError("csv_type_error", f"column {name!r}: cannot convert {cell[:80]!r}") from None
    return event


class ParseRecord(RouteBatch):
    """The parse stage: each raw record of a batch to an ``Event`` (counts ``records_in``)."""

    stage = PARSE

    def __init__(self, context: RunContext) -> None:
        super().__init__(context)
        self._records_in = metrics.counter(metrics.RECORDS_IN)

    def process(self, batch: RawBatch):
        self._records_in.inc(len(batch))
        return super().process(batch)

    def apply(self, raw: RawRecord) -> Event:
        for key, value in raw.attributes:
            if key in _READER_REJECTIONS:
                raise RecordError(_READER_REJECTIONS[key], value)
        if raw.format == CSV:
            if raw.csv_header is None:
                raise RecordError("csv_missing_header", "CSV record without its file's header")
            return Event(raw, parse_csv(raw.payload, raw.csv_header))
        if raw.format == JSON:
            return Event(raw, parse_json(raw.payload))
        raise RecordError("unknown_format", f"unknown record format {raw.format!r}")


class ParseEvents(beam.PTransform):
    """``RawBatch`` -> ``EventBatch`` (main) and one dead letter per rejected record (``dead_letter``).

    JSON payloads must hold one object (a UTF-8 BOM is tolerated); CSV rows are typed by
    the contract's field types. Every rejected record becomes a dead letter with stage
    ``parse`` and the exact original payload.
    """

    def __init__(self, context: RunContext) -> None:
        super().__init__()
        self.context = context

    def expand(self, batches):
        parse = beam.ParDo(ParseRecord(self.context)).with_output_types(EventBatch)
        return batches | parse.with_outputs(DEAD_LETTER_TAG, main="events")
