"""The end-of-run reconciliation: records in = rows loaded + dead letters + duplicates absorbed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.runner import PipelineResult

from beam_ecommerce import metrics


@dataclass(frozen=True)
class RunSummary:
    """What a run did, read back from its Beam metrics."""

    run_id: str
    records_in: int
    rows_loaded: int
    dead_letters: int
    duplicates: int
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.records_in == self.rows_loaded + self.dead_letters + self.duplicates

    def reconciliation_line(self) -> str:
        verdict = "OK" if self.reconciles else "MISMATCH"
        return (
            f"reconciliation {verdict}: {self.records_in} records in = {self.rows_loaded} loaded"
            f" + {self.dead_letters} dead letters + {self.duplicates} duplicates absorbed"
        )


def counter_totals(result: PipelineResult) -> Counter:
    """Every counter of the project's namespace, by name, summed over steps."""
    totals: Counter = Counter()
    query = result.metrics().query(MetricsFilter().with_namespace(metrics.NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] += value or 0
    return totals


def summarize(result: PipelineResult, run_id: str) -> RunSummary:
    """The run's summary from the finished pipeline's counters."""
    totals = counter_totals(result)
    prefix = metrics.DEAD_LETTERS + "."
    return RunSummary(
        run_id=run_id,
        records_in=totals[metrics.RECORDS_IN],
        rows_loaded=totals[metrics.ROWS_LOADED],
        dead_letters=totals[metrics.DEAD_LETTERS],
        duplicates=totals[metrics.DUPLICATES],
        dead_letters_by_reason={
            name[len(prefix) :]: value for name, value in sorted(totals.items()) if name.startswith(prefix) and value
        },
    )
