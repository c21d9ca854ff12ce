"""Warehouse tables derived from the event contract.

``raw_events`` is the union of every event type's fields (PII replaced by keyed hashes)
plus the columns the enrich step derives; ``dead_letter`` follows Google's
DataflowTemplates dead-letter columns plus where and why a record failed. Each table
renders itself as a BigQuery schema, an Arrow schema and DuckDB DDL, so the three can
never drift apart.
"""

from __future__ import annotations

import functools
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


_SOURCE = Column("source", "STRING", "REQUIRED", "Where the record came from: file URI and line, or Pub/Sub message.")
_PIPELINE_VERSION = Column("pipeline_version", "STRING", "REQUIRED", "Version of beam-ecommerce that wrote the row.")
_RUN_ID = Column("run_id", "STRING", "REQUIRED", "Pipeline run that wrote the row.")
# Where a row or dead letter came from and which run wrote it: the same columns in both tables.
_LINEAGE = (_SOURCE, _PIPELINE_VERSION, _RUN_ID)

_DERIVED_COLUMNS = (
    Column("event_date", "DATE", "REQUIRED", "UTC date of occurred_at; the partitioning column."),
    Column("revenue", "FLOAT64", "NULLABLE", "Gross value of the order lines (order_placed only)."),
    Column("ingested_at", "TIMESTAMP", "REQUIRED", "When the pipeline processed the event."),
    *_LINEAGE,
)


@functools.lru_cache(maxsize=1)
def _raw_events() -> Table:
    return Table(
        name="raw_events",
        description="Every valid, distinct event, typed by the contract, PII pseudonymized.",
        columns=_event_columns() + _DERIVED_COLUMNS,
        partition_field="event_date",
        cluster_fields=("event_type", "product_category"),
    )


RAW_EVENTS = _raw_events()

DEAD_LETTER = Table(
    name="dead_letter",
    description="Records that could not be loaded, with the original payload, where they came from and why.",
    columns=(
        Column("dead_letter_id", "STRING", "REQUIRED", "Deterministic id: hash of source, stage and payload."),
        Column("timestamp", "TIMESTAMP", "REQUIRED", "When the record failed."),
        Column("payloadString", "STRING", "NULLABLE", "The original payload as text, when it is valid UTF-8."),
        Column("payloadBytes", "BYTES", "REQUIRED", "The original payload, byte for byte."),
        Column(
            "attributes",
            "RECORD",
            "REPEATED",
            "Pub/Sub attributes or file metadata of the record.",
            (Column("key", "STRING", "REQUIRED"), Column("value", "STRING", "NULLABLE")),
        ),
        Column("errorMessage", "STRING", "REQUIRED", "Why the record failed."),
        Column("stacktrace", "STRING", "NULLABLE", "Stack trace, for unexpected errors."),
        Column("stage", "STRING", "REQUIRED", "Where it failed: parse, validate, enrich, sink or late."),
        Column("error_type", "STRING", "REQUIRED", "Machine-readable reason, e.g. invalid_json, schema_violation."),
        Column("event_id", "STRING", "NULLABLE", "The event id, when the payload got far enough to have one."),
        Column("event_type", "STRING", "NULLABLE", "The event type, when known."),
        *_LINEAGE,
    ),
    partition_field="timestamp",
    cluster_fields=("stage", "error_type"),
)

LIVE_METRICS = Table(
    name="live_metrics",
    description="The stream's figures per event-time minute, product category and currency; one row per "
    "window and key, upserted by every pane (early, on time, late) of the streaming pipeline's LiveMetrics.",
    columns=(
        Column("window_start", "TIMESTAMP", "REQUIRED", "Start of the event-time minute (UTC)."),
        Column("window_end", "TIMESTAMP", "REQUIRED", "End of the event-time minute (exclusive)."),
        Column("product_category", "STRING", "REQUIRED", "Category of the event; of an order, its largest line's."),
        Column("currency", "STRING", "REQUIRED", "Currency of the event, or 'none' (page views, dead letters)."),
        Column("orders", "INT64", "REQUIRED", "Orders placed (order_placed events)."),
        Column("gross_revenue", "FLOAT64", "REQUIRED", "Gross value of those orders, in their currency."),
        Column("items", "INT64", "REQUIRED", "Units in those orders."),
        Column("events", "INT64", "REQUIRED", "Valid, distinct events of every type."),
        Column(
            "events_by_type",
            "RECORD",
            "REPEATED",
            "Events per event type.",
            (Column("event_type", "STRING", "REQUIRED"), Column("events", "INT64", "REQUIRED")),
        ),
        Column("dead_letters", "INT64", "REQUIRED", "Records that failed in this minute (category 'none')."),
        Column(
            "dead_letters_by_stage",
            "RECORD",
            "REPEATED",
            "Dead letters per stage: parse, validate, enrich, late, sink.",
            (Column("stage", "STRING", "REQUIRED"), Column("dead_letters", "INT64", "REQUIRED")),
        ),
        Column("pane_timing", "STRING", "REQUIRED", "EARLY, ON_TIME or LATE: which firing wrote the row."),
        Column("pane_index", "INT64", "REQUIRED", "0 for the window's first firing, then 1, 2, ..."),
        Column("emitted_at", "TIMESTAMP", "REQUIRED", "Processing time of the firing."),
        Column(
            "watermark_lag_seconds",
            "FLOAT64",
            "NULLABLE",
            "emitted_at minus window_end for ON_TIME and LATE panes: how long after the minute ended the "
            "watermark passed it; NULL for EARLY panes, which fire before it does.",
        ),
        _PIPELINE_VERSION,
        _RUN_ID,
    ),
    partition_field="window_start",
    cluster_fields=("product_category", "currency"),
    primary_key=("window_start", "product_category", "currency"),
)
