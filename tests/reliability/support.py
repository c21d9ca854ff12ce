"""What the reliability tests share: inputs, batch arguments and a run-independent view of a warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb

from beam_ecommerce.generator import GeneratorConfig, write_files

KEY = "reliability-test-key"  # 16+ bytes, as pii.MIN_KEY_BYTES asks
# Columns that differ between two runs over the same input by design: which run and when.
RUN_COLUMNS = {"run_id", "ingested_at", "timestamp"}


def generate(folder: Path, num_events: int, seed: int, fmt: str = "jsonl") -> None:
    """Generator output (with malformed records and re-sends) in ``folder``."""
    write_files(GeneratorConfig(num_events=num_events, seed=seed), str(folder), fmt, progress=False)


def batch_args(pattern: str, warehouse: Path, *extra: str) -> list[str]:
    """Arguments of a batch run from ``pattern`` into the warehouse file ``warehouse``."""
    return [
        f"--input={pattern}",
        f"--duckdb_path={warehouse}",
        f"--dead_letter_dir={warehouse.parent / 'dead_letter'}",
        f"--pii_hash_key={KEY}",
        *extra,
    ]


def content(path: Path | str, table: str) -> list[tuple]:
    """Every row of ``table`` without the columns that name the run, sorted: equal for equal loads."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [name for (name,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
        kept = ", ".join(f'"{name}"' for name in names if name not in RUN_COLUMNS)
        return sorted(con.execute(f'SELECT {kept} FROM "{table}"').fetchall(), key=repr)
    finally:
        con.close()


def counts(path: Path | str) -> dict[str, int]:
    """Rows of each warehouse table, and the distinct event ids of ``raw_events``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dict(
            zip(
                ("raw_events", "event_ids", "dead_letter"),
                con.execute(
                    "SELECT (SELECT count(*) FROM raw_events), (SELECT count(DISTINCT event_id) FROM raw_events),"
                    " (SELECT count(*) FROM dead_letter)"
                ).fetchone(),
                strict=True,
            )
        )
    finally:
        con.close()
