"""A warehouse that cannot be written: locked by another process, or on a full disk.

The command says so in one line (exit 2, no traceback); the warehouse keeps what it
had, opens again, and a rerun once the fault is gone lands everything exactly once.
The full disk is a small tmpfs where mounting one is permitted (root here), else the
same run under an ``RLIMIT_FSIZE`` file-size limit (writes fail with EFBIG, not ENOSPC).
"""

from __future__ import annotations

import contextlib
import json
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from beam_ecommerce.cli import main
from tests.reliability.support import batch_args, content, counts, generate

# Holds the file open from its "locked" line until the test closes its stdin (or it is killed).
_HOLD_LOCK = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_locked_warehouse_is_one_clear_error_and_keeps_its_rows(tmp_path, capsys):
    generate(tmp_path / "in", 300, seed=1)
    warehouse = tmp_path / "wh" / "w.duckdb"
    args = batch_args(f"{tmp_path}/in/events-*", warehouse)
    assert main(["batch", *args]) == 0
    before = content(warehouse, "raw_events")
    capsys.readouterr()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(warehouse)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline() == b"locked\n"
        code = main(["batch", *args, "--warehouse_lock_timeout_seconds=1"])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2
    assert "stayed locked" in err and "for 1 s (--warehouse_lock_timeout_seconds)" in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert content(warehouse, "raw_events") == before


@contextlib.contextmanager
def _small_disk(folder: Path, size_mb: int) -> Iterator[tuple[str, Callable[[], None] | None]]:
    """A folder that holds ``size_mb`` MB: ``("tmpfs", None)``, or ``("rlimit", preexec)`` for the writing process."""
    folder.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}M", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:

        def limit_file_size() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
            resource.setrlimit(resource.RLIMIT_FSIZE, (size_mb << 20, size_mb << 20))

        yield "rlimit", limit_file_size
        return
    try:
        yield "tmpfs", None
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _grow(folder: Path, size_mb: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mb}M", str(folder)], check=True)


@pytest.mark.e2e
def test_a_full_disk_is_one_clear_error_leaves_the_warehouse_intact_and_a_rerun_lands_everything(tmp_path):
    generate(tmp_path / "small", 300, seed=1)
    generate(tmp_path / "large", 8000, seed=2)
    manifests = [json.loads((tmp_path / name / "_manifest.json").read_text()) for name in ("small", "large")]
    disk = tmp_path / "disk"
    with _small_disk(disk, 3) as (kind, preexec):
        warehouse = disk / "w.duckdb"
        command = [sys.executable, "-m", "beam_ecommerce.cli", "batch"]
        first = subprocess.run([*command, *batch_args(f"{tmp_path}/small/events-*", warehouse)], capture_output=True)
        assert first.returncode == 0, first.stderr.decode()
        before = {table: content(warehouse, table) for table in ("raw_events", "dead_letter")}

        args = batch_args(f"{tmp_path}/large/events-*", warehouse)
        full = subprocess.run([*command, *args], capture_output=True, preexec_fn=preexec)
        err = full.stderr.decode()
        assert full.returncode == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert ("No space left on device" if kind == "tmpfs" else "File too large") in err, err
        assert {table: content(warehouse, table) for table in before} == before, "the failed run changed nothing"

        if kind == "tmpfs":
            _grow(disk, 64)
        rerun = subprocess.run([*command, *args], capture_output=True)  # with room (and without the limit)
        assert rerun.returncode == 0, rerun.stderr.decode()
        found = counts(warehouse)
        assert found["raw_events"] == found["event_ids"] == sum(m["valid_events"] for m in manifests)
        assert found["dead_letter"] == sum(sum(m["invalid"].values()) for m in manifests)
