"""Reading dead letters back for a replay: from the JSONL files the sinks write, or the local ``dead_letter`` table."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import apache_beam as beam
import orjson

from beam_ecommerce import metrics
from beam_ecommerce.io.dead_letter_files import dead_letter_prefix
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.records import Row

_LOGGER = logging.getLogger(__name__)

TABLE = "table"
"""``--dead_letters`` value that reads the local warehouse's ``dead_letter`` table."""
UNREADABLE = "replay_unreadable_lines"

# What a row needs to be replayed; the other dead-letter columns are context.
_NEEDED = frozenset({"dead_letter_id", "timestamp", "payloadBytes", "attributes", "stage", "error_type", "source"})


def dead_letter_files(location: str) -> str:
    """The pattern of the dead-letter files under ``location``, unless ``location`` is a pattern already.

    Only the shards ``WriteDeadLetterFiles`` names: a run that was killed leaves half-written
    temporary files beside them, which are no dead letters.
    """
    if any(char in location for char in "*?["):
        return location
    return dead_letter_prefix(location, "*") + "*.jsonl"


class _ParseDeadLetterLine(beam.DoFn):
    """``(file, line)`` -> the dead-letter row; a line that is none is counted and logged, not replayed."""

    def process(self, element: tuple[str, str]) -> Iterator[Row]:
        path, line = element
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not _NEEDED <= row.keys():
            metrics.counter(UNREADABLE).inc()
            _LOGGER.warning("%s: left out a line that is not a dead letter: %.100s", path, line)
            return
        yield row


def _json_form(row: Row) -> Row:
    """A ``dead_letter`` table row in the form the files hold (base64 payload, ISO timestamp)."""
    return row | {
        "payloadBytes": base64.b64encode(row["payloadBytes"]).decode("ascii"),
        "timestamp": row["timestamp"].isoformat(),
    }


class _ReadDeadLetterTable(beam.DoFn):
    """The local warehouse's ``dead_letter`` table, row by row."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse

    def process(self, _: None) -> Iterator[Row]:
        for row in self.warehouse.dead_letter_rows():
            yield _json_form(row)


class ReadDeadLetters(beam.PTransform):
    """``location`` (files, see ``dead_letter_files``, or ``TABLE``) -> dead-letter rows in their JSON form."""

    def __init__(self, location: str, warehouse: DuckDBWarehouse) -> None:
        super().__init__()
        self.location = location
        self.warehouse = warehouse

    def expand(self, pbegin):
        if self.location == TABLE:
            return (
                pbegin | "Once" >> beam.Create([None]) | "ReadTable" >> beam.ParDo(_ReadDeadLetterTable(self.warehouse))
            )
        return (
            pbegin
            | "ReadFiles" >> beam.io.ReadFromTextWithFilename(dead_letter_files(self.location))
            | "Parse" >> beam.ParDo(_ParseDeadLetterLine())
        )
