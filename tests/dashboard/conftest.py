"""Fixtures of the dashboard tests: hand-made warehouses and a process that holds one's lock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.dashboard.warehouse_fixture import make_warehouse


@pytest.fixture
def warehouse(tmp_path) -> str:
    """A warehouse with raw rows and every mart."""
    return make_warehouse(str(tmp_path / "ecommerce.duckdb"))


@contextmanager
def writer_holding(path: str) -> Iterator[None]:
    """Another process with the file open read-write, as the stream or dbt has it while loading."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
