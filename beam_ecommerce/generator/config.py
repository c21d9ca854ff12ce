"""What the generator is asked for (``GeneratorConfig``) and what it reports (``Manifest``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

JSONL = "jsonl"
CSV = "csv"

VALID = "valid"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of one generated data set; the same config always yields the same bytes.

    ``num_events`` counts every record emitted: valid events, malformed records and
    duplicates. Exactly ``round(num_events * invalid_rate)`` records are malformed and
    ``round(num_events * duplicate_rate)`` are duplicates, except that duplicates are
    capped so that at least one valid event remains for them to repeat.
    """

    num_events: int = 100_000
    seed: int = 42
    invalid_rate: float = 0.02
    duplicate_rate: float = 0.01
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    days: int = 14
    num_users: int = 5_000
    num_products: int = 500

    def __post_init__(self) -> None:
        if self.num_events < 0:
            raise ValueError(f"num_events must be >= 0, got {self.num_events}")
        for name in ("invalid_rate", "duplicate_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if self.invalid_rate + self.duplicate_rate > 1.0:
            raise ValueError("invalid_rate + duplicate_rate must not exceed 1")
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        for name in ("days", "num_users", "num_products"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def planned_counts(self) -> tuple[int, int, int]:
        """``(valid, invalid, duplicates)`` record counts; they sum to ``num_events``."""
        invalid = round(self.num_events * self.invalid_rate)
        duplicates = min(round(self.num_events * self.duplicate_rate), max(0, self.num_events - invalid - 1))
        return self.num_events - invalid - duplicates, invalid, duplicates


@dataclass
class Manifest:
    """Ground truth of one generated data set, written as ``_manifest.json`` beside its files.

    ``files`` are the data file names relative to the manifest's directory, in order.
    ``invalid`` has an entry (possibly 0) for every malformation kind of the format.
    """

    records: int
    valid_events: int
    duplicates: int
    invalid: dict[str, int]
    events_by_type: dict[str, int]
    files: list[str]
    format: str
    seed: int

    def to_json(self) -> str:
        """The manifest as a JSON document."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse a manifest written by :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One emitted record.

    ``payload`` is the record's line without its trailing newline: JSON text for the
    JSONL form, a CSV row for the CSV form. ``kind`` is ``"valid"``, ``"duplicate"`` or
    the malformation kind. ``event`` is the event dict for valid and duplicate records
    and for dict-level malformations (the malformed dict), ``None`` for byte-level ones.
    A duplicate shares its ``event`` object with the record it repeats.
    """

    payload: bytes
    kind: str
    event: dict[str, Any] | None
