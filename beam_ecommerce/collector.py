"""The process's cyclic garbage collector, tuned for a data pipeline's many short-lived objects."""

from __future__ import annotations

import atexit
import functools
import gc

# The core makes a few container objects per record and frees nearly all of them by reference
# counting, so the cyclic collector finds little; at CPython's default (700, 10, 10) it ran
# every few hundred records and fully over the runner's own objects: about 15 % of a
# 1M-event batch run (benchmarks/README.md, session 6).
COLLECTOR_THRESHOLDS = (50_000, 20, 100)


def raise_collector_thresholds() -> None:
    """Raises this process's cyclic-collector thresholds to at least ``COLLECTOR_THRESHOLDS`` (never lowers one)."""
    gc.set_threshold(*map(max, gc.get_threshold(), COLLECTOR_THRESHOLDS))


@functools.cache
def skip_collection_at_exit() -> None:
    """Has this process freeze the collector's objects when it exits, so its exit does not collect them all.

    Python collects every object once more as it exits; a process that ran the core
    (a DirectRunner worker, or the CLI's own process) spent 0.5-0.9 s of a 13 s 1M-event batch
    in it (benchmarks/README.md, session 7), and the memory goes back to the system at exit
    anyway. Registered once per process; nothing changes while the process runs.
    """
    atexit.register(gc.freeze)
