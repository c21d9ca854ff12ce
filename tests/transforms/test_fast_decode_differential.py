"""Differential tests: the fast core against the reference core, record for record.

The reference is today's path: ``parse_json`` (orjson) then the contract's fastjsonschema
validator. The fast path is the msgspec decoder generated from the same JSON Schemas
(``schemas.decoders``) and the batch stages of ``RunFastCore``. On valid, mutated and
garbage records both must take the same decision, give the same event (same values and
Python types) and, through the whole core, the same rows and the same dead letters
(stage, ``error_type``, message, payload).
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import partial
from types import SimpleNamespace

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.duckdb.sinks import rows_to_jsonl
from beam_ecommerce.records import RawBatch, RawRecord
from beam_ecommerce.records.batches import rows_as_dicts
from beam_ecommerce.records.dead_letter import RunContext
from beam_ecommerce.schemas import RAW_EVENTS, event_schemas
from beam_ecommerce.schemas.contract import compose_contract
from beam_ecommerce.schemas.decoders import ContractDecoder, contract_decoder
from beam_ecommerce.schemas.string_checks import StringTest, joined_regex
from beam_ecommerce.transforms.dead_letter import RecordError
from beam_ecommerce.transforms.parse import parse_json
from beam_ecommerce.transforms.process import RunFastCore, RunStages, core_stages
from beam_ecommerce.transforms.validate import validate_event
from beam_ecommerce.transforms.warehouse_fit import FitWarehouse
from tests.samples import EVENT_TYPES, sample_event

CONTEXT = RunContext("diff-run", "diff-version")
FIELDS = sorted({name for schema in event_schemas().values() for name in schema.schema["properties"]})
ITEM_FIELDS = ["product_id", "product_category", "unit_price", "quantity"]

# Strings near the contract's edges: patterns, formats, enums, lengths, newlines, non-ASCII.
_edge_strings = st.one_of(
    st.sampled_from(
        [
            "",
            "DE",
            "DE\n",
            "de",
            "EUR",
            "EUR\n",
            "EU",
            "2026-11-03T10:15:30Z",
            "2026-11-03T10:15:30Z\n",
            "2026-11-03T10:15:30+00:00",
            "2026-11-03T10:15:30+01:00",
            "2026-11-03t10:15:30z",
            "2026-02-29T10:15:30Z",
            "2024-02-29T10:15:30Z",
            "2026-11-03T23:59:60Z",
            "2026-11-03T10:15:30.123456789Z",
            "2026-11-03 10:15:30Z",
            "a@b.co",
            "a..b@c.de",
            "x@y",
            "1.2.3.4",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.4\n",
            "evt-00000001",
            "evt 0001x",
            "evt-0001\n",
            "created",
            "refunded",
            "card",
            "barter",
            "product",
            "mobile",
            "organic",
            "x" * 64,
            "x" * 65,
            "x" * 2048,
            "x" * 2049,
            "é" * 64,
            "😀" * 65,
        ]
    ),
    st.from_regex(r"[A-Za-z0-9_\-]{6,66}", fullmatch=True),
    st.from_regex(
        r"2026-(0[1-9]|1[0-3])-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9](\.[0-9]{1,7})?(Z|z|[+-]0[01]:?00)"
    ),
    st.text(max_size=12),
)
_numbers = st.one_of(
    st.integers(-3, 1002),
    st.sampled_from([0, -1, 1, 1000, 1001, 1_000_000, 100_000_000, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, 1e6, 1e6 + 0.01, 1e8, 1e8 + 1, 1e308]),
)
_scalars = st.one_of(_edge_strings, _numbers, st.booleans(), st.none())
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
)


def _encode(event: dict) -> bytes:
    """orjson where it can; the standard library for integers beyond 64 bits (and escaped non-ASCII)."""
    try:
        return orjson.dumps(event)
    except TypeError:
        return json.dumps(event).encode()


@st.composite
def valid_events(draw) -> dict:
    event = sample_event(
        draw(st.sampled_from(EVENT_TYPES)), draw(st.from_regex(r"[A-Za-z0-9_-]{8,40}", fullmatch=True))
    )
    if event["event_type"] == "page_view" and draw(st.booleans()):
        event |= {"schema_version": 2, "experiment_variant": draw(st.text(min_size=1, max_size=8))}
    for optional in ("email", "ip_address", "country", "referrer", "previous_status"):
        if optional in event and draw(st.booleans()):
            del event[optional]
    return event


@st.composite
def mutated_events(draw) -> dict:
    event = draw(valid_events())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "drop", "item", "version", "type"]))
        if kind == "set":
            event[draw(st.sampled_from([*FIELDS, "zz_unknown"]))] = draw(st.one_of(_edge_strings, _numbers, _values))
        elif kind == "drop" and event:
            del event[draw(st.sampled_from(sorted(event)))]
        elif kind == "item" and isinstance(event.get("items"), list) and event["items"]:
            item = event["items"][0]
            if isinstance(item, dict):
                item[draw(st.sampled_from([*ITEM_FIELDS, "zz"]))] = draw(st.one_of(_edge_strings, _numbers, _values))
        elif kind == "version":
            event["schema_version"] = draw(st.sampled_from([1, 2, 3, 1.0, 2.0, "1", True, None]))
        elif kind == "type":
            event["event_type"] = draw(st.sampled_from([*EVENT_TYPES, "nope", 1, None]))
    return event


@st.composite
def byte_mutations(draw) -> bytes:
    """Mutations only bytes can express: duplicate keys, BOM, bad UTF-8, truncation, surrogates, whitespace."""
    encoded = orjson.dumps(draw(valid_events()))
    kind = draw(st.sampled_from(["duplicate", "bom", "utf8", "truncate", "surrogate", "space", "two"]))
    if kind == "duplicate":
        field = draw(st.sampled_from(FIELDS))
        value = _encode(draw(st.one_of(_edge_strings, _numbers)))
        duplicate = b'"' + field.encode() + b'":' + value + b","
        return (
            encoded[:1] + duplicate + encoded[1:]
            if draw(st.booleans())
            else encoded[:-1] + b"," + duplicate[:-1] + b"}"
        )
    if kind == "bom":
        return b"\xef\xbb\xbf" + encoded
    if kind == "utf8":
        at = draw(st.integers(0, len(encoded)))
        return encoded[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + encoded[at:]
    if kind == "truncate":
        return encoded[: draw(st.integers(0, len(encoded) - 1))]
    if kind == "surrogate":
        return encoded.replace(b'"user_id":"', b'"user_id":"\\ud800', 1)
    if kind == "space":
        return (
            draw(st.sampled_from([b" ", b"\n", b"\t", b"\r\n"])) + encoded + draw(st.sampled_from([b"", b" ", b"\n"]))
        )
    return encoded + b"," + encoded


payloads = st.one_of(
    valid_events().map(orjson.dumps),
    mutated_events().map(_encode),
    byte_mutations(),
    st.binary(max_size=120),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'"x"', b"{", b'{"event_type":"page_view"}']),
)


def reference_verdict(payload: bytes) -> tuple[str, str] | dict:
    """Today's decision: the event, or the stage and ``error_type`` of its rejection."""
    try:
        fields = parse_json(payload)
    except RecordError as error:
        return ("parse", error.error_type)
    try:
        validate_event(fields)
    except RecordError as error:
        return ("validate", error.error_type)
    return fields


