"""``beam-ecommerce batch``, ``stream`` and ``replay``: a pipeline run with the command's options, and its outcome."""

from __future__ import annotations

import argparse
import json
import signal
from typing import TYPE_CHECKING

from beam_ecommerce.cli.errors import PROG, UserError, run_errors
from beam_ecommerce.local_defaults import EMULATOR_PROJECT, EMULATOR_SUBSCRIPTION, EMULATOR_TOPIC

if TYPE_CHECKING:  # both import Beam: only when a command runs
    from beam_ecommerce.io.duckdb.warehouse import LoadReport
    from beam_ecommerce.pipelines.reconciliation import RunSummary


def handle_batch(args: argparse.Namespace) -> int:
    from beam_ecommerce.pipelines import batch

    with run_errors():
        summary = batch.run(args.pipeline_argv)
    print_summary(summary)
    return 0 if summary.reconciles else 1


def handle_replay(args: argparse.Namespace) -> int:
    from beam_ecommerce.pipelines import replay

    with run_errors():
        outcome = replay.run(args.pipeline_argv, dry_run=args.dry_run)
    for line in outcome.lines():
        print(line)
    return 0 if outcome.reconciles else 1


def handle_stream(args: argparse.Namespace) -> int:
    from beam_ecommerce.io.pubsub_emulator import (
        create_topic_and_subscription,
        emulator_missing_reason,
        pubsub_emulator,
    )

    if not args.emulator:
        return _stream(args.pipeline_argv, args.duration)
    if reason := emulator_missing_reason():
        raise UserError(reason)
    with pubsub_emulator(EMULATOR_PROJECT) as host:
        topic, subscription = create_topic_and_subscription(EMULATOR_PROJECT, EMULATOR_TOPIC, EMULATOR_SUBSCRIPTION)
        print(f"Pub/Sub emulator on {host}; publish events with:")
        print(f"  PUBSUB_EMULATOR_HOST={host} {PROG} generate --pubsub-topic {topic} --rate 1000")
        print("streaming into the warehouse; Ctrl-C drains and stops")
        return _stream([*args.pipeline_argv, f"--input_subscription={subscription}"], args.duration)


def _stream(pipeline_argv: list[str], duration: float | None) -> int:
    from beam_ecommerce.pipelines import streaming

    # SIGTERM (docker stop, systemd, a scheduler) drains the stream as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with run_errors():
            outcome = streaming.run(pipeline_argv, duration=duration)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if outcome is not None:
        print(f"stream run {outcome.landed.run_id} landed {stream_line(outcome.landed)}")
        print(f"run report: {outcome.report}")
    return 0


def stream_line(landed: LoadReport) -> str:
    """Where a stream's records went, in one line."""
    return (
        f"{landed.accounted} records: {landed.rows_loaded} loaded + {landed.dead_letters} dead letters"
        f" + {landed.duplicates} duplicates absorbed"
    )


def print_summary(summary: RunSummary) -> None:
    """A batch run: its id, dead letters by reason and its reconciliation."""
    print(f"run {summary.run_id}")
    for reason, count in summary.dead_letters_by_reason.items():
        print(f"  dead letters {reason}: {count}")
    print(summary.reconciliation_line())


def print_run_report(path: str) -> None:
    from beam_ecommerce.pipelines.reports import read_run_report

    print(f"run report:   {path}")
    print(json.dumps(read_run_report(path), indent=2, sort_keys=True))
