"""Session fixtures of the whole suite: demo-sized runs made once and read by many tests.

Under pytest-xdist each worker runs a session fixture once. A run shared here is made by
the first worker that needs it, under a file lock in the folder all workers of one pytest
session share, and read from there by the others; a run that failed half-way is made
again. Tests only read these runs: one that writes takes a copy (``copy_warehouse``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# Its trials hold the warehouse locked for up to a minute while a stream waits: the longest file of
# the suite (about 2.5 min on one worker), half of it waiting. Started first, it overlaps the rest.
STARTED_FIRST = Path(__file__).parent / "reliability" / "test_stream_delivery.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Runs ``STARTED_FIRST``, then the other files that hold e2e tests, then the rest; each file's tests in order.

    ``make test`` hands whole files to its workers (``--dist loadfile``) in this order
    (``--no-loadscope-reorder``): the long runs start first and the short files fill in at
    the end, so the workers finish together, and a file's module fixtures are made once.
    """
    heavy_files = {item.path for item in items if item.get_closest_marker("e2e")}
    items.sort(key=lambda item: (item.path != STARTED_FIRST, item.path not in heavy_files))


# One demo run (no stream) serves every test that checks what the demo prints or leaves.
DEMO_EVENTS = 20_000
_DONE = ".built"


def _session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this pytest session shares (its own temp folder without xdist).

    Without xdist the parent would be shared with other pytest sessions on the machine.
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` that ``build`` filled, built by one worker of the session only."""
    shared = _session_folder(tmp_path_factory)
    folder = shared / f"shared-{name}"
    with open(shared / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (folder / _DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
            folder.mkdir()
            build(folder)
            (folder / _DONE).touch()
    return folder


def copy_warehouse(warehouse: Path, into: Path) -> Path:
    """A private copy of a shared DuckDB file, for a test that writes to it or opens it read-write."""
    into.mkdir(parents=True, exist_ok=True)
    wal = warehouse.with_name(warehouse.name + ".wal")  # rows not yet checkpointed into the file
    if wal.exists():
        shutil.copy2(wal, into / wal.name)
    return Path(shutil.copy2(warehouse, into / warehouse.name))


@dataclass(frozen=True)
class DemoRun:
    """What ``beam-ecommerce demo -q --no-stream --snapshot ...`` returned, printed and left in its workdir."""

    exit_code: int
    out: str
    err: str
    workdir: Path

    @property
    def warehouse(self) -> Path:
        return self.workdir / "warehouse" / "ecommerce.duckdb"

    @property
    def snapshot(self) -> Path:
        return self.workdir / "share" / "dashboard.html"


def _run_demo(folder: Path) -> None:
    """The README's demo command as a user runs it, in its own process, on a small count."""
    workdir = folder / "demo"
    argv = ["demo", "-q", "--no-stream", "--num-events", str(DEMO_EVENTS), "--workdir", str(workdir)]
    argv += ["--snapshot", str(workdir / "share" / "dashboard.html")]
    run = subprocess.run(
        [sys.executable, "-m", "beam_ecommerce.cli", *argv], capture_output=True, text=True, timeout=600
    )
    printed = {"exit_code": run.returncode, "out": run.stdout, "err": run.stderr}
    (folder / "run.json").write_text(json.dumps(printed))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo, run once per session by its command line (tests must not write to its files)."""
    folder = built_once(tmp_path_factory, "demo", _run_demo)
    printed = json.loads((folder / "run.json").read_text())
    return DemoRun(printed["exit_code"], printed["out"], printed["err"], folder / "demo")
