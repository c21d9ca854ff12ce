"""GeneratorConfig checks and planned counts; Manifest as JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from beam_ecommerce.generator import GeneratorConfig, Manifest


def test_defaults():
    config = GeneratorConfig()
    assert (config.num_events, config.seed, config.days) == (100_000, 42, 14)
    assert config.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert config.planned_counts() == (97_000, 2_000, 1_000)


@pytest.mark.parametrize(
    "changes",
    [
        {"num_events": -1},
        {"invalid_rate": -0.1},
        {"duplicate_rate": 1.5},
        {"invalid_rate": 0.7, "duplicate_rate": 0.4},
        {"start": datetime(2026, 11, 1)},
        {"days": 0},
        {"num_users": 0},
        {"num_products": 0},
    ],
)
def test_bad_configs_are_refused(changes):
    with pytest.raises(ValueError):
        GeneratorConfig(**changes)


def test_duplicates_always_leave_a_valid_event_to_repeat():
    assert GeneratorConfig(num_events=1, invalid_rate=0.0, duplicate_rate=1.0).planned_counts() == (1, 0, 0)
    assert GeneratorConfig(num_events=10, invalid_rate=0.5, duplicate_rate=0.5).planned_counts() == (1, 5, 4)


def test_manifest_json_round_trip():
    manifest = Manifest(
        records=10,
        valid_events=7,
        duplicates=1,
        invalid={"not_json": 1, "bad_enum": 1},
        events_by_type={"page_view": 6, "payment": 1},
        files=["events-00000.jsonl"],
        format="jsonl",
        seed=42,
    )
    assert Manifest.from_json(manifest.to_json()) == manifest
