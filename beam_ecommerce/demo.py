"""The whole local platform in one call: ``run`` generates events, runs the batch pipeline, streams
through the local Pub/Sub emulator into the same warehouse, builds the dbt marts and checks the
stream's live windows against them, and returns what happened (``DemoResult``) for the CLI to print."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from beam_ecommerce.dbt_project import PROJECT_DIR, DailyRevenue, DbtBuildResult, DbtError, build, daily_revenue
from beam_ecommerce.generator import GeneratorConfig, Manifest, write_files
from beam_ecommerce.generator.publish import publish_events
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, LoadReport, WarehouseError
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, emulator_missing_reason, pubsub_emulator
from beam_ecommerce.live_vs_batch import LiveVsBatch, compare_live_with_marts
from beam_ecommerce.local_defaults import EMULATOR_PROJECT, EMULATOR_SUBSCRIPTION, EMULATOR_TOPIC
from beam_ecommerce.pipelines import batch, streaming
from beam_ecommerce.pipelines.options import new_run_id
from beam_ecommerce.pipelines.reconciliation import RunSummary
from beam_ecommerce.pipelines.reports import RUNS_DIR, report_path


@dataclass
class StreamLeg:
    """What the leg published and what the stream landed."""

    published: Counter
    landed: LoadReport
    seconds: float
    report: str
    """Path of the stream run's JSON report."""
    drained: bool
    """Whether the stream drained at its stop (every window closed with its final pane) or was cancelled."""

    @property
    def reconciles(self) -> bool:
        return self.landed.accounted == sum(self.published.values())


def run_stream_leg(config: GeneratorConfig, warehouse_path: str, rate: float | None, timeout: float = 120) -> StreamLeg:
    """Publishes ``config``'s records while the stream runs; stops when all have landed (or at ``timeout``).

    The stop drains the stream, so that its live windows close with their final panes.
    """
    warehouse = DuckDBWarehouse(warehouse_path)
    run_id = new_run_id()
    with pubsub_emulator(EMULATOR_PROJECT):
        topic, subscription = create_topic_and_subscription(EMULATOR_PROJECT, EMULATOR_TOPIC, EMULATOR_SUBSCRIPTION)
        stop = threading.Event()
        argv = [f"--input_subscription={subscription}", f"--duckdb_path={warehouse_path}", f"--run_id={run_id}"]
        outcome: list[streaming.StreamRun | None] = []
        stream = threading.Thread(target=lambda: outcome.append(streaming.run(argv, stop=stop)))
        stream.start()
        started = time.monotonic()
        try:
            published = publish_events(config, topic, rate)
            while warehouse.accounted_so_far(run_id) < sum(published.values()) and time.monotonic() - started < timeout:
                time.sleep(0.5)
            seconds = time.monotonic() - started
        finally:
            stop.set()
            stream.join()
    if not outcome or outcome[0] is None:
        raise WarehouseError(f"the stream run {run_id} did not finish")
    return StreamLeg(published, outcome[0].landed, seconds, outcome[0].report, outcome[0].drained)


@dataclass(frozen=True)
class DemoSettings:
    """What the demo generates, where it works, and which optional steps it takes."""

    workdir: str
    events: GeneratorConfig
    file_format: str = "jsonl"
    compress: bool = False
    progress: bool = True
    stream_events: int | None = 1000
    """Events the streaming leg publishes; None leaves the leg out."""
    stream_rate: float | None = None
    snapshot: str | None = None
    """Where to write the dashboard as one static HTML file, if anywhere."""


@dataclass(frozen=True)
class DemoPaths:
    """The demo's folders and files under its workdir; each run replaces them."""

    landing: str
    warehouse: str
    dead_letter_dir: str
    runs_dir: str

    @classmethod
    def under(cls, workdir: str) -> DemoPaths:
        workdir = os.path.abspath(workdir)
        warehouse_dir = os.path.join(workdir, "warehouse")
        return cls(
            landing=os.path.join(workdir, "landing"),
            warehouse=os.path.join(warehouse_dir, "ecommerce.duckdb"),
            dead_letter_dir=os.path.join(warehouse_dir, "dead_letter"),
            runs_dir=os.path.join(warehouse_dir, RUNS_DIR),
        )


