"""Shared generated data: made once per test session, read by many tests."""

from __future__ import annotations

import pytest

from beam_ecommerce.generator import GeneratedRecord, GeneratorConfig, generate_events, generate_records

# Rates above the defaults, so that every malformation kind shows up many times.
CONFIG = GeneratorConfig(num_events=20_000, seed=7, invalid_rate=0.05, duplicate_rate=0.02)


@pytest.fixture(scope="session")
def json_records() -> list[GeneratedRecord]:
    return list(generate_events(CONFIG))


@pytest.fixture(scope="session")
def csv_records() -> list[GeneratedRecord]:
    return list(generate_records(CONFIG, "csv"))


@pytest.fixture(scope="session")
def valid_events(json_records: list[GeneratedRecord]) -> list[dict]:
    return [record.event for record in json_records if record.kind == "valid"]
