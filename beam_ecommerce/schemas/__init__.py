"""The event contract and the warehouse tables derived from it."""

from beam_ecommerce.schemas.contract import (
    EventSchema,
    csv_columns,
    event_schemas,
    event_types,
    json_schema,
    validator,
)
from beam_ecommerce.schemas.tables import DEAD_LETTER, LIVE_METRICS, RAW_EVENTS, Column, Table

__all__ = [
    "Column",
    "DEAD_LETTER",
    "EventSchema",
    "LIVE_METRICS",
    "RAW_EVENTS",
    "Table",
    "csv_columns",
    "event_schemas",
    "event_types",
    "json_schema",
    "validator",
]
