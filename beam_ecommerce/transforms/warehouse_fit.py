"""FitWarehouse: the core's last stage, which keeps rows the warehouse cannot hold away from the load.

A row can pass the contract and still be one the warehouse rejects: an integer beyond
INT64 (a contract field without a maximum), a float that is not finite (the staged JSON
would silently turn it into null), or a field the table has no column for. DuckDB fails
the whole load on such a row and BigQuery rejects it; here it becomes a dead letter of
stage ``sink`` that names the column and the rule, with its original bytes, and the run
goes on. The rules are the tables' own types, so both warehouses share them.
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Any

from beam_ecommerce.records import Event
from beam_ecommerce.records.dead_letter import SINK, RunContext
from beam_ecommerce.schemas import RAW_EVENTS, Table
from beam_ecommerce.transforms.dead_letter import RecordError, RouteBatch

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_NUMERIC = ("INT64", "FLOAT64")


def check_value(column: str, column_type: str, value: Any) -> None:
    """Raises ``RecordError`` if ``value`` cannot be stored in a ``column_type`` column."""
    if column_type == "INT64" and isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise RecordError("value_out_of_range", f"column {column} is INT64: {value} does not fit")
    if column_type == "FLOAT64" and isinstance(value, float) and not math.isfinite(value):
        raise RecordError("value_out_of_range", f"column {column} is FLOAT64: {value} cannot be stored")


class FitWarehouse(RouteBatch):
    """The sink check: each row against the column names and numeric types of ``table``."""

    stage = SINK

    def __init__(self, context: RunContext, table: Table = RAW_EVENTS) -> None:
        super().__init__(context)
        self.columns = frozenset(table.column_names)
        # Only numeric columns can overflow; strings, dates and booleans always fit.
        self.numeric = tuple((c.name, c.type) for c in table.columns if c.type in _NUMERIC)
        self.nested = tuple(
            (c.name, tuple((f.name, f.type) for f in c.fields if f.type in _NUMERIC))
            for c in table.columns
            if c.type == "RECORD"
        )

    def apply(self, event: Event) -> Event:
        self.check_row(event.fields)
        return event

    def top_level_numbers_fit(
        self, rows: list[Any], numeric: tuple[tuple[str, str], ...] | None = None, structs: bool = False
    ) -> bool:
        """Whether every top-level value of ``rows`` in the ``numeric`` columns (default: all) fits, a column at a time.

        ``rows`` are dicts, or with ``structs`` objects with the columns as attributes (the
        decoder's structs, whose unset columns are falsy). A float column's values are all
        finite if their sum is (inf and nan propagate); a sum that overflows only sends the
        batch to the row-by-row check.
        """
        for name, column_type in self.numeric if numeric is None else numeric:
            column = map(getattr, rows, repeat(name), repeat(None)) if structs else map(dict.get, rows, repeat(name))
            values = list(filter(None, column))  # zeros always fit
            if not values:
                continue
            if column_type == "FLOAT64" and not _finite(sum(values)):
                return False
            if column_type == "INT64" and not INT64_MIN <= min(values) <= max(values) <= INT64_MAX:
                return False
        return True

    def check_row(self, row: dict[str, Any]) -> None:
        """Raises ``RecordError`` if the table cannot hold ``row``."""
        if not row.keys() <= self.columns:
            missing = ", ".join(sorted(row.keys() - self.columns))
            raise RecordError("unknown_column", f"the table has no column {missing}")
        for name, column_type in self.numeric:
            check_value(name, column_type, row.get(name))
        for name, fields in self.nested:
            for item in row.get(name) or ():
                for field_name, column_type in fields:
                    check_value(f"{name}.{field_name}", column_type, item.get(field_name))


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int beyond any float
        return False
