"""Writers win: dashboard readers that never pause cannot starve a run's prepare or load.

The readers run in another process, as a dashboard does (DuckDB shares one lock per
process, so readers in the test's own process would not contend). Eight threads open,
query (a query that takes a moment, like a page's) and close the file back to back, so
some thread holds it at every instant: before readers stood aside for a waiting writer,
the writer waited out its whole timeout (checked by hand with the check disabled).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse, WarehouseLocked, rows_to_jsonl
from tests.io.test_duckdb_warehouse import _row

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
    path.write_bytes(rows_to_jsonl([_row(f"evt-{i:06d}", f"f:{i}") for i in range(count)]) + b"\n")
    return str(path)


def test_prepare_and_load_get_the_file_from_readers_that_never_pause(tmp_path, busy_readers):
    writer = DuckDBWarehouse(busy_readers.path, lock_timeout_seconds=60)
    writer.prepare()
    report = writer.load("r1", [_staged(tmp_path, 50)], [])
    assert (report.rows_offered, report.rows_loaded) == (50, 50)


_HOLDER = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); input()"


def test_a_writer_that_cannot_get_the_file_in_time_says_so_in_one_line(tmp_path):
    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(str(path)).prepare()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLocked, match=r"stayed locked .* for 0.3 s \(--warehouse_lock_timeout_seconds\)"):
            DuckDBWarehouse(str(path), lock_timeout_seconds=0.3).load("r1", [_staged(tmp_path, 3)], [])
    finally:
        holder.communicate("\n", timeout=30)
