"""The replay pipeline: dead letters -> (a fix function) -> the transform core -> the warehouse.

Replays the dead letters a filter picks through the same ``ProcessEvents`` as the batch
pipeline, loads what passes now with the batch pipeline's sink, and records every attempt
and which dead letters landed, so that a second replay does not offer them again (and the
load's ``event_id`` dedupe absorbs them if it did). What still fails keeps the
``dead_letter_id`` it had: the warehouse holds one dead letter per source record, however
many replays failed it.

- ``--sink=duckdb`` (the default): dead-letter files or the local ``dead_letter`` table
  into the local warehouse; the books are its ``replayed`` and ``replay_attempts`` tables.
- ``--sink=bigquery``: dead-letter files (a folder, ``gs://`` prefix or pattern) through
  ``BigQuerySink``'s batch path: load jobs into per-run staging tables and one MERGE on
  ``event_id`` into ``raw_events`` and on ``dead_letter_id`` into ``dead_letter``, so a
  rerun adds nothing. The books are one JSONL file of attempts per replay beside its
  dead-letter files under ``--dead_letter_dir`` (``FileBooks``). Any runner; off this
  machine with the batch pipeline's launch checks (``gs://`` dead letters and dead-letter
  dir, a PII key or secret). Beam's BigQuery IO cannot be pointed at a local endpoint,
  so this path is proven by its graph, its MERGE run on DuckDB and its books run on
  local files, never by a live load here.

A dry run runs the same steps, the fix function included, writes nothing and says what would pass.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from beam_ecommerce import __version__, metrics
from beam_ecommerce.io.dead_letter_reader import TABLE, UNREADABLE, ReadDeadLetters, dead_letter_files
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.io.replay_books import ATTEMPTS, MARKED, FileBooks, WarehouseBooks
from beam_ecommerce.pipelines.options import (
    BIGQUERY,
    OptionsError,
    RunOptions,
    batch_runner,
    dead_letter_dir,
    new_run_id,
    pii_key,
    runner_name,
    runs_locally,
)
from beam_ecommerce.pipelines.reconciliation import RunSummary, counter_totals, summarize
from beam_ecommerce.pipelines.reports import REPLAY, reports_dir, run_report, write_run_report
from beam_ecommerce.pipelines.sinks import duckdb_warehouse, warehouse_sink, write_batch_run
from beam_ecommerce.transforms import DEAD_LETTER_TAG, BatchRecords, ProcessEvents, RunContext
from beam_ecommerce.transforms.replay import (
    ALREADY_REPLAYED,
    SELECTED,
    ApplyFix,
    DeadLetterFilter,
    RecordAttempts,
    ReplayBooks,
    SelectForReplay,
    keep_identity,
    load_fix,
    replay_record,
)

__all__ = ["OptionsError", "ReplayOptions", "ReplayOutcome", "build_pipeline", "run"]

WOULD_PASS = "replay_would_pass"


class ReplayOptions(PipelineOptions):
    """Options of the replay pipeline: which dead letters, and how to fix them."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--dead_letters",
            default=None,
            help=f"Dead letters to replay: a folder or gs:// prefix of dead-letter files, a file pattern, or "
            f"'{TABLE}' for the dead_letter table of --duckdb_path (sink=duckdb). Off this machine: gs:// only.",
        )
        parser.add_argument("--stage", default=None, help="Only these stages, comma-separated (e.g. validate,late).")
        parser.add_argument("--reason", default=None, help="Only these error types, comma-separated.")
        parser.add_argument("--since", default=None, help="Only dead letters that failed at or after this ISO time.")
        parser.add_argument("--until", default=None, help="Only dead letters that failed before this ISO time (UTC).")
        parser.add_argument(
            "--fix",
            default=None,
            help="module:function applied to each payload first (bytes -> bytes or str). This RUNS CODE: the "
            "module is imported and the function called on every selected payload, with --dry-run too. It must "
            "be a def in a module of your own (the working directory is importable); functions of Python's "
            "standard library, of installed packages or compiled ones (os:system, builtins:eval) are refused.",
        )


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay did: the reconciled summary (records in = dead letters selected) and the selection."""

    summary: RunSummary
    already_replayed: int
    unreadable: int
    marked: int
    attempts: int
    dry_run: bool

    @property
    def reconciles(self) -> bool:
        return self.summary.reconciles

    def lines(self) -> list[str]:
        summary = self.summary
        head = "dry run, nothing written: " if self.dry_run else ""
        lines = [
            f"replay {summary.run_id}: {head}{summary.records_in} dead letters selected"
            f" ({self.already_replayed} left out as replayed before, {self.unreadable} unreadable lines)"
        ]
        lines += [f"  still failing {reason}: {count}" for reason, count in summary.dead_letters_by_reason.items()]
        if self.dry_run:
            lines.append(f"would pass now: {summary.rows_loaded}; would still fail: {summary.dead_letters}")
        else:
            lines.append(f"marked replayed: {self.marked}; attempts recorded: {self.attempts}")
            lines.append(summary.reconciliation_line())
        return lines


def _time(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise OptionsError(f"--{name} must be an ISO 8601 time such as 2026-11-03T10:00:00Z, not {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _names(text: str | None) -> frozenset[str]:
    return frozenset(name.strip() for name in (text or "").split(",") if name.strip())


def _selection(replay: ReplayOptions) -> DeadLetterFilter:
    return DeadLetterFilter(
        _names(replay.stage), _names(replay.reason), _time("since", replay.since), _time("until", replay.until)
    )


def _check_location(location: str, source: RunOptions) -> None:
    """Whether the run can read ``location`` where it runs: the local table locally, files off it on ``gs://``."""
    if location == TABLE and source.sink == BIGQUERY:
        raise OptionsError(
            f"--dead_letters={TABLE} reads the local DuckDB dead_letter table; with --sink=bigquery give "
            "the dead-letter files (a folder, gs:// prefix or pattern)"
        )
    if not (runs_locally(source) or location.startswith("gs://")):
        raise OptionsError(
            f"--runner={runner_name(source)} reads --dead_letters on its workers: give a gs:// prefix or "
            f"pattern, not {location!r}"
        )


