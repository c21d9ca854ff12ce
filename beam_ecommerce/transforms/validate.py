"""ValidateEvents: each event against the compiled schema of its type and version."""

from __future__ import annotations

import apache_beam as beam
import fastjsonschema

from beam_ecommerce.records import Event, EventBatch
from beam_ecommerce.records.dead_letter import VALIDATE, RunContext
from beam_ecommerce.schemas import event_schemas, event_types, validator
from beam_ecommerce.transforms.dead_letter import DEAD_LETTER_TAG, RecordError, RouteBatch


def validate_event(fields: dict) -> None:
    """Raises ``RecordError`` unless ``fields`` is a valid event of a known type and version."""
    event_type, version = fields.get("event_type"), fields.get("schema_version")
    if not isinstance(event_type, str) or event_type not in event_types():
        raise RecordError("unknown_event_type", f"unknown event_type {str(event_type)[:80]!r}")
    if type(version) is not int or (event_type, version) not in event_schemas():
        raise RecordError("unknown_schema_version", f"{event_type} has no schema_version {str(version)[:80]!r}")
    try:
        validator(event_type, version)(fields)
    except fastjsonschema.JsonSchemaValueException as error:
        raise RecordError(f"schema_{error.rule or 'violation'}", error.message) from None


class ValidateEvent(RouteBatch):
    """The validate stage: each event against its type and version's compiled schema."""

    stage = VALIDATE

    def setup(self) -> None:
        # Compile every validator once per worker, not on the first record of each type.
        for event_type, version in event_schemas():
            validator(event_type, version)

    def apply(self, event: Event) -> Event:
        validate_event(event.fields)
        return event


class ValidateEvents(beam.PTransform):
    """``EventBatch`` -> the valid events (main) and dead letters (``dead_letter``).

    Reasons are ``unknown_event_type``, ``unknown_schema_version`` and
    ``schema_<rule>`` for the JSON Schema rule that failed (``schema_required``,
    ``schema_type``, ``schema_enum``, ``schema_format``, ...).
    """

    def __init__(self, context: RunContext) -> None:
        super().__init__()
        self.context = context

    def expand(self, batches):
        validate = beam.ParDo(ValidateEvent(self.context)).with_output_types(EventBatch)
        return batches | validate.with_outputs(DEAD_LETTER_TAG, main="events")
