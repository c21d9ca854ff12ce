"""Fast typed decoders generated from the contract: JSON bytes to a validated event dict in one pass.

At import nothing is written by hand: every composed JSON Schema of the contract becomes
a msgspec struct (closed, with the schema's lengths, ranges, enums and consts), and the
event types become one tagged union on ``event_type``, so a single C call decodes and
checks the structure of any event. What msgspec cannot check the way the contract's
reference validator (fastjsonschema) does is checked here with the reference's own
compiled regular expressions: string ``pattern``s (searched, ``$`` meaning the very end
of the string) and ``format``s (matched), and the fields each version of an event type allows.

The decoder only ever *accepts*: ``decode_batch`` gives each record's event as a struct
whose fields are those ``orjson.loads`` would give (``msgspec.to_builtins`` makes it that
dict), or ``None`` when it cannot vouch for the record, and the caller then runs the
reference path, which decides the reason of the rejection. Each struct also has the
warehouse row's other columns as fields no input may carry (typed ``UnsetType``: a record
that has one is left to the reference, which rejects it): enrichment fills them in place,
and the row is encoded to JSON without ever becoming a dict. Anything
it is not sure to judge exactly is left to the reference path too: integers beyond INT64
(orjson turns them into floats), integer-valued floats in integer fields (the contract
accepts ``2.0``), and any event type whose schema uses a keyword not translated here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from itertools import compress, repeat
from operator import is_not, not_
from typing import Annotated, Any, Literal, Union

import fastjsonschema.draft07
import msgspec
from msgspec import UNSET, Meta, UnsetType

from beam_ecommerce.schemas.contract import EventSchema, event_schemas
from beam_ecommerce.schemas.string_checks import StringTest, column_checks, string_tests
from beam_ecommerce.schemas.tables import RAW_EVENTS

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Keywords that only document a field; every other keyword must be translated below.
_DOCUMENTATION = frozenset({"description", "$comment", "title", "x-pii"})
_STRING_KEYWORDS = frozenset({"type", "minLength", "maxLength", "pattern", "format", "enum", "const"})
_NUMBER_KEYWORDS = frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "const"})
_ARRAY_KEYWORDS = frozenset({"type", "items", "minItems", "maxItems"})
_OBJECT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties"})


class Untranslatable(ValueError):
    """A schema uses a keyword (or a combination) the fast decoder does not reproduce exactly."""


class _Regexes:
    """The reference validator's own compiled regular expressions, by pattern and by format."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        generator = fastjsonschema.draft07.CodeGeneratorDraft07(dict(schema))
        generator.func_code  # noqa: B018 - generating the code compiles the regexes it uses
        self._compiled: dict[str, re.Pattern] = generator.global_state["REGEX_PATTERNS"]

    def tests(self, spec: Mapping[str, Any]) -> tuple[StringTest, ...]:
        """The tests of a top-level string field's pattern and format, as fastjsonschema applies them."""
        try:
            return string_tests(spec, self._compiled)
        except KeyError:
            raise Untranslatable(
                f"format {spec.get('format')!r} is not a regular expression in fastjsonschema"
            ) from None

    def pattern(self, spec: Mapping[str, Any]) -> str | None:
        """The pattern of a nested string field as msgspec's ``Meta(pattern=...)``, searched like fastjsonschema."""
        if "format" in spec:
            raise Untranslatable("format on a nested field")
        return self._compiled[spec["pattern"]].pattern if "pattern" in spec else None


def _types(spec: Mapping[str, Any]) -> tuple[list[str], bool]:
    types = spec.get("type")
    if types is None:
        raise Untranslatable("field without a type")
    types = types if isinstance(types, list) else [types]
    return [t for t in types if t != "null"], "null" in types


