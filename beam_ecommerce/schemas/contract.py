"""The event contract: versioned JSON Schemas, composed and compiled once.

Each event type lives in ``jsonschema/<event_type>.v<N>.json`` and is composed with
the common envelope (``envelope.v<N>.json``) into one closed schema: an event must
carry exactly the fields its type and version declare, so that nothing it carries
is silently lost on the way to the warehouse.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import fastjsonschema

_SCHEMA_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.json$")
_ENVELOPE = "envelope"


@dataclass(frozen=True)
class EventSchema:
    """One composed schema: an event type at one version."""

    event_type: str
    version: int
    schema: Mapping[str, Any]

    @property
    def pii_fields(self) -> tuple[str, ...]:
        """Top-level fields marked ``x-pii``: pseudonymized in the enrich step."""
        return tuple(name for name, spec in self.schema["properties"].items() if "x-pii" in spec)


def _load_schema_files() -> dict[tuple[str, int], dict[str, Any]]:
    files: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in resources.files(__package__).joinpath("jsonschema").iterdir():
        match = _SCHEMA_FILE.match(entry.name)
        if match:
            files[(match["name"], int(match["version"]))] = json.loads(entry.read_text("utf-8"))
    return files


def _compose(envelope: Mapping[str, Any], body: Mapping[str, Any], event_type: str, version: int) -> dict[str, Any]:
    properties = copy.deepcopy(dict(envelope["properties"]))
    overlap = set(properties) & set(body["properties"])
    if overlap:
        raise ValueError(f"{event_type}.v{version} redefines envelope fields {sorted(overlap)}")
    properties.update(copy.deepcopy(body["properties"]))
    properties["event_type"] = {**properties["event_type"], "const": event_type}
    properties["schema_version"] = {**properties["schema_version"], "const": version}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"beam-ecommerce/{event_type}.v{version}",
        "title": f"{event_type} v{version}",
        "description": body.get("$comment", ""),
        "type": "object",
        "required": list(envelope["required"]) + [f for f in body["required"] if f not in envelope["required"]],
        "properties": properties,
        "additionalProperties": False,
    }


class IncompatibleSchemaChange(ValueError):
    """A new version of an event type removes or retypes a field its previous version has."""


def _shape(spec: Mapping[str, Any]) -> str:
    """What a field's warehouse column depends on: its JSON types (null aside) and format."""
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    shape = "|".join(sorted(t for t in types if t != "null"))
    return f"{shape} ({spec['format']})" if "format" in spec else shape


def compatibility_problems(older: Mapping[str, Any], newer: Mapping[str, Any], prefix: str = "") -> list[str]:
    """How ``newer`` breaks readers of ``older`` (fields removed or retyped, nested ones too); empty if it does not.

    Adding fields is compatible: the warehouse gains a nullable column and older events
    simply lack it.
    """
    problems = []
    for name, spec in older["properties"].items():
        new_spec = newer["properties"].get(name)
        if new_spec is None:
            problems.append(f"removes field {prefix}{name}")
        elif _shape(spec) != _shape(new_spec):
            problems.append(f"changes the type of {prefix}{name} from {_shape(spec)} to {_shape(new_spec)}")
        elif "properties" in spec.get("items", {}):
            problems += compatibility_problems(spec["items"], new_spec["items"], f"{prefix}{name}[].")
    return problems


def _check_versions_compatible(composed: Mapping[tuple[str, int], EventSchema]) -> None:
    for (event_type, version), newer in composed.items():
        older = composed.get((event_type, version - 1))
        problems = compatibility_problems(older.schema, newer.schema) if older else []
        if problems:
            raise IncompatibleSchemaChange(
                f"{event_type} v{version} is not backward compatible with v{version - 1}: {'; '.join(problems)}. "
                "A new version may only add fields; a breaking change needs a new event type."
            )


def compose_contract(files: Mapping[tuple[str, int], Mapping[str, Any]]) -> dict[tuple[str, int], EventSchema]:
    """The composed schemas of schema ``files`` keyed by ``(event_type, version)``.

    A type at version N is composed with the newest envelope whose version is <= N.
    Raises ``IncompatibleSchemaChange`` if a version breaks the one before it.
    """
    envelopes = {version: spec for (name, version), spec in files.items() if name == _ENVELOPE}
    composed: dict[tuple[str, int], EventSchema] = {}
    for (name, version), body in sorted(files.items()):
        if name == _ENVELOPE:
            continue
        envelope = envelopes[max(v for v in envelopes if v <= version)]
        composed[(name, version)] = EventSchema(name, version, _compose(envelope, body, name, version))
    _check_versions_compatible(composed)
    return composed


@functools.lru_cache(maxsize=1)
def event_schemas() -> dict[tuple[str, int], EventSchema]:
    """All composed schemas of the package's contract keyed by ``(event_type, version)``."""
    return compose_contract(_load_schema_files())


def event_types() -> tuple[str, ...]:
    """The event types the contract knows, sorted."""
    return tuple(sorted({event_type for event_type, _ in event_schemas()}))


@functools.cache
def validator(event_type: str, version: int) -> Callable[[Any], Any]:
    """The compiled validator of one event type at one version (``KeyError`` if unknown)."""
    return fastjsonschema.compile(dict(event_schemas()[(event_type, version)].schema))


def json_schema(event_type: str, version: int) -> dict[str, Any]:
    """The composed JSON Schema document of one event type at one version."""
    return copy.deepcopy(dict(event_schemas()[(event_type, version)].schema))


@functools.lru_cache(maxsize=1)
def csv_columns() -> tuple[str, ...]:
    """Header of the CSV form of events: every contract field, envelope first.

    In CSV an empty cell means the field is absent, numbers are written as text and
    array fields (order ``items``) hold their JSON text.
    """
    columns: dict[str, None] = {}
    for event_schema in sorted(event_schemas().values(), key=lambda s: (s.version, s.event_type)):
        columns.update(dict.fromkeys(event_schema.schema["properties"]))
    return tuple(columns)
