"""Warehouse tables derived from the event contract.

``raw_events`` is the union of every event type's fields (PII replaced by keyed hashes)
plus the columns the enrich step derives; ``dead_letter`` follows Google's
DataflowTemplates dead-letter columns plus where and why a record failed. The tables'
own columns, partitioning and clustering are declared in ``schemas/bigquery/*.json``
(BigQuery's table JSON), the event columns come from the contract. Each table renders
itself as a BigQuery schema, an Arrow schema and DuckDB DDL, so the three can never drift
apart.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from beam_ecommerce.schemas.contract import event_schemas

if TYPE_CHECKING:
    import pyarrow as pa


@functools.cache
def _arrow_types() -> Mapping[str, pa.DataType]:
    # pyarrow is imported when an Arrow schema is asked for: importing it costs the generator
    # (which needs the contract, not Arrow) a fifth of a second per run.
    import pyarrow as pa

    return {
        "STRING": pa.string(),
        "INT64": pa.int64(),
        "FLOAT64": pa.float64(),
        "BOOL": pa.bool_(),
        "BYTES": pa.binary(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    }


_DUCKDB_TYPES: Mapping[str, str] = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "BYTES": "BLOB",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
}
_JSON_TYPES: Mapping[str, str] = {"string": "STRING", "integer": "INT64", "number": "FLOAT64", "boolean": "BOOL"}


@dataclass(frozen=True)
class Column:
    """One column, typed with BigQuery's standard SQL names."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    fields: tuple[Column, ...] = ()

    def bigquery(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "mode": self.mode,
            "description": self.description,
        }
        if self.fields:
            spec["fields"] = [f.bigquery() for f in self.fields]
        return spec

    def arrow(self) -> pa.Field:
        import pyarrow as pa

        if self.type == "RECORD":
            value_type: pa.DataType = pa.struct([f.arrow() for f in self.fields])
        else:
            value_type = _arrow_types()[self.type]
        if self.mode == "REPEATED":
            value_type = pa.list_(value_type)
        return pa.field(self.name, value_type, nullable=self.mode != "REQUIRED")

    def duckdb_type(self) -> str:
        if self.type == "RECORD":
            sql = "STRUCT(" + ", ".join(f'"{f.name}" {f.duckdb_type()}' for f in self.fields) + ")"
        else:
            sql = _DUCKDB_TYPES[self.type]
        return sql + "[]" if self.mode == "REPEATED" else sql


@dataclass(frozen=True)
class Table:
    """A warehouse table: columns plus its BigQuery partitioning and clustering."""

    name: str
    description: str
    columns: tuple[Column, ...]
    partition_field: str
    cluster_fields: tuple[str, ...] = field(default_factory=tuple)
    primary_key: tuple[str, ...] = field(default_factory=tuple)
    """Columns that identify a row, for tables the local warehouse upserts (``live_metrics``)."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def bigquery_schema(self) -> dict[str, Any]:
        """The ``{"fields": [...]}`` form that ``WriteToBigQuery`` and the API accept."""
        return {"fields": [c.bigquery() for c in self.columns]}

    def bigquery_time_partitioning(self) -> dict[str, Any]:
        return {"type": "DAY", "field": self.partition_field}

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([c.arrow() for c in self.columns])

    def duckdb_ddl(self) -> str:
        cols = ",\n  ".join(
            f'"{c.name}" {c.duckdb_type()}' + (" NOT NULL" if c.mode == "REQUIRED" else "") for c in self.columns
        )
        if self.primary_key:
            cols += ",\n  PRIMARY KEY (" + ", ".join(f'"{name}"' for name in self.primary_key) + ")"
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols}\n)'


def _column_from_json(name: str, spec: Mapping[str, Any], required: bool) -> Column:
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    json_type = next(t for t in types if t != "null")
    mode = "REQUIRED" if required and "null" not in types else "NULLABLE"
    description = spec.get("description", "")
    if json_type == "array":
        item = spec["items"]
        fields = tuple(_column_from_json(n, s, n in item.get("required", ())) for n, s in item["properties"].items())
        return Column(name, "RECORD", "REPEATED", description, fields)
    if json_type == "string" and spec.get("format") == "date-time":
        return Column(name, "TIMESTAMP", mode, description)
    return Column(name, _JSON_TYPES[json_type], mode, description)


def _event_columns() -> tuple[Column, ...]:
    """Union of all event types' fields in first-seen order; PII becomes ``<field>_hash``."""
    columns: dict[str, Column] = {}
    schemas = sorted(event_schemas().values(), key=lambda s: (s.version, s.event_type))
    envelope_required = set.intersection(*(set(s.schema["required"]) for s in schemas))
    for event_schema in schemas:
        for name, spec in event_schema.schema["properties"].items():
            if "x-pii" in spec:
                name, spec = f"{name}_hash", {"type": "string", "description": f"Keyed HMAC-SHA256 of {name}."}
            column = _column_from_json(name, spec, name in envelope_required)
            known = columns.setdefault(name, column)
            if (known.type, known.mode, known.fields) != (column.type, column.mode, column.fields):
                raise ValueError(f"event types disagree on the type of column {name!r}: {known} vs {column}")
    return tuple(columns.values())


# The tables' own declarations, in BigQuery's table JSON (schema ``fields``, ``timePartitioning``,
# ``clustering``) plus ``primaryKey`` for upserted tables; raw_events lists only the columns the
# pipeline adds after the contract's fields.
_DECLARATIONS = importlib.resources.files(__package__) / "bigquery"


def _column(spec: Mapping[str, Any]) -> Column:
    fields = tuple(_column(field_spec) for field_spec in spec.get("fields", ()))
    return Column(spec["name"], spec["type"], spec.get("mode", "NULLABLE"), spec.get("description", ""), fields)


def _declared_table(name: str, leading_columns: tuple[Column, ...] = ()) -> Table:
    spec = json.loads((_DECLARATIONS / f"{name}.json").read_text(encoding="utf-8"))
    return Table(
        name=spec["name"],
        description=spec["description"],
        columns=leading_columns + tuple(map(_column, spec["fields"])),
        partition_field=spec["timePartitioning"]["field"],
        cluster_fields=tuple(spec.get("clustering", {}).get("fields", ())),
        primary_key=tuple(spec.get("primaryKey", ())),
    )


RAW_EVENTS = _declared_table("raw_events", _event_columns())
DEAD_LETTER = _declared_table("dead_letter")
LIVE_METRICS = _declared_table("live_metrics")
