"""Per-run JSON reports: what a run read, loaded, dead-lettered (by reason), absorbed and found late.

Every run writes ``<warehouse dir>/runs/<run_id>.json`` (for BigQuery runs, under the
dead-letter prefix: ``<dead_letter_dir>/runs/``), so that the demo can print it and a
dashboard can list runs without Beam. A file is replaced in one step, never seen
half-written. ``records_in`` is the source's own count (the file reader's for a batch);
``lost`` is what the reconciliation cannot account for: always 0 in a healthy run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apache_beam.io.filesystems import FileSystems

from beam_ecommerce.pipelines.options import BIGQUERY, RunOptions
from beam_ecommerce.pipelines.reconciliation import RunSummary
from beam_ecommerce.transforms.lateness import LATE

RUNS_DIR = "runs"
BATCH, STREAM, REPLAY = "batch", "stream", "replay"


@dataclass(frozen=True)
class RunReport:
    """One run's report; ``to_json`` is the file's content."""

    run_id: str
    kind: str
    pipeline_version: str
    inputs: list[str]
    started_at: str
    finished_at: str
    records_in: int
    rows_loaded: int
    dead_letters: int
    duplicates: int
    late: int
    lost: int
    reconciles: bool
    awaiting_load: int = 0
    """Records whose load the warehouse's lock deferred: a ``--resume`` run reports where they went."""
    read_failures: list[str] = field(default_factory=list)
    """Where the input could not be read to its end (``<file>@<byte offset>``): such a run fails."""
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    """What only one kind of run has (a replay's selection, for example)."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"


def run_report(
    summary: RunSummary,
    kind: str,
    pipeline_version: str,
    inputs: list[str],
    started_at: datetime,
    details: dict[str, Any] | None = None,
) -> RunReport:
    """The report of a finished run from its reconciled summary."""
    by_reason = dict(summary.dead_letters_by_reason)
    return RunReport(
        run_id=summary.run_id,
        kind=kind,
        pipeline_version=pipeline_version,
        inputs=inputs,
        started_at=started_at.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        records_in=summary.records_in,
        rows_loaded=summary.rows_loaded,
        dead_letters=summary.dead_letters,
        duplicates=summary.duplicates,
        late=sum(count for reason, count in by_reason.items() if reason.startswith(f"{LATE}.")),
        lost=summary.lost,
        reconciles=summary.reconciles,
        awaiting_load=summary.awaiting_load,
        read_failures=list(summary.read_failures),
        dead_letters_by_reason=by_reason,
        details=details or {},
    )


def reports_dir(options: RunOptions) -> str:
    """Where the runs of a pipeline with ``options`` keep their reports."""
    if options.sink == BIGQUERY:
        return FileSystems.join(options.dead_letter_dir, RUNS_DIR)
    return os.path.join(os.path.dirname(os.path.abspath(options.duckdb_path)), RUNS_DIR)


def report_path(directory: str, run_id: str) -> str:
    return FileSystems.join(directory, f"{run_id}.json")


def write_run_report(report: RunReport, directory: str) -> str:
    """Writes ``report`` as ``<directory>/<run_id>.json``; returns the path."""
    path = report_path(directory, report.run_id)
    data = report.to_json().encode("utf-8")
    if FileSystems.get_scheme(directory):
        # Object stores (gs://) publish an object only when it is closed: no reader sees half of it.
        with FileSystems.create(path, mime_type="application/json") as out:
            out.write(data)
        return path
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-", suffix=".json", delete=False) as out:
        out.write(data)
    os.replace(out.name, path)
    return path


def read_run_report(path: str) -> dict[str, Any]:
    """A report written by ``write_run_report``, as the JSON object it is."""
    with FileSystems.open(path) as source:
        return json.loads(source.read())
