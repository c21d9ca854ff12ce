"""The record stream: exact counts, determinism, duplicates and malformed records."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_ecommerce.generator import (
    CSV_KINDS,
    DICT_KINDS,
    JSON_KINDS,
    GeneratorConfig,
    generate_events,
    generate_records,
)
from beam_ecommerce.schemas.contract import event_schemas, event_types
from tests.generator.conftest import CONFIG
from tests.generator.support import Rejected, check_event, parse_csv_line, parse_json_line, rejection


def _payloads(config: GeneratorConfig, fmt: str = "jsonl") -> list[bytes]:
    return [record.payload for record in generate_records(config, fmt)]


def test_kind_names_are_the_documented_ones():
    assert set(JSON_KINDS) == {
        "truncated_json",
        "not_json",
        "bad_utf8",
        "not_an_object",
        "missing_required_field",
        "wrong_type",
        "bad_enum",
        "unknown_event_type",
        "unknown_schema_version",
        "bad_timestamp",
        "negative_price",
        "unexpected_field",
    }
    assert set(CSV_KINDS) == set(DICT_KINDS) | {"wrong_column_count", "bad_utf8"}
    assert len(JSON_KINDS) == len(set(JSON_KINDS)) and len(CSV_KINDS) == len(set(CSV_KINDS))


def test_same_seed_same_bytes_other_seed_other_bytes():
    config = GeneratorConfig(num_events=3_000, seed=11)
    assert _payloads(config) == _payloads(config)
    assert _payloads(config, "csv") == _payloads(config, "csv")
    assert _payloads(config) != _payloads(GeneratorConfig(num_events=3_000, seed=12))


def test_exact_counts(json_records):
    kinds = Counter(record.kind for record in json_records)
    valid, invalid, duplicates = CONFIG.planned_counts()
    assert len(json_records) == CONFIG.num_events
    assert (kinds["valid"], kinds["duplicate"]) == (valid, duplicates)
    assert sum(kinds[kind] for kind in JSON_KINDS) == invalid == round(CONFIG.num_events * CONFIG.invalid_rate)
    assert duplicates == round(CONFIG.num_events * CONFIG.duplicate_rate)


def test_malformation_kinds_are_spread_evenly(json_records, csv_records):
    for records, kinds in ((json_records, JSON_KINDS), (csv_records, CSV_KINDS)):
        counts = Counter(record.kind for record in records if record.kind in kinds)
        assert set(counts) == set(kinds)
        assert max(counts.values()) - min(counts.values()) <= 1


def test_valid_and_duplicate_records_pass_the_contract(json_records):
    for record in json_records:
        if record.kind in ("valid", "duplicate"):
            assert record.payload == orjson.dumps(record.event)
            check_event(parse_json_line(record.payload))


def test_event_ids_are_unique_random_hex(valid_events):
    ids = [event["event_id"] for event in valid_events]
    assert len(set(ids)) == len(ids)
    assert all(len(event_id) == 32 and int(event_id, 16) >= 0 and event_id == event_id.lower() for event_id in ids)


def test_duplicates_resend_the_bytes_of_a_recent_earlier_valid_record(json_records):
    first_seen: dict[bytes, int] = {}
    for position, record in enumerate(json_records):
        if record.kind == "valid":
            assert record.payload not in first_seen, "a valid event is emitted once"
            first_seen[record.payload] = position
        elif record.kind == "duplicate":
            original = first_seen[record.payload]
            assert 0 < position - original < 1_000
            assert json_records[original].event is record.event


def test_no_record_spans_lines(json_records, csv_records):
    for record in json_records + csv_records:
        assert b"\n" not in record.payload and b"\r" not in record.payload


def _expect_rule(kind: str, rejected: Rejected, event: dict | None) -> None:
    """What rejects each kind: the malformation is the reason, not some side effect."""
    expected = {
        "truncated_json": {"not_json"},
        "not_json": {"not_json"},
        "bad_utf8": {"not_json", "not_utf8"},
        "not_an_object": {"not_an_object"},
        "missing_required_field": {"required"},
        "wrong_type": {"type", "cell_type"},
        "bad_enum": {"enum", "const"},
        "unknown_event_type": {"unknown_type_or_version"},
        "unknown_schema_version": {"unknown_type_or_version"},
        "bad_timestamp": {"format", "pattern", "type"},
        "negative_price": {"minimum"},
        "unexpected_field": {"additionalProperties"},
        "wrong_column_count": {"column_count"},
    }[kind]
    assert rejected.rule in expected, (kind, rejected)
    if kind == "bad_timestamp":
        assert "occurred_at" in rejected.detail
    if kind == "negative_price":
        assert "unit_price" in rejected.detail
    if kind == "unknown_event_type":
        assert event is not None and event["event_type"] not in event_types()
    if kind == "unknown_schema_version":
        assert event is not None and event["event_type"] in event_types()
        assert (event["event_type"], event["schema_version"]) not in event_schemas()


@pytest.mark.parametrize("kind", JSON_KINDS)
def test_every_json_malformation_is_produced_and_rejected(json_records, kind):
    malformed = [record for record in json_records if record.kind == kind]
    assert len(malformed) >= 50
    for record in malformed:
        rejected = rejection(record.payload)
        assert rejected is not None, record.payload
        _expect_rule(kind, rejected, record.event)
        assert (record.event is None) == (kind not in DICT_KINDS and kind != "unexpected_field")
        if record.event is not None:
            assert orjson.loads(record.payload) == record.event


@pytest.mark.parametrize("kind", CSV_KINDS)
def test_every_csv_malformation_is_produced_and_rejected(csv_records, kind):
    malformed = [record for record in csv_records if record.kind == kind]
    assert len(malformed) >= 50
    for record in malformed:
        rejected = rejection(record.payload, "csv")
        assert rejected is not None, record.payload
        _expect_rule(kind, rejected, record.event)
        assert (record.event is None) == (kind not in DICT_KINDS)


def test_truncated_and_bad_utf8_records_still_look_like_json(json_records):
    for record in json_records:
        if record.kind in ("truncated_json", "bad_utf8"):
            assert record.payload.startswith(b"{")
        if record.kind == "bad_utf8":
            with pytest.raises(UnicodeDecodeError):
                record.payload.decode("utf-8")


def test_csv_valid_rows_are_the_json_events(json_records, csv_records):
    """Same config, either format: the same valid events, in the same order."""
    csv_events = [parse_csv_line(record.payload) for record in csv_records if record.kind == "valid"]
    assert csv_events == [record.event for record in json_records if record.kind == "valid"]


def test_zero_rates_give_only_valid_events():
    records = list(generate_events(GeneratorConfig(num_events=2_000, invalid_rate=0.0, duplicate_rate=0.0)))
    assert {record.kind for record in records} == {"valid"}
    assert all(rejection(record.payload) is None for record in records)


def test_valid_events_do_not_depend_on_the_format_or_on_what_is_mixed_in():
    clean = GeneratorConfig(num_events=2_000, invalid_rate=0.0, duplicate_rate=0.0)
    noisy = GeneratorConfig(num_events=2_100, invalid_rate=0.04, duplicate_rate=0.0077)
    assert noisy.planned_counts()[0] == clean.planned_counts()[0]
    assert [r.event for r in generate_events(clean)] == [r.event for r in generate_events(noisy) if r.kind == "valid"]


@pytest.mark.parametrize(
    ("num_events", "invalid_rate", "duplicate_rate"),
    [(0, 0.02, 0.01), (1, 0.0, 1.0), (2, 0.0, 0.5), (3, 0.5, 0.5), (5, 1.0, 0.0), (7, 0.0, 0.0)],
)
def test_tiny_and_extreme_configs(num_events, invalid_rate, duplicate_rate):
    config = GeneratorConfig(num_events=num_events, invalid_rate=invalid_rate, duplicate_rate=duplicate_rate)
    records = list(generate_events(config))
    kinds = Counter(record.kind for record in records)
    valid, invalid, duplicates = config.planned_counts()
    assert len(records) == num_events
    assert (kinds.pop("valid", 0), kinds.pop("duplicate", 0), sum(kinds.values())) == (valid, duplicates, invalid)
    if duplicates:
        assert records[0].kind == "valid"


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    num_events=st.integers(min_value=0, max_value=400),
    invalid_rate=st.floats(min_value=0.0, max_value=0.6),
    duplicate_rate=st.floats(min_value=0.0, max_value=0.4),
)
def test_count_invariants(seed, num_events, invalid_rate, duplicate_rate):
    config = GeneratorConfig(
        num_events=num_events,
        seed=seed,
        invalid_rate=invalid_rate,
        duplicate_rate=duplicate_rate,
        num_users=50,
        num_products=20,
    )
    records = list(generate_events(config))
    kinds = Counter(record.kind for record in records)
    valid, invalid, duplicates = config.planned_counts()
    assert len(records) == num_events == valid + invalid + duplicates
    assert invalid == round(num_events * invalid_rate)
    assert duplicates <= round(num_events * duplicate_rate)
    assert kinds["valid"] == valid and kinds["duplicate"] == duplicates
    malformed = [kinds[kind] for kind in JSON_KINDS]
    assert sum(malformed) == invalid and max(malformed) - min(malformed) <= 1
    seen: set[bytes] = set()
    for record in records:
        if record.kind == "valid":
            seen.add(record.payload)
        elif record.kind == "duplicate":
            assert record.payload in seen
        else:
            assert rejection(record.payload) is not None
