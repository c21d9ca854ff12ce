"""``beam-ecommerce demo``: ``demo.run`` with the command's settings, then what it did, printed."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from beam_ecommerce.cli.dashboard import serve_dashboard
from beam_ecommerce.cli.errors import PROG, run_errors
from beam_ecommerce.cli.generate import generator_config
from beam_ecommerce.cli.pipelines import print_run_report, print_summary, stream_line

if TYPE_CHECKING:  # the demo module imports Beam: only when the command runs
    from beam_ecommerce.demo import DemoResult


def handle_demo(args: argparse.Namespace) -> int:
    from beam_ecommerce import demo
    from beam_ecommerce.dashboard import DEFAULT_PORT, DuckDBReader

    settings = demo.DemoSettings(
        workdir=args.workdir,
        events=generator_config(args),
        file_format=args.format,
        compress=args.gzip,
        progress=not args.quiet,
        stream_events=None if args.no_stream else args.stream_events,
        stream_rate=args.stream_rate,
        snapshot=args.snapshot,
    )
    with run_errors():
        result = demo.run(settings, announce=print)
    _print_result(result)
    if args.open:
        serve_dashboard(DuckDBReader(result.paths.warehouse), "127.0.0.1", DEFAULT_PORT, open_browser=True)
    else:
        command = f"{PROG} dashboard --duckdb_path {result.paths.warehouse}"
        print(f"\ndashboard: {command}  then open http://127.0.0.1:{DEFAULT_PORT}/")
    return 0 if result.ok else 1


def _print_result(result: DemoResult) -> None:
    """What the demo did: the batch run, the streaming leg, the dbt build and where everything is."""
    print()
    print_summary(result.batch)
    print("\nraw_events by type:")
    for event_type, count in result.events_by_type.items():
        print(f"  {event_type:<22}{count:>10,}")
    print(
        f"\ngenerated {result.manifest.records:,} records in {result.generate_seconds:.1f}s;"
        f" pipeline {result.batch_seconds:.1f}s"
        f" ({result.batch.records_in / max(result.batch_seconds, 1e-9):,.0f} records/s)"
    )
    print(f"warehouse:    {result.paths.warehouse}  (DuckDB tables raw_events, dead_letter, pipeline_runs)")
    print(f"dead letters: {result.paths.dead_letter_dir}/run_id={result.batch.run_id}/ and table dead_letter")
    print_run_report(result.batch_report)
    if result.stream_skipped:
        print(f"\nstreaming leg skipped: {result.stream_skipped}")
    if result.stream is not None:
        leg = result.stream
        print(
            f"\nstreaming leg: published {sum(leg.published.values())} messages;"
            f" landed {stream_line(leg.landed)} in {leg.seconds:.1f}s"
        )
        verdict = "OK" if leg.reconciles else "MISMATCH"
        print(f"stream reconciliation {verdict}: published = loaded + dead letters + duplicates")
        print_run_report(leg.report)
    _print_dbt(result)
    if result.snapshot:
        print(f"\ndashboard snapshot: {result.snapshot}")


def _print_dbt(result: DemoResult) -> None:
    """The dbt build, a short table of the revenue by day, and live windows against the marts."""
    if result.dbt_error is not None:
        print(f"\ndbt build FAILED: {result.dbt_error}")
        return
    print(f"\n{result.dbt.summary()}")
    print("\nrevenue by order date (marts.dm_daily_revenue, every category and currency, net in EUR):")
    print(f"  {'date':<12}{'orders':>8}{'cancelled':>11}{'refunded':>10}{'net EUR':>14}")
    for day in result.revenue:
        print(
            f"  {day.revenue_date.isoformat():<12}{day.orders:>8,}{day.cancelled_orders:>11,}"
            f"{day.refunded_orders:>10,}{day.net_revenue_eur:>14,.2f}"
        )
    if result.live_vs_batch is not None:
        print(f"\n{result.live_vs_batch}")