def _decoded(payloads: list[bytes]) -> list[dict]:
    """The decoder's verdicts as dicts: each event as ``orjson.loads`` gives it, ``{}`` where it cannot vouch."""
    return [{} if event is None else event for event in rows_as_dicts(contract_decoder().decode_batch(payloads))]


def _typed(value) -> bytes:
    """Values and their JSON types: ``1``, ``1.0`` and ``True`` compare equal in Python but not here."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(payloads, min_size=1, max_size=30))
def test_the_decoder_accepts_only_what_the_reference_accepts_and_gives_the_same_event(batch):
    decoded = _decoded(batch)
    assert len(decoded) == len(batch)
    for payload, row in zip(batch, decoded, strict=True):
        verdict = reference_verdict(payload)
        if row:
            assert isinstance(verdict, dict), (payload, verdict)
            assert _typed(row) == _typed(verdict), payload


def test_the_decoder_vouches_for_valid_events_of_every_type_and_version():
    events = [orjson.dumps(sample_event(t, f"evt-{i:08d}")) for i, t in enumerate(EVENT_TYPES)]
    events.append(orjson.dumps(sample_event("page_view") | {"schema_version": 2, "experiment_variant": "b"}))
    assert all(_decoded(events))


def test_a_version_gets_only_its_own_fields():
    v1_with_a_v2_field = sample_event("page_view") | {"experiment_variant": "b"}
    assert _decoded([orjson.dumps(v1_with_a_v2_field)]) == [{}]
    assert reference_verdict(orjson.dumps(v1_with_a_v2_field)) == ("validate", "schema_additionalProperties")


def _core(core: type[RunStages], typed_rows: bool = False) -> RunStages:
    stages = core_stages(CONTEXT, "k")
    dofn = RunFastCore(stages, typed_rows) if core is RunFastCore else core(stages)
    dofn.setup()
    return dofn


def _outputs(core: RunStages, records: list[RawRecord]) -> tuple[list, list]:
    rows, dead_letters = [], []
    for output in core.process(RawBatch(records)):
        if isinstance(output, list):
            rows += [_typed({k: v for k, v in row.items() if k != "ingested_at"}) for row in rows_as_dicts(output)]
        else:
            dead_letters.append(_typed({k: v for k, v in output.value.items() if k != "timestamp"}))
    return sorted(rows), sorted(dead_letters)


@pytest.mark.parametrize("typed_rows", [False, True], ids=["dict rows", "typed rows"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(payloads, min_size=1, max_size=30))
def test_the_fast_core_gives_the_reference_cores_rows_and_dead_letters(typed_rows, batch):
    records = [RawRecord(payload, f"diff:{i}") for i, payload in enumerate(batch)]
    fast_rows, fast_dead = _outputs(_core(RunFastCore, typed_rows), records)
    reference_rows, reference_dead = _outputs(_core(RunStages), records)
    assert fast_rows == reference_rows
    assert fast_dead == reference_dead
    assert len(fast_rows) + len(fast_dead) == len(records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_events(), min_size=1, max_size=20))
def test_typed_rows_are_the_decoders_structs_and_stage_as_the_same_json(events):
    """What the DuckDB sink stages: the typed rows' JSON lines hold what the dict rows' do."""
    records = [RawRecord(orjson.dumps(event), f"typed:{i}") for i, event in enumerate(events)]
    (typed,), (dicts,) = (
        [o for o in _core(RunFastCore, t).process(RawBatch(records)) if isinstance(o, list)] for t in (True, False)
    )
    assert all(isinstance(row, msgspec.Struct) for row in typed) and all(type(row) is dict for row in dicts)
    staged = [[orjson.loads(line) for line in rows_to_jsonl(rows).splitlines()] for rows in (typed, dicts)]
    for row in staged[0] + staged[1]:
        row.pop("ingested_at")
    assert staged[0] == staged[1]


@pytest.mark.parametrize("column", ["revenue", "source", "email_hash", "run_id", "event_date"])
def test_an_event_carrying_a_column_only_enriching_sets_is_left_to_the_reference(column):
    """The structs have the row's other columns as fields no input may set: the reference rejects such an event."""
    payload = orjson.dumps(sample_event("order_placed") | {column: "x"})
    assert _decoded([payload]) == [{}]
    assert reference_verdict(payload) == ("validate", "schema_additionalProperties")
    records = [RawRecord(payload, "a:1")]
    assert _outputs(_core(RunFastCore, typed_rows=True), records) == _outputs(_core(RunStages), records)


