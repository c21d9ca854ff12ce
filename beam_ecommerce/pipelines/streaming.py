"""The streaming pipeline: Pub/Sub -> the transform core -> the warehouse, continuously."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

from beam_ecommerce import __version__
from beam_ecommerce.io.duckdb.warehouse import LoadReport, WarehouseError
from beam_ecommerce.io.pubsub import PublishDeadLetters, ReadEventMessages
from beam_ecommerce.io.pubsub_local import Deliveries, deliveries, forget_deliveries
from beam_ecommerce.pipelines.options import (
    BIGQUERY,
    OptionsError,
    RunOptions,
    new_run_id,
    pii_key,
    runs_locally,
)
from beam_ecommerce.pipelines.reconciliation import RunSummary
from beam_ecommerce.pipelines.reports import STREAM, reports_dir, run_report, write_run_report
from beam_ecommerce.pipelines.sinks import duckdb_warehouse, live_metrics_sink, warehouse_sink
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from beam_ecommerce.transforms.live_metrics import LiveMetrics
from beam_ecommerce.transforms.stream_dedupe import DeduplicateStream

__all__ = ["OptionsError", "StreamingOptions", "build_pipeline", "run", "write_stream_report"]

_LOGGER = logging.getLogger(__name__)

# A stopped local stream drains: it finishes on its own, or is cancelled at this limit.
_DRAIN_LIMIT_SECONDS = 10.0
# Without a ledger to watch (BigQuery), a stopped local stream gets this long to finish its bundles.
_QUIET_SECONDS = 1.5
# How often a running local stream checks whether it must stop.
_STOP_CHECK_SECONDS = 0.25


class StreamingOptions(PipelineOptions):
    """Options of the streaming pipeline: where messages come from, lateness and dedupe."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument("--input_subscription", default=None, help="projects/P/subscriptions/S to read.")
        parser.add_argument(
            "--input_topic", default=None, help="projects/P/topics/T to read (a temporary subscription)."
        )
        parser.add_argument(
            "--allowed_lateness_seconds",
            type=int,
            default=3600,
            help="Events arriving later than this after they occurred go to the dead letter (stage late).",
        )
        parser.add_argument(
            "--dedupe_horizon_seconds",
            type=int,
            default=7200,
            help="How long an event_id is remembered for dedupe (at least the allowed lateness).",
        )
        parser.add_argument(
            "--dead_letter_topic",
            default=None,
            help="projects/P/topics/T that also receives every dead letter (original bytes, reason as attributes).",
        )
        parser.add_argument(
            "--dedupe_shards",
            type=int,
            default=1,
            help="Keys each minute of event time is deduplicated on: 1 suits the local runner; "
            "on Dataflow, more keys spread the dedupe over more workers (e.g. 64).",
        )


def _acknowledges_after_commit(options: PipelineOptions) -> bool:
    """Whether the stream reads with ``ReadAfterCommit``: on the local runner, into the DuckDB file.

    Its sink then acknowledges each message once committed. On Dataflow, Beam's own
    Pub/Sub source acknowledges after the bundle's durable commit.
    """
    return runs_locally(options) and options.view_as(RunOptions).sink != BIGQUERY


