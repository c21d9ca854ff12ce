"""Idempotent reruns: the same input again, an overlapping input, and a batch job killed mid-run.

In every case the warehouse must end as one clean run over the same input leaves it
(compared without the columns that name the run), and every run must reconcile.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from beam_ecommerce.io.duckdb.sinks import rows_to_jsonl
from beam_ecommerce.io.duckdb.warehouse import FAULT_VARIABLE, LOAD_INSIDE_TRANSACTION, DuckDBWarehouse
from beam_ecommerce.pipelines import batch
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.dead_letter import RunContext, dead_letter_row
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


def _staged_rows(path: Path, event_ids: range) -> str:
    """Staged rows (one per event id, from line ``i`` of one file) for ``DuckDBWarehouse.load``."""
    from datetime import UTC, date, datetime

    rows = []
    for i in event_ids:
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
                "run_id": path.stem,
            }
        )
    path.write_bytes(rows_to_jsonl(rows))
    return str(path)


def _staged_dead_letters(path: Path, run_id: str, lines: range) -> str:
    """Staged dead letters of run ``run_id`` (unparsable records from lines ``lines``)."""
    context = RunContext(run_id, "t")
    path.write_bytes(
        b"".join(
            orjson.dumps(dead_letter_row(RawRecord(b"{", f"bad:{i}"), context, "parse", "invalid_json", "x")) + b"\n"
            for i in lines
        )
    )
    return str(path)


def _run_rows(warehouse: Path | str, run_id: str) -> dict[str, int]:
    """What a run left in each table of the warehouse."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            table: con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]
            for table in ("raw_events", "dead_letter", "pipeline_runs")
        }
    finally:
        con.close()


_LOAD = """
import sys
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
DuckDBWarehouse(sys.argv[1]).load("killed", [sys.argv[2]], [sys.argv[3]])
"""
KILL_INSIDE_THE_LOAD = os.environ | {FAULT_VARIABLE: LOAD_INSIDE_TRANSACTION}


def test_a_load_killed_inside_its_transaction_leaves_nothing_and_a_rerun_loads_everything_once(tmp_path):
    """The load's fault point SIGKILLs its process after every insert of the run, before COMMIT.

    The file then opens again holding only the earlier run; loading the same files again
    adds every row once, the earlier run's rows counted as duplicates.
    """
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    earlier = warehouse.load("earlier", [_staged_rows(tmp_path / "earlier.jsonl", range(0, 300))], [])
    rows = _staged_rows(tmp_path / "killed.jsonl", range(0, 2_000))
    dead_letters = _staged_dead_letters(tmp_path / "killed-dead-letters.jsonl", "killed", range(50))

    killed = subprocess.run(
        [sys.executable, "-c", _LOAD, warehouse.path, rows, dead_letters], env=KILL_INSIDE_THE_LOAD, capture_output=True
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert _run_rows(warehouse.path, "killed") == {"raw_events": 0, "dead_letter": 0, "pipeline_runs": 0}
    assert _run_rows(warehouse.path, "earlier") == {"raw_events": 300, "dead_letter": 0, "pipeline_runs": 1}
    rerun = warehouse.load("killed", [rows], [dead_letters])
    assert (rerun.rows_offered, rerun.rows_loaded, rerun.duplicates) == (2_000, 1_700, earlier.rows_loaded)
    assert (rerun.dead_letters, rerun.dead_letters_loaded) == (50, 50)
    found = counts(warehouse.path)
    assert found["raw_events"] == found["event_ids"] == 2_000
    assert found["dead_letter"] == 50


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
@pytest.mark.parametrize("moment", ["while reading", "inside the load's transaction"])
def test_a_batch_job_killed_mid_run_then_rerun_ends_as_one_clean_run(tmp_path, moment):
    generate(tmp_path / "in", 30_000, seed=7)
    pattern = f"{tmp_path}/in/events-*"
    warehouse = tmp_path / "wh" / "w.duckdb"
    staging = tmp_path / "wh" / "staging"

    def reading() -> bool:
        return staging.exists() and any(staging.rglob("*"))

    command = [sys.executable, "-m", "beam_ecommerce.cli", "batch", *batch_args(pattern, warehouse)]
    if moment == "while reading":
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert _kill_when(process, reading) == "killed"
    else:
        killed = subprocess.run(command, env=KILL_INSIDE_THE_LOAD, capture_output=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-3000:]
        assert counts(warehouse)["raw_events"] == counts(warehouse)["dead_letter"] == 0, "the killed load left rows"

    rerun = _run(pattern, warehouse)
    clean = _run(pattern, tmp_path / "clean" / "w.duckdb")
    assert rerun.records_in == clean.records_in
    for table in TABLES:
        assert content(warehouse, table) == content(tmp_path / "clean" / "w.duckdb", table), table
    shutil.rmtree(tmp_path / "in")
