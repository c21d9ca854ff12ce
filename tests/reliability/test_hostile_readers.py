"""Writers win: readers cannot starve a run's prepare or load, and a run that still cannot
load keeps its work for ``--resume``.

The readers run in another process, as a dashboard does (DuckDB shares one lock per
process, so readers in the test's own process would not contend). Eight threads open,
query (a query that takes a moment, like a page's) and close the file back to back, so
some thread holds it at every instant: before readers stood aside for a waiting writer,
the writer waited out its whole timeout (checked by hand with the check disabled).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from beam_ecommerce.io.duckdb.sinks import rows_to_jsonl
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseLocked
from beam_ecommerce.pipelines import batch
from beam_ecommerce.pipelines.reports import read_run_report
from tests.io.test_duckdb_warehouse import _row
from tests.reliability.support import batch_args, counts
from tests.reliability.test_hostile_inputs import _events, _jsonl

pytestmark = pytest.mark.timeout(300)

_READERS = textwrap.dedent(
    """
    import os, sys, threading, time
    from beam_ecommerce.dashboard.reader import DuckDBReader, WarehouseUnavailable

    path, stop = sys.argv[1], sys.argv[2]
    reads = [0]

    def read_forever():
        reader = DuckDBReader(path, lock_wait_seconds=0.2)
        while not os.path.exists(stop):
            try:
                with reader.session() as session:
                    session.rows("SELECT count(*) FROM range(20000000)")  # a page of queries
                    reads[0] += 1
            except WarehouseUnavailable:
                time.sleep(0.01)

    threads = [threading.Thread(target=read_forever) for _ in range(8)]
    for thread in threads:
        thread.start()
    print("reading", flush=True)
    for thread in threads:
        thread.join()
    print(reads[0], flush=True)
    """
)


@pytest.fixture
def busy_readers(tmp_path: Path):
    """A process of four threads reading the warehouse without pause, until the test ends."""
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.prepare()
    stop = tmp_path / "stop"
    process = subprocess.Popen(
        [sys.executable, "-c", _READERS, warehouse.path, str(stop)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "reading"
    yield warehouse
    stop.touch()
    reads = int(process.communicate(timeout=60)[0].strip())
    assert reads > 0, "the readers never read: the test proved nothing"


def _staged(tmp_path: Path, count: int) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_bytes(rows_to_jsonl([_row(f"evt-{i:06d}", f"f:{i}") for i in range(count)]))
    return str(path)


def test_prepare_and_load_get_the_file_from_readers_that_never_pause(tmp_path, busy_readers):
    writer = DuckDBWarehouse(busy_readers.path, lock_timeout_seconds=60)
    writer.prepare()
    report = writer.load("r1", [_staged(tmp_path, 50)], [])
    assert (report.rows_offered, report.rows_loaded) == (50, 50)


_HOLDER = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); input()"


@contextlib.contextmanager
def _held(path: str) -> Iterator[None]:
    """Another process holds the warehouse open (read-write) while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate("\n", timeout=30)


def test_a_writer_that_cannot_get_the_file_in_time_says_so_in_one_line(tmp_path):
    path = str(tmp_path / "w.duckdb")
    DuckDBWarehouse(path).prepare()
    with (
        _held(path),
        pytest.raises(WarehouseLocked, match=r"stayed locked .* for 0.3 s \(--warehouse_lock_timeout_seconds\)"),
    ):
        DuckDBWarehouse(path, lock_timeout_seconds=0.3).load("r1", [_staged(tmp_path, 3)], [])


def test_a_batch_that_cannot_load_keeps_its_work_and_resume_loads_it_without_reading_the_input(tmp_path, monkeypatch):
    """The file is locked by a real second process from just after the run's ``prepare()``
    (patched to start it) until the run ends. The input repeats one event, which the resumed
    load drops."""
    (tmp_path / "in").mkdir()
    events = _jsonl(_events(30))
    data = events + events.splitlines(keepends=True)[0] + b"{broken\n[]\n"
    (tmp_path / "in" / "e.jsonl").write_bytes(data)
    records = data.count(b"\n")
    warehouse = tmp_path / "wh" / "w.duckdb"
    args = batch_args(str(tmp_path / "in" / "*.jsonl"), warehouse, "--warehouse_lock_timeout_seconds=0.5")
    holding = contextlib.ExitStack()
    prepare = DuckDBWarehouse.prepare

    def prepare_then_lose_the_race(self):
        prepare(self)
        holding.enter_context(_held(self.path))

    monkeypatch.setattr(DuckDBWarehouse, "prepare", prepare_then_lose_the_race)
    with holding:
        deferred = batch.run(args)
    monkeypatch.undo()

    assert deferred.load_pending and not deferred.reconciles
    assert (deferred.records_in, deferred.rows_loaded, deferred.dead_letters) == (records, 0, 2)
    # Staged, not lost: the books say so, and the resumed run's own reconciliation checks it.
    assert (deferred.awaiting_load, deferred.lost) == (records - 2, 0)
    line = deferred.reconciliation_line()
    assert line.startswith("reconciliation PENDING") and f"+ {records - 2} awaiting load" in line, line
    assert "lost" not in line and f"--resume {deferred.run_id}" in line, line
    report = read_run_report(str(tmp_path / "wh" / "runs" / f"{deferred.run_id}.json"))
    assert (report["awaiting_load"], report["lost"], report["reconciles"]) == (records - 2, 0, False)
    assert counts(warehouse) == {"raw_events": 0, "event_ids": 0, "dead_letter": 0}

    (tmp_path / "in" / "e.jsonl").unlink()  # the resumed run cannot have read it again
    staged = tmp_path / "wh" / "staging" / f"run_id={deferred.run_id}"
    resumed = batch.run([*args, f"--resume={deferred.run_id}"])

    assert resumed.reconciles, resumed.reconciliation_line()
    assert (resumed.records_in, resumed.rows_loaded, resumed.duplicates, resumed.dead_letters) == (records, 30, 1, 2)
    assert (resumed.awaiting_load, resumed.lost) == (0, 0)
    assert counts(warehouse) == {"raw_events": 30, "event_ids": 30, "dead_letter": 2}
    assert not staged.exists()
