"""The DuckDB load: the lean dedupe against the temp table + window + anti join it replaced.

One command, one run, one table::

    python -m benchmarks.duckdb_load --rows 1000000

Stages ``--rows`` raw_events rows as JSONL (5 % re-sent event ids, 5 % of the ids already
in the table), then, alternately for ``--repeats`` rounds, loads them into a fresh copy of
the same warehouse with each contender, in this process:

- ``window`` (baseline, the load until issue 13): ``CREATE TEMP TABLE`` from the files,
  ``row_number() OVER (PARTITION BY event_id ORDER BY source)``, anti join, ordered insert;
- ``lean`` (``DuckDBWarehouse.load``): ``min(source)`` per new event id and a semi join,
  straight from the files, ``preserve_insertion_order = false``.

It checks both leave the same rows, and prints microseconds per staged row (best round)
and the ratio. Ratios are what to compare across machines; the machine here is shared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import duckdb
import orjson

from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse, _read_staged, staged_object_bytes
from beam_ecommerce.io.files import DEFAULT_MAX_RECORD_BYTES
from beam_ecommerce.schemas import RAW_EVENTS

_ROW = {
    "event_type": "add_to_cart",
    "schema_version": 1,
    "occurred_at": "2026-11-03T10:15:30.250000+00:00",
    "user_id": "user-0001",
    "session_id": "sess-0001",
    "country": "DE",
    "signup_channel": "organic",
    "device": "mobile",
    "email_hash": "667b5b0cc64fe79382ef1b1ec26a623080f4cb4bc57cc9bc2376a25c6802283e",
    "ip_address_hash": "024f38e394d6c69db316cba1600f4a82088d71babaeb09eef8b9e0f33399d37a",
    "product_id": "prod-0042",
    "product_category": "kitchen",
    "unit_price": 249.9,
    "quantity": 1,
    "currency": "EUR",
    "event_date": "2026-11-03",
    "revenue": None,
    "ingested_at": "2026-11-29T20:27:24.709880+00:00",
    "pipeline_version": "bench",
    "run_id": "bench",
}


def stage(path: str, rows: int) -> None:
    """``rows`` staged rows; every 20th re-sends the id of an earlier row, from a later line."""
    with open(path, "wb") as out:
        for i in range(rows):
            key = i // 2 if i % 20 == 0 else i
            out.write(orjson.dumps(_ROW | {"event_id": f"evt-{key:09d}", "source": f"f.jsonl:{i + 1:09d}"}) + b"\n")


def window_load(con: duckdb.DuckDBPyConnection, files: list[str]) -> int:
    """The baseline: the load as it was before issue 13."""
    con.execute(f"CREATE TEMP TABLE staged AS {_read_staged(RAW_EVENTS, files, staged_object_bytes(1 << 20))}")
    con.execute("SELECT count(*) FROM staged").fetchone()
    (inserted,) = con.execute(
        """INSERT INTO raw_events BY NAME SELECT s.*
           FROM (SELECT * FROM staged QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY source) = 1) AS s
           ANTI JOIN raw_events AS t ON t.event_id = s.event_id"""
    ).fetchone()
    con.execute("DROP TABLE staged")
    return inserted


def fresh_warehouse(path: str, staged: str) -> DuckDBWarehouse:
    """A warehouse holding 5 % of the staged ids already (those ending in 7, first copies)."""
    for leftover in (path, path + ".wal"):
        if os.path.exists(leftover):
            os.remove(leftover)
    warehouse = DuckDBWarehouse(path, "1GB", DEFAULT_MAX_RECORD_BYTES)
    warehouse.prepare()
    con = warehouse.connect()
    select = _read_staged(RAW_EVENTS, [staged], warehouse.max_object_bytes)
    con.execute(
        f"INSERT INTO raw_events BY NAME SELECT * FROM ({select}) WHERE event_id LIKE '%7' AND source LIKE '%1'"
    )
    con.close()
    return warehouse


def content(path: str) -> tuple:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(
            "SELECT count(*), count(DISTINCT event_id), sum(hash(event_id, source)) FROM raw_events"
        ).fetchone()
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        staged = os.path.join(folder, "raw_events.jsonl")
        stage(staged, args.rows)
        best: dict[str, float] = {}
        results: dict[str, tuple] = {}
        for _ in range(args.repeats):
            for name in ("window", "lean"):
                path = os.path.join(folder, f"{name}.duckdb")
                warehouse = fresh_warehouse(path, staged)
                started = time.perf_counter()
                if name == "lean":
                    warehouse.load("bench", [staged], [])
                else:
                    con = warehouse.connect()
                    con.execute("BEGIN TRANSACTION")
                    window_load(con, [staged])
                    con.execute("COMMIT")
                    con.close()
                seconds = time.perf_counter() - started
                best[name] = min(best.get(name, seconds), seconds)
                results[name] = content(path)
        assert results["window"] == results["lean"], results
        print(f"{args.rows:,} staged rows, {results['lean'][0]:,} in the table after the load (same for both)")
        for name, seconds in best.items():
            print(f"{name:>7}: {seconds:6.2f} s  {seconds / args.rows * 1e6:5.2f} us/row")
        print(f"lean is {best['window'] / best['lean']:.2f}x the window load")


if __name__ == "__main__":
    main()
