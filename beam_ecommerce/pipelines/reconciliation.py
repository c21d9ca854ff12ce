"""The end-of-run reconciliation: records in = rows loaded + dead letters + duplicates absorbed.

``records in`` is the source's count (what the file reader offered), never the sink's: a
record lost between the two shows as ``lost``, and fails the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult

from beam_ecommerce import metrics


@dataclass(frozen=True)
class RunSummary:
    """What a run did, read back from its Beam metrics.

    ``read_failures`` names each place (``<file>@<byte offset>``) the source could not be
    read to its end: what lay beyond it was never counted, so such a run does not reconcile.
    """

    run_id: str
    records_in: int
    rows_loaded: int
    dead_letters: int
    duplicates: int
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    read_failures: tuple[str, ...] = ()
    load_pending: bool = False
    """The warehouse stayed locked: the run's staged work waits for ``--resume``."""

    @property
    def _unaccounted(self) -> int:
        return self.records_in - (self.rows_loaded + self.dead_letters + self.duplicates)

    @property
    def lost(self) -> int:
        """Records the source offered that neither a row, a dead letter nor a duplicate accounts for.

        While a load waits for ``--resume`` its records are ``awaiting_load``, not lost: the
        resumed run's reconciliation, from the same source count, tells whether any is.
        """
        return 0 if self.load_pending else self._unaccounted

    @property
    def awaiting_load(self) -> int:
        """Records staged for a load the warehouse's lock deferred: rows or duplicates once resumed."""
        return self._unaccounted if self.load_pending else 0

    @property
    def reconciles(self) -> bool:
        return self.lost == 0 and not self.read_failures and not self.load_pending

    def reconciliation_line(self) -> str:
        pending = self.load_pending and not self.read_failures
        verdict = "OK" if self.reconciles else "PENDING" if pending else "MISMATCH"
        line = (
            f"reconciliation {verdict}: {self.records_in} records in = {self.rows_loaded} loaded"
            f" + {self.dead_letters} dead letters + {self.duplicates} duplicates absorbed"
        )
        if self.lost:
            line += f"; {self.lost} lost"
        if self.load_pending:  # then nothing counts as lost
            line += (
                f" + {self.awaiting_load} awaiting load; the warehouse stayed locked: the staged work is kept,"
                f" load it with the same command and --resume {self.run_id}"
            )
        if self.read_failures:
            line += f"; input not read to its end: {', '.join(self.read_failures)}"
        return line


def counter_totals(result: PipelineResult) -> Counter:
    """Every counter of the project's namespace, by name, summed over steps."""
    totals: Counter = Counter()
    query = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] += value or 0
    return totals


def summarize(result: PipelineResult, run_id: str) -> RunSummary:
    """The run's summary from the finished pipeline's counters; ``records in`` is the source's count."""
    totals = counter_totals(result)
    prefix = metrics.DEAD_LETTERS + "."
    failure_prefix = metrics.READ_FAILURES + "."
    return RunSummary(
        run_id=run_id,
        records_in=totals[metrics.SOURCE_RECORDS],
        rows_loaded=totals[metrics.ROWS_LOADED],
        dead_letters=totals[metrics.DEAD_LETTERS],
        duplicates=totals[metrics.DUPLICATES],
        dead_letters_by_reason={
            name[len(prefix) :]: value for name, value in sorted(totals.items()) if name.startswith(prefix) and value
        },
        read_failures=tuple(
            name[len(failure_prefix) :] for name, value in sorted(totals.items()) if name.startswith(failure_prefix)
        ),
        load_pending=totals[metrics.LOAD_DEFERRED] > 0,
    )
