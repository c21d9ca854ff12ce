"""Idempotent reruns: the same input again, an overlapping input, and a batch job killed mid-run.

In every case the warehouse must end as one clean run over the same input leaves it
(compared without the columns that name the run), and every run must reconcile.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse, rows_to_jsonl
from beam_ecommerce.pipelines import batch
from tests.reliability.support import batch_args, content, counts, generate
from tests.samples import sample_event

TABLES = ("raw_events", "dead_letter")


def _run(pattern: str, warehouse: Path):
    summary = batch.run(batch_args(pattern, warehouse))
    assert summary.reconciles, summary.reconciliation_line()
    return summary


def test_rerunning_the_same_and_an_overlapping_input_adds_no_row_twice(tmp_path):
    generate(tmp_path / "in" / "a", 400, seed=1)
    generate(tmp_path / "in" / "b", 400, seed=2)
    warehouse = tmp_path / "wh" / "w.duckdb"
    first = _run(f"{tmp_path}/in/a/events-*", warehouse)
    again = _run(f"{tmp_path}/in/a/events-*", warehouse)
    overlapping = _run(f"{tmp_path}/in/*/events-*", warehouse)
    clean = _run(f"{tmp_path}/in/*/events-*", tmp_path / "clean" / "w.duckdb")

    assert (again.rows_loaded, again.duplicates) == (0, first.rows_loaded + first.duplicates)
    assert overlapping.rows_loaded == clean.rows_loaded - first.rows_loaded
    assert overlapping.duplicates == clean.duplicates + first.rows_loaded
    found = counts(warehouse)
    assert found["raw_events"] == found["event_ids"] == clean.rows_loaded
    assert found["dead_letter"] == clean.dead_letters
    for table in TABLES:
        assert content(warehouse, table) == content(tmp_path / "clean" / "w.duckdb", table), table


def _staged_rows(folder: Path, n: int) -> list[str]:
    from datetime import UTC, date, datetime

    rows = []
    for i in range(n):
        event = sample_event("page_view", f"evt-{i:08d}")
        del event["email"], event["ip_address"]
        rows.append(
            event
            | {
                "occurred_at": datetime(2026, 11, 3, 10, tzinfo=UTC),
                "event_date": date(2026, 11, 3),
                "ingested_at": datetime(2026, 11, 4, tzinfo=UTC),
                "source": f"f:{i}",
                "pipeline_version": "t",
                "run_id": "killed",
            }
        )
    path = folder / "rows.jsonl"
    path.write_bytes(rows_to_jsonl(rows) + b"\n")
    return [str(path)]


_LOAD = """
import sys
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse
warehouse = DuckDBWarehouse(sys.argv[1])
print("loading", flush=True)
warehouse.load("killed", [sys.argv[2]], [])
"""
ROWS = 100_000  # a load of about a second on these machines: room to kill it halfway


def test_a_load_killed_midway_leaves_all_or_nothing(tmp_path):
    """SIGKILL a process inside its DuckDB load: the file opens again, holding the whole load or none of it."""
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.prepare()
    (staged,) = _staged_rows(tmp_path, ROWS)
    process = subprocess.Popen([sys.executable, "-c", _LOAD, warehouse.path, staged], stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"loading\n"
    time.sleep(0.3)
    assert process.poll() is None, "the load ended before the kill: nothing was tested"
    process.send_signal(signal.SIGKILL)
    process.wait()
    found = counts(warehouse.path)
    con = duckdb.connect(warehouse.path, read_only=True)
    runs = con.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0]
    con.close()
    assert (found["raw_events"], runs) in {(0, 0), (ROWS, 1)}, (found, runs)
    report = warehouse.load("rerun", [staged], [])
    assert report.rows_loaded + report.duplicates == ROWS
    assert counts(warehouse.path)["raw_events"] == counts(warehouse.path)["event_ids"] == ROWS


def _kill_when(process: subprocess.Popen, ready, timeout: float = 120) -> str:
    """SIGKILLs ``process`` as soon as ``ready()``; says whether it was still running then."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return "finished before the kill"
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "killed"


@pytest.mark.e2e
@pytest.mark.parametrize("moment", ["while reading", "while loading"])
def test_a_batch_job_killed_mid_run_then_rerun_ends_as_one_clean_run(tmp_path, moment):
    generate(tmp_path / "in", 30_000, seed=7)
    pattern = f"{tmp_path}/in/events-*"
    warehouse = tmp_path / "wh" / "w.duckdb"
    staging = tmp_path / "wh" / "staging"

    def reading() -> bool:
        return staging.exists() and any(staging.rglob("*"))

    def loading() -> bool:
        # The staged rows have their final name once every file is written: the load starts next.
        return any(staging.glob("run_id=*/raw_events-*.jsonl"))

    command = [sys.executable, "-m", "beam_ecommerce.cli", "batch", *batch_args(pattern, warehouse)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outcome = _kill_when(process, reading if moment == "while reading" else loading)
    assert outcome == "killed"

    rerun = _run(pattern, warehouse)
    clean = _run(pattern, tmp_path / "clean" / "w.duckdb")
    assert rerun.records_in == clean.records_in
    for table in TABLES:
        assert content(warehouse, table) == content(tmp_path / "clean" / "w.duckdb", table), table
    shutil.rmtree(tmp_path / "in")
