"""The streaming pipeline: Pub/Sub -> the transform core -> the warehouse, continuously."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_ecommerce import __version__
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse, LoadReport
from beam_ecommerce.io.pubsub import PublishDeadLetters, ReadEventMessages
from beam_ecommerce.pipelines.live_metrics_sink import live_metrics_sink
from beam_ecommerce.pipelines.options import BIGQUERY, EventSourceOptions, OptionsError, new_run_id, pii_key
from beam_ecommerce.pipelines.sinks import warehouse_sink
from beam_ecommerce.reporting import write_stream_report
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from beam_ecommerce.transforms.live_metrics import LiveMetrics
from beam_ecommerce.transforms.streaming import DeduplicateStream

__all__ = ["OptionsError", "StreamingOptions", "build_pipeline", "run"]

# A stopped local stream is cancelled once its books have been still this long, or at the limit.
_QUIET_SECONDS = 1.5
_DRAIN_LIMIT_SECONDS = 10.0


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


def build_pipeline(options: PipelineOptions) -> tuple[beam.Pipeline, RunContext]:
    """The streaming pipeline for ``options``, not yet run, and the run it will be."""
    source = options.view_as(EventSourceOptions)
    stream = options.view_as(StreamingOptions)
    if bool(stream.input_subscription) == bool(stream.input_topic):
        raise OptionsError("give exactly one of --input_subscription or --input_topic")
    if stream.dedupe_horizon_seconds < stream.allowed_lateness_seconds:
        raise OptionsError("--dedupe_horizon_seconds must be at least --allowed_lateness_seconds")
    options.view_as(StandardOptions).streaming = True
    source.run_id = source.run_id or new_run_id()
    context = RunContext(source.run_id, __version__)
    sink = warehouse_sink(source, context, streaming=True)
    pipeline = beam.Pipeline(options=options)
    batches = (
        pipeline
        | "ReadEventMessages" >> ReadEventMessages(stream.input_subscription, stream.input_topic)
        | "Batch" >> BatchRecords(source.batch_size)
    )
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


def run(argv: list[str], stop: threading.Event | None = None, duration: float | None = None) -> StreamRun | None:
    """Runs the stream until ``stop`` is set, ``duration`` seconds pass or Ctrl-C, then drains it.

    Returns what the run landed in the local warehouse, read back from its books (Beam's
    local streaming runner does not report final metrics after a cancel), and writes the
    run's report; ``None`` when the job runs remotely (Dataflow keeps it running) or
    writes to BigQuery.

    Draining waits until the run's books in the warehouse stop moving (the bundles in
    flight have loaded) before cancelling. Beam's local Pub/Sub reader acknowledges
    messages as it pulls them, so a message pulled while a publisher is still sending at
    the drain limit can be lost locally; on Dataflow, drain the job (``gcloud dataflow
    jobs drain``), which finishes all in-flight work.
    """
    started_at = datetime.now(UTC)
    options = PipelineOptions(argv)
    pipeline, context = build_pipeline(options)
    result = pipeline.run()
    if options.view_as(StandardOptions).runner not in (None, "DirectRunner", "BundleBasedDirectRunner"):
        return None
    stop = stop or threading.Event()
    try:
        stop.wait(duration)
    except KeyboardInterrupt:
        pass
    finally:
        source = options.view_as(EventSourceOptions)
        warehouse = None if source.sink == BIGQUERY else DuckDBWarehouse(source.duckdb_path)
        _drain(warehouse, context.run_id)
        result.cancel()
    if warehouse is None:
        return None
    return StreamRun(warehouse.run_totals(context.run_id), write_stream_report(argv, context.run_id, started_at))


def _drain(warehouse: DuckDBWarehouse | None, run_id: str) -> None:
    """Waits until what the run has landed stops growing, for at most the drain limit."""
    if warehouse is None:  # BigQuery keeps no books here to watch
        time.sleep(_QUIET_SECONDS)
        return

    deadline = time.monotonic() + _DRAIN_LIMIT_SECONDS
    last, still_since = warehouse.accounted_so_far(run_id), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - still_since < _QUIET_SECONDS:
        time.sleep(0.25)
        current = warehouse.accounted_so_far(run_id)
        if current != last or current < 0:  # a busy file is not a quiet one
            last, still_since = current, time.monotonic()
