"""Waits on a condition for the streaming tests, in place of sleeps that mean "midway" or "done".

A wait polls until its state is reached; its deadline is generous and only ends a real
hang, so a slow machine makes a test slower, never failing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse

POLL_SECONDS = 0.2


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 180, check: Callable[[], None] = lambda: None
) -> None:
    """Polls ``condition`` until it holds; ``check`` raises if waiting longer is pointless (a process died)."""
    deadline = time.monotonic() + timeout
    while not condition():
        check()
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting until {what}"
        time.sleep(POLL_SECONDS)


def wait_until_accounted(warehouse: DuckDBWarehouse, run_id: str, published: int, timeout: float = 180) -> int:
    """Waits until the run's books (rows + dead letters + duplicates absorbed) reach ``published``; returns them.

    Once every published message is in the books nothing more can arrive: the caller
    asserts the exact count, so a message counted twice fails it.
    """
    wait_until(lambda: warehouse.accounted_so_far(run_id) >= published, f"{run_id} accounted for {published}", timeout)
    return warehouse.run_totals(run_id).accounted
