"""The batch pipeline: event files -> the transform core -> the warehouse."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from beam_ecommerce import __version__
from beam_ecommerce.io.duckdb.sinks import DuckDBSink
from beam_ecommerce.io.files import ReadEventFiles
from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.pipelines.options import (
    DUCKDB,
    BatchOptions,
    OptionsError,
    RunOptions,
    batch_runner,
    check_input_files,
    new_run_id,
    pii_key,
    runner_name,
)
from beam_ecommerce.pipelines.reconciliation import RunSummary, summarize
from beam_ecommerce.pipelines.reports import BATCH, reports_dir, run_report, write_run_report
from beam_ecommerce.pipelines.sinks import warehouse_sink, write_batch_run
from beam_ecommerce.transforms import ProcessEvents, RunContext

__all__ = ["OptionsError", "build_pipeline", "run"]


def build_pipeline(options: PipelineOptions) -> tuple[beam.Pipeline, RunContext]:
    """The batch pipeline for ``options``, not yet run, and the run it will be."""
    pipeline, context, _ = _build(options)
    return pipeline, context


def _build(options: PipelineOptions) -> tuple[beam.Pipeline, RunContext, WarehouseSink]:
    source = options.view_as(RunOptions)
    batch = options.view_as(BatchOptions)
    if not batch.input:
        raise OptionsError("--input is required: a file pattern such as data/*.jsonl or gs://bucket/events/*.csv.gz")
    source.run_id = source.run_id or new_run_id()
    context = RunContext(source.run_id, __version__)
    sink = warehouse_sink(source, context, resumable=True)
    pipeline = beam.Pipeline(runner=batch_runner(options), options=options)
    records = pipeline | "ReadEventFiles" >> ReadEventFiles(
        batch.input, batch.input_format, source.batch_size, _split_bytes(options), batch.max_record_bytes
    )
    processed = records | "ProcessEvents" >> ProcessEvents(
        context, pii_key(source), core=source.core, typed_rows=sink.takes_typed_rows
    )
    write_batch_run(sink, processed.rows, processed.dead_letters)
    return pipeline, context, sink


def _split_bytes(options: PipelineOptions) -> int | None:
    """``--split_bytes``; ``None`` (files read whole) where one local worker reads them all.

    Cutting a file needs a pass that counts its lines up to each cut before any is read:
    0.14 s of a 1M-event run in one process, for ranges that one worker reads in turn anyway.
    """
    one_local_worker = runner_name(options) == "DirectRunner" and options.view_as(DirectOptions).direct_num_workers == 1
    return None if one_local_worker else options.view_as(BatchOptions).split_bytes


def run(argv: list[str] | None = None) -> RunSummary:
    """Builds, runs and waits for the batch pipeline (or, with ``--resume``, loads what a run
    staged); returns its reconciled summary.

    The run's JSON report goes to ``reports.reports_dir`` (next to the warehouse). A run
    whose load found the warehouse locked past ``--warehouse_lock_timeout_seconds`` keeps
    its staged files and its books for ``--resume``, and does not reconcile.
    """
    started_at = datetime.now(UTC)
    options = PipelineOptions(argv)
    if options.view_as(BatchOptions).resume:
        summary = _resume(options)
    else:
        input_bytes = check_input_files(options.view_as(BatchOptions).input)
        # Before the pipeline is built: it keeps a copy of the options.
        _use_local_cores(options, argv or [], input_bytes)
        pipeline, context, sink = _build(options)
        result = pipeline.run()
        result.wait_until_finish()
        summary = summarize(result, context.run_id)
        if summary.load_pending and isinstance(sink, DuckDBSink):
            sink.keep_books(dataclasses.asdict(summary))
    inputs = [options.view_as(BatchOptions).input]
    report = run_report(summary, BATCH, __version__, inputs, started_at)
    write_run_report(report, reports_dir(options.view_as(RunOptions)))
    return summary


def _resume(options: PipelineOptions) -> RunSummary:
    """Loads what run ``--resume`` staged; its summary, from the books it kept and this load."""
    source = options.view_as(RunOptions)
    if source.sink != DUCKDB:
        raise OptionsError("--resume loads a local run's staged files: it needs --sink=duckdb")
    source.run_id = options.view_as(BatchOptions).resume
    sink = warehouse_sink(source, RunContext(source.run_id, __version__))
    report, books = sink.resume()
    kept = RunSummary(**books | {"read_failures": tuple(books["read_failures"])})
    return dataclasses.replace(kept, rows_loaded=report.rows_loaded, duplicates=report.duplicates, load_pending=False)


# From about this much input on, two DirectRunner worker processes measured faster than one on
# 2 cores (12.7 against 13.8 s at 0.43 GB, 102 against 134 s at 4.3 GB), and slower below
# (9.6 against 8.5 s at 0.21 GB), for 1.3x the CPU and up to 1.4 GB of memory.
LOCAL_PARALLEL_BYTES = 512 << 20


def _use_local_cores(options: PipelineOptions, argv: list[str], input_bytes: int) -> None:
    """``--local_workers`` for ``input_bytes`` of input (DirectRunner only; Beam's own worker options win)."""
    if any(arg.startswith(("--direct_num_workers", "--direct_running_mode")) for arg in argv):
        return
    direct, workers = options.view_as(DirectOptions), options.view_as(BatchOptions).local_workers
    if runner_name(options) != "DirectRunner" or workers == "1":
        return
    if workers == "auto":
        workers = str(os.cpu_count() or 1) if input_bytes >= LOCAL_PARALLEL_BYTES else "1"
    if not workers.isdigit():
        raise OptionsError(f"--local_workers must be auto or a number, not {workers!r}")
    if int(workers) > 1:
        direct.direct_num_workers, direct.direct_running_mode = int(workers), "multi_processing"