def _check_keywords(spec: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(spec) - allowed - _DOCUMENTATION
    if unknown:
        raise Untranslatable(f"keywords {sorted(unknown)}")


def _string_type(spec: Mapping[str, Any], pattern: str | None) -> Any:
    _check_keywords(spec, _STRING_KEYWORDS)
    if "const" in spec or "enum" in spec:
        values = [spec["const"]] if "const" in spec else spec["enum"]
        if set(spec) & {"minLength", "maxLength", "pattern", "format"} or not all(isinstance(v, str) for v in values):
            raise Untranslatable("enum combined with other string keywords")
        return Literal[tuple(values)]
    meta = {"min_length": spec.get("minLength"), "max_length": spec.get("maxLength"), "pattern": pattern}
    meta = {key: value for key, value in meta.items() if value is not None}
    return Annotated[str, Meta(**meta)] if meta else str


def _bounds(spec: Mapping[str, Any]) -> dict[str, Any]:
    bounds = {"ge": spec.get("minimum"), "le": spec.get("maximum")}
    bounds.update({"gt": spec.get("exclusiveMinimum"), "lt": spec.get("exclusiveMaximum")})
    if any(isinstance(v, bool) for v in bounds.values()):
        raise Untranslatable("draft-04 boolean exclusive bounds")
    return {key: value for key, value in bounds.items() if value is not None}


def _integer_type(bounds: Mapping[str, Any]) -> Any:
    # Beyond INT64 orjson gives a float where msgspec gives an int: the reference path judges those.
    low = max(INT64_MIN, math.ceil(bounds.get("ge", INT64_MIN)), math.floor(bounds.get("gt", INT64_MIN - 1)) + 1)
    high = min(INT64_MAX, math.floor(bounds.get("le", INT64_MAX)), math.ceil(bounds.get("lt", INT64_MAX + 1)) - 1)
    return Annotated[int, Meta(ge=low, le=high)]


def _number_type(spec: Mapping[str, Any], json_type: str) -> Any:
    _check_keywords(spec, _NUMBER_KEYWORDS)
    if "const" in spec:
        value = spec["const"]
        if json_type != "integer" or type(value) is not int:
            raise Untranslatable("const on a number")
        return Literal[value]
    bounds = _bounds(spec)
    if json_type == "integer":
        return _integer_type(bounds)
    # A JSON number keeps its form: 5 stays an int and 5.0 a float, as orjson gives them.
    return Union[_integer_type(bounds), Annotated[float, Meta(**bounds)] if bounds else float]  # noqa: UP007


def _field_type(spec: Mapping[str, Any], regexes: _Regexes, name: str, nested: bool) -> Any:
    types, nullable = _types(spec)
    if len(types) != 1:
        raise Untranslatable(f"{name}: several types {types}")
    json_type = types[0]
    if json_type == "string":
        field_type = _string_type(spec, regexes.pattern(spec) if nested else None)
    elif json_type in ("integer", "number"):
        field_type = _number_type(spec, json_type)
    elif json_type == "boolean":
        _check_keywords(spec, frozenset({"type"}))
        field_type = bool
    elif json_type == "array":
        _check_keywords(spec, _ARRAY_KEYWORDS)
        item_type = _field_type(spec["items"], regexes, f"{name}[]", nested=True)
        bounds = {"min_length": spec.get("minItems"), "max_length": spec.get("maxItems")}
        bounds = {key: value for key, value in bounds.items() if value is not None}
        field_type = Annotated[list[item_type], Meta(**bounds)] if bounds else list[item_type]
    elif json_type == "object":
        _check_keywords(spec, _OBJECT_KEYWORDS)
        if spec.get("additionalProperties") is not False:
            raise Untranslatable(f"{name}: open object")
        field_type = _struct(name, spec, regexes)
    else:
        raise Untranslatable(f"{name}: type {json_type}")
    return field_type | None if nullable else field_type


def _fields(name: str, spec: Mapping[str, Any], regexes: _Regexes, nested: bool) -> list[tuple]:
    """msgspec field definitions of an object schema: absent optional fields stay absent (``UNSET``)."""
    required = set(spec.get("required", ()))
    fields = []
    for field, field_spec in spec["properties"].items():
        field_type = _field_type(field_spec, regexes, f"{name}.{field}", nested)
        fields.append((field, field_type) if field in required else (field, field_type | UnsetType, UNSET))
    return fields


def _struct(name: str, spec: Mapping[str, Any], regexes: _Regexes) -> type:
    return msgspec.defstruct(name, _fields(name, spec, regexes, nested=True), kw_only=True, forbid_unknown_fields=True)


class _EventType:
    """One event type, all its versions in one struct tagged by ``event_type``, and what msgspec leaves to check.

    Versions may only add fields (``contract.compatibility_problems``), so one struct holds
    every version's fields, and the fields a given version allows and requires are checked
    after decoding.
    """

    def __init__(self, versions: list[EventSchema], row_columns: frozenset[str] = frozenset()) -> None:
        event_type = versions[0].event_type
        properties: dict[str, Any] = {}
        for version in versions:
            for field, spec in version.schema["properties"].items():
                if field in ("event_type", "schema_version"):
                    continue
                if properties.setdefault(field, spec) != spec:
                    raise Untranslatable(f"{event_type}.{field} differs between versions")
        merged = {
            "properties": properties,
            "required": set.intersection(*(set(v.schema["required"]) for v in versions)),
        }
        regexes = _Regexes({"type": "object", "properties": properties})
        fields = [
            ("schema_version", Literal[tuple(v.version for v in versions)]),
            *_fields(event_type, merged, regexes, nested=False),
        ]
        self.fields = frozenset(name for name, *_ in fields)
        """The event's own fields (the struct also has the row's other columns)."""
        # The row's columns the event does not carry: no input may set them, enrichment does.
        fields += [(name, UnsetType, UNSET) for name in sorted(row_columns - self.fields - {"event_type"})]
        self.struct = msgspec.defstruct(
            f"{event_type}_event",
            fields,
            kw_only=True,
            forbid_unknown_fields=True,
            tag_field="event_type",
            tag=event_type,
            namespace={"event_type": event_type},  # the tag, which is no field, readable as on a dict
        )
        self.tests = {field: tests for field, spec in properties.items() if (tests := regexes.tests(spec))}
        # The struct allows every version's fields and requires those all versions require:
        # a version that allows fewer or requires more is checked after decoding.
        self.struct_required = frozenset(merged["required"]) | {"event_type", "schema_version"}
        struct_fields = (self.fields | {"event_type"}, self.struct_required)
        self.narrower_versions = {
            v.version: fields
            for v in versions
            if (fields := (frozenset(v.schema["properties"]), frozenset(v.schema["required"]))) != struct_fields
        }


class ContractDecoder:
    """Decodes JSON event payloads straight into validated event structs, or says it cannot vouch for one.

    ``row_columns`` are the warehouse row's columns: those an event does not carry become
    fields of its struct that only enrichment sets.
    """

    def __init__(
        self, schemas: Mapping[tuple[str, int], EventSchema], row_columns: frozenset[str] = frozenset()
    ) -> None:
        self.row_columns = row_columns
        by_type: dict[str, list[EventSchema]] = {}
        for (event_type, _), schema in sorted(schemas.items()):
            by_type.setdefault(event_type, []).append(schema)
        self.event_types: dict[str, _EventType] = {}
        self.untranslated: dict[str, str] = {}
        for event_type, versions in by_type.items():
            try:
                self.event_types[event_type] = _EventType(versions, row_columns)
            except Untranslatable as error:
                self.untranslated[event_type] = str(error)
        structs = tuple(t.struct for t in self.event_types.values())
        self.fields = frozenset({"event_type"}.union(*(t.fields for t in self.event_types.values())))
        """Every top-level field a decoded event can have."""
        self._decode = msgspec.json.Decoder(Union[structs]).decode if structs else None  # noqa: UP007
        # Invalid UTF-8 raises UnicodeDecodeError, a ValueError.
        # msgspec raises RecursionError on deep nesting: the reference path judges such a record too.
        self._errors = (msgspec.MsgspecError, ValueError, RecursionError)
        self.string_checks = column_checks(
            {event_type: translated.tests for event_type, translated in self.event_types.items()},
            {event_type: translated.fields for event_type, translated in self.event_types.items()},
        )
        # Per field, the versions of event types that do not allow it (rejected when present), or that
        # require it where the struct does not (rejected when absent).
        rules: dict[tuple[str, bool], set[tuple[str, int]]] = {}
        for event_type, translated in self.event_types.items():
            for version, (allowed, required) in translated.narrower_versions.items():
                for field in translated.fields - allowed:
                    rules.setdefault((field, False), set()).add((event_type, version))
                for field in required - translated.struct_required:
                    rules.setdefault((field, True), set()).add((event_type, version))
        self._version_rules = [(field, versions, when_absent) for (field, when_absent), versions in rules.items()]

    def decode_batch(self, payloads: list[bytes]) -> list[msgspec.Struct | None]:
        """Per payload, its event if it is valid under the contract, else ``None``: the reference must judge."""
        if self._decode is None:
            return [None] * len(payloads)
        decode, errors, events = self._decode, self._errors, []
        for payload in payloads:
            try:
                events.append(decode(payload))
            except errors:
                events.append(None)
        for check in self.string_checks:
            check.reject_invalid(events)
        for field, versions, when_absent in self._version_rules:
            present = map(is_not, map(getattr, events, repeat(field), repeat(UNSET)), repeat(UNSET))
            for i in compress(range(len(events)), map(not_, present) if when_absent else present):
                if events[i] is not None and (events[i].event_type, events[i].schema_version) in versions:
                    events[i] = None
        return events


@functools.lru_cache(maxsize=1)
def contract_decoder() -> ContractDecoder:
    """The fast decoder of the package's contract, generated once per process."""
    return ContractDecoder(event_schemas(), frozenset(column.name for column in RAW_EVENTS.columns))