def test_records_that_are_not_plain_json_take_the_reference_path():
    event = orjson.dumps(sample_event("payment"))
    records = [
        RawRecord(event, "a:1", attributes=(("read_error", "cannot read"),)),
        RawRecord(event, "a:2", attributes=(("origin", "pubsub"),)),
        RawRecord(b"order_id\nx", "a:3", format="csv", csv_header=("order_id",)),
    ]
    assert _outputs(_core(RunFastCore), records) == _outputs(_core(RunStages), records)


def test_nesting_too_deep_for_the_decoder_is_left_to_the_reference():
    deep = orjson.dumps(sample_event("page_view"))[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    records = [RawRecord(deep, "a:1"), RawRecord(orjson.dumps(sample_event("payment")), "a:2")]
    assert _decoded([deep]) == [{}]
    assert _outputs(_core(RunFastCore), records) == _outputs(_core(RunStages), records)


@pytest.mark.parametrize("typed_rows", [False, True], ids=["dict rows", "typed rows asked for"])
def test_a_table_without_a_column_of_the_contract_takes_its_rows_as_the_reference_does(typed_rows):
    """The fast core skips gathering each batch's keys only when the table has every column an event can bring;
    it keeps rows typed only then."""
    table = dataclasses.replace(RAW_EVENTS, columns=tuple(c for c in RAW_EVENTS.columns if c.name != "referrer"))
    cores = []
    for core in (partial(RunFastCore, typed_rows=typed_rows), RunStages):
        dofn = core([*core_stages(CONTEXT, "k")[:-1], FitWarehouse(CONTEXT, table)])
        dofn.setup()
        cores.append(dofn)
    assert cores[0]._columns_fit is False and _core(RunFastCore)._columns_fit is True
    assert cores[0]._typed is False and _core(RunFastCore, typed_rows)._typed is typed_rows
    with_referrer = sample_event("page_view") | {"referrer": "https://example.com/"}
    without = {k: v for k, v in sample_event("page_view").items() if k != "referrer"} | {"event_id": "evt-00000002"}
    records = [RawRecord(orjson.dumps(with_referrer), "t:1"), RawRecord(orjson.dumps(without), "t:2")]
    (fast_rows, fast_dead), reference = (_outputs(core, records) for core in cores)
    assert (fast_rows, fast_dead) == reference
    assert len(fast_rows) == 1 and b"unknown_column" in fast_dead[0]


_NEWLINE_FREE = st.text(st.characters(blacklist_characters="\n"), max_size=8)


def _passes(test: StringTest, value: str) -> bool:
    return bool(test.regex.match(value) if test.anchored else test.regex.search(value))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_edge_strings, _NEWLINE_FREE), min_size=1, max_size=12))
