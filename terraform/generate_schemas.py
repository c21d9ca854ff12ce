"""Writes terraform/schemas/*.json: the BigQuery schemas of the warehouse tables, from the event contract.

The pipelines create ``raw_events`` and ``dead_letter`` (and upsert ``live_metrics``) with exactly these schemas
(``beam_ecommerce.schemas.tables``); Terraform creates the tables first from these files.
Run ``make terraform-schemas`` after the contract changes; ``tests/deploy`` fails while a
committed file differs from what the code produces.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from beam_ecommerce.schemas import DEAD_LETTER, LIVE_METRICS, RAW_EVENTS
from beam_ecommerce.schemas.tables import Table

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
TABLES: tuple[Table, ...] = (RAW_EVENTS, DEAD_LETTER, LIVE_METRICS)


def render(table: Table) -> str:
    """The table's schema as Terraform's ``schema`` argument wants it: the JSON list of fields."""
    return json.dumps(table.bigquery_schema()["fields"], indent=2) + "\n"


def schema_path(table: Table) -> Path:
    """Where the table's schema file lives."""
    return SCHEMA_DIR / f"{table.name}.json"


def main() -> int:
    """Writes every table's schema file; prints the ones that changed."""
    SCHEMA_DIR.mkdir(exist_ok=True)
    for table in TABLES:
        path = schema_path(table)
        text = render(table)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
