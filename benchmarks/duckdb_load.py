"""The DuckDB load: today's (the staged files read once, straight into the table) against
session 6's (a temp table of every staged row, only repeated ids ranked: the named baseline).

One command, one run, one table::

    python -m benchmarks.duckdb_load --rows 1000000 --repeats 6

Stages ``--rows`` raw_events rows as JSONL in one file (5 % re-sent event ids, 5 % of the
ids already in the table), then, for ``--repeats`` rounds, each starting with the other
contender, loads them into a fresh copy of the same warehouse (``--memory-limit`` for
DuckDB, the batch's 512MB unless given) with each contender, in this process; each load
is a whole transaction:

- ``temp`` (baseline, session 6's load): ``CREATE TEMP TABLE`` of every staged row from the
  files; only the ids staged more than once are ranked (``arg_min(rowid, source)``), their
  later copies anti-joined away; insertion order not kept;
- ``load`` (``DuckDBWarehouse.load``, today's): a first pass reads only ``event_id`` and
  ``source`` and keeps the (id, source) of later copies; the rows are then read once,
  straight into the table, anti-joined on those and on the ids already there (two staged
  rows that tie on both take the temp table).

Session 5's window over every staged row (``row_number() OVER (PARTITION BY event_id ORDER
BY source)``) was session 6's baseline: it spilled at 10M rows (benchmarks/README.md).

It checks both leave the same rows and insert as many, and prints each round's ratios and
the load average, then the median of the rounds' ratios, wall and CPU (all of DuckDB's
threads). Ratios are what to compare; the machine here is shared, and DuckDB's threads
wait for the cores others hold, so wall ratios swing with the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import duckdb
import orjson

from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseError, _read_staged
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


# The baseline's statement, as session 6 ran it on its temp table of every staged row.
_SESSION_6_INSERT = """
INSERT INTO raw_events BY NAME
WITH repeated AS (SELECT event_id FROM staged GROUP BY event_id HAVING count(*) > 1),
copies AS (SELECT rowid AS copy, event_id, source FROM staged SEMI JOIN repeated USING (event_id)),
later_copies AS (SELECT copy FROM copies EXCEPT SELECT arg_min(copy, source) FROM copies GROUP BY event_id)
SELECT s.* FROM staged AS s
ANTI JOIN later_copies ON s.rowid = later_copies.copy
ANTI JOIN raw_events AS t ON t.event_id = s.event_id
"""


def timed_load(name: str, warehouse: DuckDBWarehouse, staged: str) -> tuple[float, float, int]:
    """Wall and CPU seconds (all of DuckDB's threads) for one whole load (connect, transaction,
    commit) by contender ``name``; rows inserted."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if name == "load":
        inserted = warehouse.load("bench", [staged], []).rows_loaded
    else:
        con = warehouse.connect()
        con.execute("SET preserve_insertion_order = false")
        select = _read_staged(RAW_EVENTS, [staged], warehouse.max_object_bytes)
        con.execute(f"CREATE TEMP TABLE staged AS {select}")
        con.execute("BEGIN TRANSACTION")
        (inserted,) = con.execute(_SESSION_6_INSERT).fetchone()
        con.execute("COMMIT")
        con.close()
    return time.perf_counter() - started, time.process_time() - cpu_started, inserted