@dataclass
class DemoResult:
    """What ``run`` did, step by step; ``ok`` when every step reconciled or agreed."""

    paths: DemoPaths
    steps: list[str]
    """The planned steps in order, numbered as ``run`` announced them (``1/4 generating ...``)."""
    manifest: Manifest
    generate_seconds: float
    batch: RunSummary
    batch_seconds: float
    batch_report: str
    events_by_type: dict[str, int]
    stream: StreamLeg | None = None
    stream_skipped: str | None = None
    """Why the streaming leg did not run although asked for (no emulator on this machine)."""
    dbt: DbtBuildResult | None = None
    """The dbt build, when it succeeded."""
    dbt_error: str | None = None
    revenue: list[DailyRevenue] = field(default_factory=list)
    """The marts' revenue of the last days, after a successful build."""
    live_vs_batch: LiveVsBatch | None = None
    """The stream's closed live windows against the marts, after a streaming leg and a successful build."""
    snapshot: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.batch.reconciles
            and (self.stream is None or self.stream.reconciles)
            and self.dbt_error is None
            and (self.live_vs_batch is None or self.live_vs_batch.differing == 0)
        )


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def run(settings: DemoSettings, announce: Callable[[str], None] = lambda step: None) -> DemoResult:
    """Runs every step of the demo from scratch in ``settings.workdir``; ``announce`` hears each step as it starts.

    Batch failures (``OptionsError``, ``WarehouseError``, a step's ``RuntimeError``) propagate;
    a failed dbt build is recorded in the result, as is a leg skipped for want of the emulator.
    """
    paths = DemoPaths.under(settings.workdir)
    for previous in (paths.landing, paths.dead_letter_dir, paths.warehouse, paths.runs_dir):
        _remove(previous)
    plan = [
        f"generating {settings.events.num_events:,} events into {paths.landing}",
        f"running the batch pipeline into {paths.warehouse}",
    ]
    if settings.stream_events is not None:
        plan.append(f"streaming {settings.stream_events:,} events through the Pub/Sub emulator into the same warehouse")
    plan.append(f"dbt build: staging and marts on the local warehouse (project {PROJECT_DIR})")
    steps = [f"{number}/{len(plan)} {text}" for number, text in enumerate(plan, start=1)]
    upcoming = iter(steps)
    announce(next(upcoming))
    started = time.perf_counter()
    manifest = write_files(
        settings.events, paths.landing, settings.file_format, compress=settings.compress, progress=settings.progress
    )
    generated = time.perf_counter()
    announce(next(upcoming))
    summary = batch.run(
        [
            f"--input={paths.landing}/events-*",
            f"--duckdb_path={paths.warehouse}",
            f"--dead_letter_dir={paths.dead_letter_dir}",
        ]
    )
    result = DemoResult(
        paths=paths,
        steps=steps,
        manifest=manifest,
        generate_seconds=generated - started,
        batch=summary,
        batch_seconds=time.perf_counter() - generated,
        batch_report=report_path(paths.runs_dir, summary.run_id),
        events_by_type=DuckDBWarehouse(paths.warehouse).events_by_type(),
    )
    if settings.stream_events is not None:
        announce(next(upcoming))
        _stream(settings, result)
    announce(next(upcoming))
    _model(result)
    if settings.snapshot:
        from beam_ecommerce.dashboard import DuckDBReader, write_snapshot

        result.snapshot = write_snapshot(DuckDBReader(paths.warehouse), settings.snapshot)
    return result


def _stream(settings: DemoSettings, result: DemoResult) -> None:
    """The streaming leg on the local emulator, or why it cannot run here."""
    result.stream_skipped = emulator_missing_reason()
    if result.stream_skipped:
        return
    config = GeneratorConfig(
        num_events=settings.stream_events,
        seed=settings.events.seed + 1,
        invalid_rate=settings.events.invalid_rate,
        duplicate_rate=settings.events.duplicate_rate,
    )
    result.stream = run_stream_leg(config, result.paths.warehouse, settings.stream_rate)


def _model(result: DemoResult) -> None:
    """dbt build on the warehouse, the revenue of the last days, and, after a stream, live vs batch."""
    try:
        result.dbt = build(result.paths.warehouse)
        result.revenue = daily_revenue(result.paths.warehouse)
    except DbtError as error:
        result.dbt_error = str(error)
        return
    if result.stream is not None:
        result.live_vs_batch = compare_live_with_marts(result.paths.warehouse)