def test_a_joined_regex_stops_exactly_at_the_first_value_that_fails(values):
    text = "\n".join(values) + "\n"
    joined_tests = [
        (test, joined)
        for check in contract_decoder().string_checks
        for test, joined in zip(check.tests, check.joined or [], strict=False)
    ]
    assert joined_tests
    for test, joined in joined_tests:
        failing = [i for i, value in enumerate(values) if not _passes(test, value)]
        if text.count("\n") == len(values):
            first = failing[0] if failing else len(values)
            assert joined.match(text).end() == sum(len(v) + 1 for v in values[:first]), (test.regex.pattern, values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_edge_strings, _NEWLINE_FREE), min_size=1, max_size=200))
def test_a_column_check_rejects_exactly_the_rows_whose_value_fails(values):
    """Many values, several bad ones anywhere (some with newlines): the joined pass resumes after each."""
    for check in contract_decoder().string_checks:
        event_type = min(check.event_types or EVENT_TYPES)
        rows = [SimpleNamespace(event_type=event_type, **{check.field: value}) for value in values]
        check.reject_invalid(rows)
        kept = [row is not None for row in rows]
        assert kept == [all(_passes(test, value) for test in check.tests) for value in values], check.field


def test_regexes_that_can_see_a_newline_or_look_around_are_never_joined():
    assert joined_regex(StringTest(re.compile(r"^(?!.*\.\..*@)[^@.][^@]*(?<!\.)@[^@]+\.[^@]+\Z"), True)) is None
    assert joined_regex(StringTest(re.compile(r"^[A-Z]{2}$"), False)) is None
    assert joined_regex(StringTest(re.compile(r"^a|b\Z"), False)) is None
    assert joined_regex(StringTest(re.compile(r"^\s+\Z"), False)) is None
    assert joined_regex(StringTest(re.compile(r"^[A-Z]{2}\Z"), False)) is not None


def test_an_event_type_the_generator_cannot_translate_is_left_to_the_reference():
    files = {
        ("envelope", 1): {"type": "object", "required": ["event_id"], "properties": {"event_id": {"type": "string"}}},
        ("odd", 1): {
            "type": "object",
            "required": ["n"],
            "properties": {"n": {"type": "integer", "multipleOf": 3}},
        },
    }
    files[("envelope", 1)]["properties"] |= {"event_type": {"type": "string"}, "schema_version": {"type": "integer"}}
    decoder = ContractDecoder(compose_contract(files))
    assert "odd" in decoder.untranslated
    assert decoder.decode_batch([b'{"event_id":"e","event_type":"odd","schema_version":1,"n":3}']) == [None]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_events(), min_size=1, max_size=20))
def test_the_decoder_vouches_for_every_valid_event(events):
    encoded = [orjson.dumps(event) for event in events]
    assert [_typed(row) for row in _decoded(encoded)] == [_typed(e) for e in events]


def test_the_fast_paths_column_check_of_numbers_agrees_with_the_row_check():
    """Enrich derives top-level numbers (revenue) the decoder never bounded: checked a column at a time.

    The column check may only be stricter (a float sum that overflows sends the batch row by row).
    """
    fit = FitWarehouse(CONTEXT)
    exact = [
        [{"revenue": 1.5, "quantity": 3}, {"revenue": None}, {"revenue": 0.0}],
        [{"revenue": float("inf")}],
        [{"revenue": 2.0}, {"revenue": float("nan")}],
        [{"revenue": 2.0}, {"quantity": 2**63}],
        [{"quantity": -(2**63)}],
    ]
    for rows in exact:
        assert fit.top_level_numbers_fit(rows) == all(_row_fits(fit, row) for row in rows), rows
    overflowing = [{"revenue": 1e308}, {"revenue": 1e308}]
    assert all(_row_fits(fit, row) for row in overflowing)
    assert not fit.top_level_numbers_fit(overflowing)


def _row_fits(fit: FitWarehouse, row: dict) -> bool:
    try:
        fit.check_row(row)
    except RecordError:
        return False
    return True
