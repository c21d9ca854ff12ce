"""``DuckDBWarehouse.load`` into a table earlier runs have filled, against a named baseline: the
same load from another checkout.

    python -m benchmarks.load_into_table --baseline /path/to/main --table-rows 10000000 --rows 1000000 50

A daily batch loads into a table that holds every earlier day, and a stream loads each
bundle (about 50 rows) into it: what a load costs must follow what it loads, not what the
table already holds. For each ``--rows`` size, this stages that many rows (``duckdb_load.stage``:
5 % re-sent ids, 5 % already in the table), fills a warehouse once with ``--table-rows`` rows
of other ids, then, for ``--rounds`` rounds, loads the staged rows into a fresh copy of it
with this tree's code and with the baseline's, each in its own process (alternating which
goes first). It prints the fastest wall and CPU seconds of each, their ratio, and checks both
left the same table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks.duckdb_load import content, fresh_warehouse, stage

_TIMED_LOAD = """
import sys, time
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
started, cpu_started = time.perf_counter(), time.process_time()
DuckDBWarehouse(sys.argv[1]).load("bench", [sys.argv[2]], [])
print(time.perf_counter() - started, time.process_time() - cpu_started)
"""


def timed_load(tree: str, warehouse: str, staged: str) -> tuple[float, float]:
    """Wall and CPU seconds of one load by the code of checkout ``tree``, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    # In the tree's own folder: ``-c`` puts the working folder first on the import path, before PYTHONPATH.
    result = subprocess.run(
        [sys.executable, "-c", _TIMED_LOAD, warehouse, staged],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = result.stdout.split()[-2:]  # after DuckDB's progress bar, if it drew one
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline", required=True, help="another checkout of this project (its code is the baseline)")
    parser.add_argument("--table-rows", type=int, default=10_000_000)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 50])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"this tree": os.getcwd(), "baseline": args.baseline}
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.rows:
            staged, filled = os.path.join(folder, "staged.jsonl"), os.path.join(folder, "filled.duckdb")
            stage(staged, rows)
            fresh_warehouse(filled, staged, "512MB", args.table_rows)
            best: dict[str, tuple[float, float]] = {}
            tables = set()
            for round_number in range(args.rounds):
                order = list(trees.items())[round_number % 2 :] + list(trees.items())[: round_number % 2]
                for name, tree in order:
                    copy = os.path.join(folder, "copy.duckdb")
                    shutil.copyfile(filled, copy)
                    wall, cpu = timed_load(tree, copy, staged)
                    best[name] = min(best.get(name, (wall, cpu)), (wall, cpu))
                    tables.add(content(copy))
            assert len(tables) == 1, tables
            (this_wall, this_cpu), (base_wall, base_cpu) = best["this tree"], best["baseline"]
            print(
                f"{rows:,} rows into {args.table_rows:,}: this tree {this_wall:.3f} s wall, {this_cpu:.3f} s CPU; "
                f"baseline {base_wall:.3f} s wall, {base_cpu:.3f} s CPU; "
                f"{base_wall / this_wall:.2f}x wall, {base_cpu / this_cpu:.2f}x CPU (fastest of {args.rounds})"
            )


if __name__ == "__main__":
    main()