def build_pipeline(options: PipelineOptions) -> tuple[beam.Pipeline, RunContext]:
    """The streaming pipeline for ``options``, not yet run, and the run it will be."""
    source = options.view_as(RunOptions)
    stream = options.view_as(StreamingOptions)
    if bool(stream.input_subscription) == bool(stream.input_topic):
        raise OptionsError("give exactly one of --input_subscription or --input_topic")
    if stream.dedupe_horizon_seconds < stream.allowed_lateness_seconds:
        raise OptionsError("--dedupe_horizon_seconds must be at least --allowed_lateness_seconds")
    options.view_as(StandardOptions).streaming = True
    source.run_id = source.run_id or new_run_id()
    context = RunContext(source.run_id, __version__)
    sink = warehouse_sink(source, context, streaming=True)
    if _acknowledges_after_commit(options):
        # The streaming runner ReadAfterCommit is written for; DirectRunner would first try Prism.
        pipeline, deliveries_key = beam.Pipeline(runner=BundleBasedDirectRunner(), options=options), context.run_id
    else:
        pipeline, deliveries_key = beam.Pipeline(options=options), None
    messages = ReadEventMessages(stream.input_subscription, stream.input_topic, deliveries_key)
    batches = pipeline | "ReadEventMessages" >> messages | "Batch" >> BatchRecords(source.batch_size)
    processed = batches | "ProcessEvents" >> ProcessEvents(
        context, pii_key(source), timedelta(seconds=stream.allowed_lateness_seconds)
    )
    distinct = processed.rows | "Deduplicate" >> DeduplicateStream(
        timedelta(seconds=stream.dedupe_horizon_seconds), stream.dedupe_shards
    )
    sink.write(distinct.rows, processed.dead_letters, distinct.duplicates)
    lateness = timedelta(seconds=stream.allowed_lateness_seconds)
    live = (distinct.rows, processed.dead_letters) | "LiveMetrics" >> LiveMetrics(context, lateness)
    _ = live | "WriteLiveMetrics" >> live_metrics_sink(source)
    if stream.dead_letter_topic:
        _ = processed.dead_letters | "PublishDeadLetters" >> PublishDeadLetters(stream.dead_letter_topic)
    return pipeline, context


@dataclass(frozen=True)
class StreamRun:
    """What a local stream run landed, read back from the warehouse's books, and its JSON report."""

    landed: LoadReport
    report: str
    drained: bool
    """Whether the run drained (every window's final pane written), or was cancelled at the drain limit."""


def run(argv: list[str], stop: threading.Event | None = None, duration: float | None = None) -> StreamRun | None:
    """Runs the stream until ``stop`` is set, ``duration`` seconds pass or Ctrl-C, then drains it.

    Returns what the run landed in the local warehouse, read back from its books (Beam's
    local streaming runner does not report final metrics after a cancel), and writes the
    run's report; ``None`` when the job runs remotely (Dataflow keeps it running; drain
    it with ``gcloud dataflow jobs drain``) or writes to BigQuery.

    Locally, messages are acknowledged only once committed (``ReadAfterCommit``). To stop,
    the stream drains as Dataflow does: its reader stops pulling and its watermark goes to
    the end of time, so every open window fires its final pane and the pipeline finishes
    once what it pulled is committed. If it has not finished within
    ``_DRAIN_LIMIT_SECONDS`` it is cancelled (``StreamRun.drained`` and the report then
    say so). Either way whatever is still in flight is released for redelivery; the run
    books what its reader pulled and released beside what its sink loaded. A load that
    could not commit (the warehouse locked beyond ``--warehouse_lock_timeout_seconds``)
    cancels the stream at once and raises ``WarehouseError``: nothing it did not load is
    acknowledged.
    """
    started_at = datetime.now(UTC)
    options = PipelineOptions(argv)
    pipeline, context = build_pipeline(options)
    result = pipeline.run()
    if not runs_locally(options):
        return None
    stop = stop or threading.Event()
    if not _acknowledges_after_commit(options):  # BigQuery: Beam's reader, which acknowledged on pull
        _wait_for_stop(stop, duration)
        time.sleep(_QUIET_SECONDS)
        result.cancel()
        return None
    ledger = deliveries(context.run_id)
    try:
        _wait_for_stop(stop, duration, ledger)
    finally:
        drained = _stop_and_release(ledger, result)
        forget_deliveries(context.run_id)
    if ledger.failure:
        raise WarehouseError(
            f"{ledger.failure}: the stream stopped; the {ledger.released} messages it pulled but could not load are "
            f"not acknowledged and will be redelivered ({ledger.pulled} pulled, {ledger.acknowledged} loaded and "
            "acknowledged)"
        )
    source = options.view_as(RunOptions)
    warehouse = duckdb_warehouse(source)
    warehouse.record_deliveries(
        context.run_id, ledger.pulled, ledger.released, wait_for_lock=warehouse.lock_timeout_seconds
    )
    report = write_stream_report(argv, context.run_id, started_at, {"drained": drained})
    return StreamRun(warehouse.run_totals(context.run_id), report, drained)


