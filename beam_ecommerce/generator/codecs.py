"""The two line forms of an event: a JSON object per line, or a CSV row under the contract header."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from beam_ecommerce.generator.config import CSV, JSONL
from beam_ecommerce.schemas.contract import csv_columns


class JsonCodec:
    """Events as compact JSON text, one per line."""

    format = JSONL
    header = b""

    encode = staticmethod(orjson.dumps)
    """The event's line, without the newline."""


def csv_cell(value: Any) -> str:
    """The CSV cell of one field value (``None`` = absent = empty cell)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    if kind is list:
        return orjson.dumps(value).decode()
    raise TypeError(f"no CSV form for {kind.__name__} value {value!r}")


class CsvCodec:
    """Events as CSV rows with one column per contract field (``csv_columns()``)."""

    format = CSV

    def __init__(self) -> None:
        self.columns = csv_columns()
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")
        self.header = self.encode_cells(self.columns) + b"\n"

    def cells(self, event: dict[str, Any]) -> list[str]:
        """The row of ``event``: one cell per column."""
        get = event.get
        return [csv_cell(get(column)) for column in self.columns]

    def encode_cells(self, cells: Sequence[str]) -> bytes:
        """One CSV row, without the newline."""
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._writer.writerow(cells)
        return buffer.getvalue()[:-1].encode()

    def encode(self, event: dict[str, Any]) -> bytes:
        """The event's row, without the newline."""
        return self.encode_cells(self.cells(event))


Codec = JsonCodec | CsvCodec


def codec_for(fmt: str) -> Codec:
    """The codec of ``"jsonl"`` or ``"csv"``."""
    if fmt == JSONL:
        return JsonCodec()
    if fmt == CSV:
        return CsvCodec()
    raise ValueError(f"unknown format {fmt!r}: expected {JSONL!r} or {CSV!r}")