def _check_source(location: str, source: RunOptions) -> None:
    """Whether there is anything at ``location`` to replay."""
    if location == TABLE:
        if not os.path.exists(source.duckdb_path):
            raise OptionsError(f"no warehouse at {source.duckdb_path} to read the dead_letter table from")
        return
    pattern = dead_letter_files(location)
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # noqa: BLE001 - any failure to list them is the user's to fix
        raise OptionsError(f"cannot read dead letters {pattern!r}: {error}") from None
    if not matched:
        raise OptionsError(f"no dead-letter files match {pattern!r}")


def _books(source: RunOptions, warehouse: DuckDBWarehouse) -> ReplayBooks:
    """The local warehouse's tables, or for BigQuery attempt files under the dead-letter dir (checked now)."""
    if source.sink == BIGQUERY:
        return FileBooks(dead_letter_dir(source), source.run_id)
    return WarehouseBooks(warehouse, source.run_id)


def _count_would_pass(rows: list) -> tuple[()]:
    metrics.counter(WOULD_PASS).inc(len(rows))
    return ()


def build_pipeline(options: PipelineOptions, dry_run: bool = False) -> tuple[beam.Pipeline, RunContext]:
    """The replay pipeline for ``options``, not yet run, and the run it will be (writing nothing if ``dry_run``)."""
    source = options.view_as(RunOptions)
    replay = options.view_as(ReplayOptions)
    if not replay.dead_letters:
        raise OptionsError(f"--dead_letters is required: a folder, gs:// prefix or pattern of files, or '{TABLE}'")
    selection = _selection(replay)
    if replay.fix:
        try:
            load_fix(replay.fix)
        except ValueError as error:
            raise OptionsError(f"--fix: {error}") from None
    # The launch checks that need no storage first, then what is there to read. Off this
    # machine a PII key is one of them; locally the development key is announced only once
    # the run can go ahead.
    _check_location(replay.dead_letters, source)
    key = None if runs_locally(source) else pii_key(source)
    source.run_id = source.run_id or new_run_id()
    context = RunContext(source.run_id, __version__)
    warehouse = duckdb_warehouse(source)
    books = _books(source, warehouse)
    _check_source(replay.dead_letters, source)
    key = key or pii_key(source)
    # Checked (and a local warehouse created) before the graph; a dry run writes nothing.
    sink = None if dry_run else warehouse_sink(source, context)

    pipeline = beam.Pipeline(runner=batch_runner(options), options=options)
    selected = (
        pipeline
        | "ReadDeadLetters" >> ReadDeadLetters(replay.dead_letters, warehouse)
        | "Select" >> SelectForReplay(selection, books)
    )
    batches = selected | "ToRawRecords" >> beam.Map(replay_record) | "Batch" >> BatchRecords(source.batch_size)
    fix_dead_letters = None
    if replay.fix:
        fixed = batches | "Fix" >> beam.ParDo(ApplyFix(context, replay.fix)).with_outputs(
            DEAD_LETTER_TAG, main="records"
        )
        batches, fix_dead_letters = fixed.records, fixed[DEAD_LETTER_TAG]
    processed = batches | "ProcessEvents" >> ProcessEvents(context, key, core=source.core)
    if sink is None:
        processed.rows | "CountWouldPass" >> beam.FlatMap(_count_would_pass)
        return pipeline, context
    dead_letters = processed.dead_letters
    if fix_dead_letters is not None:
        dead_letters = (fix_dead_letters, dead_letters) | "AllDeadLetters" >> beam.Flatten()
    dead_letters = dead_letters | "KeepIdentity" >> beam.Map(keep_identity)
    loads = write_batch_run(sink, processed.rows, dead_letters)
    processed.rows | "RecordAttempts" >> RecordAttempts(books, selected, dead_letters, loads)
    return pipeline, context


def run(argv: list[str] | None = None, dry_run: bool = False) -> ReplayOutcome:
    """Builds, runs and waits for the replay; returns what it did (and writes its run report unless a dry run)."""
    started_at = datetime.now(UTC)
    options = PipelineOptions(argv)
    pipeline, context = build_pipeline(options, dry_run)
    result = pipeline.run()
    result.wait_until_finish()
    totals = counter_totals(result)
    replay = options.view_as(ReplayOptions)
    summary = dataclasses.replace(summarize(result, context.run_id), records_in=totals[SELECTED])
    if dry_run:
        summary = dataclasses.replace(summary, rows_loaded=totals[WOULD_PASS])
    outcome = ReplayOutcome(
        summary, totals[ALREADY_REPLAYED], totals[UNREADABLE], totals[MARKED], totals[ATTEMPTS], dry_run
    )
    if not dry_run:
        details = {
            "filter": {"stage": replay.stage, "reason": replay.reason, "since": replay.since, "until": replay.until},
            "fix": replay.fix,
            "already_replayed": outcome.already_replayed,
            "unreadable_lines": outcome.unreadable,
            "marked_replayed": outcome.marked,
            "attempts_recorded": outcome.attempts,
        }
        report = run_report(summary, REPLAY, context.pipeline_version, [replay.dead_letters], started_at, details)
        write_run_report(report, reports_dir(options.view_as(RunOptions)))
    return outcome