def write_stream_report(argv: list[str], run_id: str, started_at: datetime, stop: dict[str, Any] | None = None) -> str:
    """Writes the report of a finished local stream run (the options ``argv``); returns its path.

    A local stream's Beam metrics end with it, so its books in the warehouse are the
    record of what it did: ``records_in`` is its reader's count (messages pulled, less
    those released unloaded for redelivery at its stop, ``stream_deliveries``), the rest
    what its sink committed (``pipeline_runs``) and the dead letters it stored. ``stop``
    adds how the run stopped (e.g. whether it drained) to the report's details.
    """
    options = PipelineOptions(argv)
    source, stream = options.view_as(RunOptions), options.view_as(StreamingOptions)
    warehouse = duckdb_warehouse(source)
    landed = warehouse.run_totals(run_id)
    pulled, released = warehouse.delivery_totals(run_id)
    by_reason = warehouse.dead_letters_by_reason(run_id)
    summary = RunSummary(
        run_id, pulled - released, landed.rows_loaded, landed.dead_letters, landed.duplicates, by_reason
    )
    inputs = [stream.input_subscription or stream.input_topic]
    details = {"pulled": pulled, "released_for_redelivery": released, **(stop or {})}
    return write_run_report(run_report(summary, STREAM, __version__, inputs, started_at, details), reports_dir(source))


def _wait_for_stop(stop: threading.Event, duration: float | None, ledger: Deliveries | None = None) -> None:
    """Returns once ``stop`` is set, ``duration`` seconds have passed, Ctrl-C is pressed or the ledger failed."""
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not stop.wait(_STOP_CHECK_SECONDS):
            if (ledger is not None and ledger.failure) or (deadline is not None and time.monotonic() >= deadline):
                return
    except KeyboardInterrupt:
        return


def _stop_and_release(ledger: Deliveries, result: beam.runners.runner.PipelineResult) -> bool:
    """Drains the run; cancels it if it has not finished at the limit; releases what it did not commit.

    Returns whether it drained. A second Ctrl-C cancels at once, and so does a sink's
    failure: what the run pulled and did not commit goes back to Pub/Sub. The local
    runner's cancel waits for the step it is running, so no load commits after the
    release: a released message is one that was not loaded.
    """
    ledger.stop_pulling()
    try:
        drained = not ledger.failure and _finishes_within(result, _DRAIN_LIMIT_SECONDS)
    except KeyboardInterrupt:  # Ctrl-C again while draining: cancel now, releasing what is not committed
        drained = False
    if not drained:
        if not ledger.failure:
            _LOGGER.warning(
                "the stream did not drain (limit %.0f s): cancelled; windows still open have no final pane",
                _DRAIN_LIMIT_SECONDS,
            )
        result.cancel()
    ledger.release()
    return drained


def _finishes_within(result: beam.runners.runner.PipelineResult, seconds: float) -> bool:
    """Whether the pipeline finishes within ``seconds`` (the local streaming runner's wait takes no timeout)."""
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            result.wait_until_finish()
        except Exception as error:  # reported below; the run is then cancelled and released
            failures.append(error)

    waiter = threading.Thread(target=wait, name="drain", daemon=True)  # a cancelled run's wait never returns
    waiter.start()
    waiter.join(seconds)
    if failures:
        _LOGGER.error("the stream failed while draining: %s", failures[0])
    return not waiter.is_alive() and not failures
