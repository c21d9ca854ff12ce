"""Checks the generator tests share: does the contract accept a record, and the CSV rules."""

from __future__ import annotations

import csv
from functools import lru_cache
from typing import Any

import fastjsonschema
import orjson

from beam_ecommerce.schemas.contract import csv_columns, event_schemas, validator


class Rejected(Exception):
    """A record that is not a valid event; ``rule`` tells which check refused it."""

    def __init__(self, rule: str, detail: str = "") -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


def check_event(event: dict[str, Any]) -> None:
    """Raise ``Rejected`` unless ``event`` is valid for its event type and schema version."""
    key = (event.get("event_type"), event.get("schema_version"))
    if type(key[1]) is not int or key not in event_schemas():
        raise Rejected("unknown_type_or_version", repr(key))
    try:
        validator(*key)(event)
    except fastjsonschema.JsonSchemaValueException as error:
        raise Rejected(error.rule or "schema", f"{error.name}: {error.message}") from None


def parse_json_line(payload: bytes) -> dict[str, Any]:
    """The event a JSONL line holds (not yet validated); ``Rejected`` if it holds none."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise Rejected("not_json", str(error)) from None
    if not isinstance(value, dict):
        raise Rejected("not_an_object", type(value).__name__)
    return value


@lru_cache(maxsize=1)
def _column_types() -> dict[str, str]:
    types: dict[str, str] = {}
    for event_schema in event_schemas().values():
        for name, spec in event_schema.schema["properties"].items():
            declared = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            types.setdefault(name, next(t for t in declared if t != "null"))
    return types


def _cell_value(column: str, cell: str) -> Any:
    kind = _column_types()[column]
    if kind == "integer":
        return int(cell)
    if kind == "number":
        return float(cell)
    if kind == "array":
        return orjson.loads(cell)
    return cell


def parse_csv_line(payload: bytes, header: tuple[str, ...] = ()) -> dict[str, Any]:
    """The event a CSV row holds by the stated rules (empty cell = absent, typed by the
    contract, arrays as JSON text); ``Rejected`` if the row cannot be read as one."""
    header = header or csv_columns()
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected("not_utf8", str(error)) from None
    rows = list(csv.reader([text]))
    if len(rows) != 1 or len(rows[0]) != len(header):
        raise Rejected("column_count", f"{[len(row) for row in rows]} != {len(header)}")
    event: dict[str, Any] = {}
    for column, cell in zip(header, rows[0], strict=True):
        if cell:
            try:
                event[column] = _cell_value(column, cell)
            except ValueError as error:
                raise Rejected("cell_type", f"{column}={cell!r}: {error}") from None
    return event


def rejection(payload: bytes, fmt: str = "jsonl") -> Rejected | None:
    """Why a record is not a valid event, or ``None`` if it is one."""
    try:
        check_event(parse_csv_line(payload) if fmt == "csv" else parse_json_line(payload))
    except Rejected as rejected:
        return rejected
    return None