def fresh_warehouse(path: str, staged: str, memory_limit: str, table_rows: int = 0) -> DuckDBWarehouse:
    """A warehouse holding 5 % of the staged ids already (those ending in 7, first copies), and
    ``table_rows`` rows of other ids, random hex as the generator's are: a warehouse earlier
    runs have filled."""
    for leftover in (path, path + ".wal"):
        if os.path.exists(leftover):
            os.remove(leftover)
    warehouse = DuckDBWarehouse(path, memory_limit)
    warehouse.prepare()
    con = warehouse.connect()
    select = _read_staged(RAW_EVENTS, [staged], warehouse.max_object_bytes)
    con.execute(
        f"INSERT INTO raw_events BY NAME SELECT * FROM ({select}) WHERE event_id LIKE '%7' AND source LIKE '%1'"
    )
    con.execute(
        f"""INSERT INTO raw_events BY NAME
        SELECT s.* REPLACE (md5('old' || r.i) AS event_id, 'old.jsonl:' || r.i AS source)
        FROM (SELECT * FROM ({select}) LIMIT 1) AS s CROSS JOIN range({table_rows}) AS r(i)"""
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
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--memory-limit", default="512MB", help="DuckDB's memory limit (the batch's default: 512MB)")
    parser.add_argument(
        "--table-rows", type=int, default=0, help="rows of other ids in the table before each load (earlier runs')"
    )
    args = parser.parse_args()
    names = ("temp", "load")
    with tempfile.TemporaryDirectory() as folder:
        staged = os.path.join(folder, "raw_events.jsonl")
        stage(staged, args.rows)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        results: dict[str, tuple] = {}
        loads = [os.getloadavg()[0]]
        failures: dict[str, int] = dict.fromkeys(names, 0)
        for round_number in range(args.repeats):
            # Each round starts with a different contender, so none always runs first on a warm cache.
            timed: dict[str, tuple[float, float]] = {}
            for name in names[round_number % 2 :] + names[: round_number % 2]:
                path = os.path.join(folder, f"{name}.duckdb")
                warehouse = fresh_warehouse(path, staged, args.memory_limit, args.table_rows)
                try:
                    elapsed, cpu_seconds, inserted = timed_load(name, warehouse, staged)
                except (duckdb.Error, WarehouseError) as error:  # out of memory, at the batch's 512MB
                    failures[name] += 1
                    print(f"round {round_number + 1}: {name} failed: {str(error).splitlines()[0][:160]}")
                    continue
                timed[name] = elapsed, cpu_seconds
                results[name] = (inserted, *content(path))
            loads.append(os.getloadavg()[0])
            if len(timed) < len(names):
                continue  # a round counts only when every contender finished
            for name, (elapsed, cpu_seconds) in timed.items():
                seconds[name].append(elapsed)
                cpu[name].append(cpu_seconds)
            ratios = "  ".join(
                f"{name} {seconds['temp'][-1] / seconds[name][-1]:.2f}x wall, "
                f"{cpu['temp'][-1] / cpu[name][-1]:.2f}x CPU"
                for name in names[1:]
            )
            print(f"round {round_number + 1}: {ratios} (load average {loads[-1]:.2f})")
        print(f"failed loads of {args.repeats}: " + ", ".join(f"{name} {count}" for name, count in failures.items()))
        if not seconds["load"]:
            raise SystemExit("no round where every contender finished")
        assert len(set(results.values())) == 1, results
        print(
            f"{args.rows:,} staged rows into a table of {args.table_rows:,} other rows, "
            f"{results['load'][1]:,} in the table after the load, "
            f"{results['load'][0]:,} inserted (same for all); load average {min(loads):.2f}-{max(loads):.2f}"
        )
        print("median of the rounds' ratios to session 6's load, 'temp' (its best and median seconds):")
        for name in names:
            print(
                f"{name:>9}: {_median_ratio(seconds, name):.2f}x wall ({min(seconds[name]):.2f} s, "
                f"{statistics.median(seconds[name]):.2f} s, {min(seconds[name]) / args.rows * 1e6:.2f} us/row), "
                f"{_median_ratio(cpu, name):.2f}x CPU ({min(cpu[name]):.2f} s, {statistics.median(cpu[name]):.2f} s)"
            )


def _median_ratio(seconds: dict[str, list[float]], name: str) -> float:
    return statistics.median(base / other for base, other in zip(seconds["temp"], seconds[name], strict=True))


if __name__ == "__main__":
    main()
