"""The ``beam-ecommerce`` command line: generate, batch and demo."""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime

from beam_ecommerce import __version__
from beam_ecommerce.flags import ArgumentParser, BothSpellings, beam_style
from beam_ecommerce.local_defaults import DEFAULT_WAREHOUSE

_PROG = "beam-ecommerce"
# Top-level modules of setup.py's "local" extra (dbt and the dashboard).
_LOCAL_EXTRAS = {"dbt", "plotly"}


class UserError(Exception):
    """A problem the user can fix; reported in one line, without a traceback."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535: {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1): {value}")
    return value


def _add_generator_arguments(
    parser: argparse.ArgumentParser, default_events: int, format_default: str | None = "jsonl"
) -> None:
    parser.add_argument("--num-events", type=_positive_int, default=default_events, help="records to write")
    parser.add_argument("--seed", type=int, default=42, help="random seed: same seed, same bytes (default 42)")
    parser.add_argument(
        "--invalid-rate", type=_rate, default=0.02, help="fraction of deliberately malformed records (default 0.02)"
    )
    parser.add_argument(
        "--duplicate-rate", type=_rate, default=0.01, help="fraction of re-sent duplicate records (default 0.01)"
    )
    parser.add_argument("--days", type=_positive_int, default=14, help="days the events spread over (default 14)")
    parser.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        default=format_default,
        help=f"file format (default {format_default or 'jsonl; csv with --gcs-upload'})",
    )
    parser.add_argument("--gzip", action="store_true", help="gzip the files")


def _generator_config(args: argparse.Namespace):
    from beam_ecommerce.generator import GeneratorConfig

    return GeneratorConfig(
        num_events=args.num_events,
        seed=args.seed,
        invalid_rate=args.invalid_rate,
        duplicate_rate=args.duplicate_rate,
        days=args.days,
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    from beam_ecommerce.generator import write_files

    destination = generate_destination(args, os.environ)
    print(f"{_PROG} generate: to {destination.topic or destination.output} ({destination.why})", file=sys.stderr)
    if destination.topic:
        return _publish(args, destination.topic)
    output, file_format = destination.output, args.format or destination.file_format
    _refuse_to_mix(output, args.overwrite)
    started = time.perf_counter()
    manifest = write_files(_generator_config(args), output, file_format, compress=args.gzip, progress=not args.quiet)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {manifest.records} records ({manifest.valid_events} valid events, {manifest.duplicates} duplicates,"
        f" {sum(manifest.invalid.values())} malformed) to {output} in {elapsed:.1f}s"
        f" ({manifest.records / max(elapsed, 1e-9):,.0f} records/s)"
    )
    return 0


def generate_destination(args: argparse.Namespace, environ: Mapping[str, str]):
    """The ``generate`` command's one destination (a topic or a folder), or a one-line ``UserError``."""
    from beam_ecommerce.generator.destination import DestinationError, choose_destination

    try:
        return choose_destination(
            output=args.output,
            pubsub_topic=args.pubsub_topic,
            gcs_upload=args.gcs_upload,
            gcs_bucket=args.gcs_bucket,
            gcs_prefix=args.gcs_prefix,
            day=args.date or datetime.now(UTC).date(),
            environ=environ,
        )
    except DestinationError as error:
        raise UserError(str(error)) from None


def _publish(args: argparse.Namespace, topic: str) -> int:
    from beam_ecommerce.generator.publish import publish_events

    if not re.fullmatch(r"projects/[^/]+/topics/[^/]{3,}", topic):
        raise UserError(f"--pubsub-topic must look like projects/PROJECT/topics/TOPIC, not {topic!r}")
    started = time.perf_counter()
    try:
        kinds = publish_events(_generator_config(args), topic, args.rate)
    except Exception as error:  # noqa: BLE001 - the client's errors (no topic, no credentials) are the user's to fix
        raise UserError(f"cannot publish to {topic}: {type(error).__name__}: {error}") from None
    elapsed = time.perf_counter() - started
    print(f"published {sum(kinds.values())} messages {dict(sorted(kinds.items()))} in {elapsed:.1f}s")
    return 0


def _remove_local_files(paths: list[str]) -> None:
    for path in paths:
        os.remove(path)


def _refuse_to_mix(output: str, overwrite: bool) -> None:
    """Stops a new data set from landing beside an old one, which a pattern would read as one."""
    if "://" in output:
        from apache_beam.io.filesystems import FileSystems

        try:
            existing = [m.path for m in FileSystems.match([FileSystems.join(output, "events-*")])[0].metadata_list]
        except Exception:  # noqa: BLE001 - an unreadable output fails with its own error when written
            return
        remove: Callable[[list[str]], None] = FileSystems.delete
    else:  # a local folder: no need to import Beam
        existing = glob.glob(os.path.join(glob.escape(output), "events-*"))
        remove = _remove_local_files
    if existing and not overwrite:
        raise UserError(f"{output} already holds {len(existing)} event files: choose another --output or --overwrite")
    if existing:
        remove(existing)


def _check_input(pattern: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # noqa: BLE001 - any failure to list the input is the user's to fix
        raise UserError(f"cannot read input {pattern!r}: {error}") from None
    if not matched:
        raise UserError(f"no input files match {pattern!r}")


def _file_error(error: RuntimeError) -> UserError:
    """A run that failed writing its files (disk full, no permission) as one line; other failures go on."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        raise error
    return UserError(f"the run stopped, nothing was loaded: cannot write its files: {cause}")


def _run_batch(pipeline_args: Sequence[str]):
    from beam_ecommerce.io.duckdb_warehouse import WarehouseError
    from beam_ecommerce.pipelines import batch

    try:
        return batch.run(list(pipeline_args))
    except (batch.OptionsError, WarehouseError) as error:
        raise UserError(str(error)) from None
    except RuntimeError as error:  # Beam re-raises what a step raised as a RuntimeError
        raise _file_error(error) from None


def _print_summary(summary) -> None:
    print(f"run {summary.run_id}")
    for reason, count in summary.dead_letters_by_reason.items():
        print(f"  dead letters {reason}: {count}")
    print(summary.reconciliation_line())


def _print_run_report(path: str) -> None:
    from beam_ecommerce.pipelines.reports import read_run_report

    print(f"run report:   {path}")
    print(json.dumps(read_run_report(path), indent=2, sort_keys=True))


def _cmd_batch(args: argparse.Namespace) -> int:
    if not args.input:
        raise UserError("--input is required: a file pattern such as data/*.jsonl or gs://bucket/events/*.csv.gz")
    _check_input(args.input)
    options = [f"--{dest}={getattr(args, dest)}" for dest in args.pipeline_dests if getattr(args, dest) is not None]
    summary = _run_batch(options + args.pipeline_args)
    _print_summary(summary)
    return 0 if summary.reconciles else 1


def _cmd_replay(args: argparse.Namespace) -> int:
    from beam_ecommerce.io.duckdb_warehouse import WarehouseError
    from beam_ecommerce.pipelines import replay

    options = [f"--{dest}={getattr(args, dest)}" for dest in args.pipeline_dests if getattr(args, dest) is not None]
    try:
        outcome = replay.run(options + args.pipeline_args, dry_run=args.dry_run)
    except (replay.OptionsError, WarehouseError) as error:
        raise UserError(str(error)) from None
    except RuntimeError as error:  # Beam re-raises what a step raised as a RuntimeError
        raise _file_error(error) from None
    for line in outcome.lines():
        print(line)
    return 0 if outcome.reconciles else 1


LOCAL_PROJECT = "local-shop"


def _cmd_stream(args: argparse.Namespace) -> int:
    from beam_ecommerce.io.pubsub_emulator import (
        create_topic_and_subscription,
        emulator_missing_reason,
        pubsub_emulator,
    )

    options = [f"--{dest}={getattr(args, dest)}" for dest in args.pipeline_dests if getattr(args, dest) is not None]
    if not args.emulator:
        return _run_stream(options + args.pipeline_args, args.duration)
    if reason := emulator_missing_reason():
        raise UserError(reason)
    with pubsub_emulator(LOCAL_PROJECT) as host:
        topic, subscription = create_topic_and_subscription(LOCAL_PROJECT, "events", "events-stream")
        print(f"Pub/Sub emulator on {host}; publish events with:")
        print(f"  PUBSUB_EMULATOR_HOST={host} {_PROG} generate --pubsub-topic {topic} --rate 1000")
        print("streaming into the warehouse; Ctrl-C drains and stops")
        return _run_stream(options + args.pipeline_args + [f"--input_subscription={subscription}"], args.duration)


def _run_stream(pipeline_args: list[str], duration: float | None) -> int:
    from beam_ecommerce.io.duckdb_warehouse import WarehouseError
    from beam_ecommerce.pipelines import streaming

    try:
        outcome = streaming.run(pipeline_args, duration=duration)
    except (streaming.OptionsError, WarehouseError) as error:
        raise UserError(str(error)) from None
    if outcome is not None:
        print(f"stream run {outcome.landed.run_id} landed {stream_line(outcome.landed)}")
        print(f"run report: {outcome.report}")
    return 0


def stream_line(landed) -> str:
    return (
        f"{landed.accounted} records: {landed.rows_loaded} loaded + {landed.dead_letters} dead letters"
        f" + {landed.duplicates} duplicates absorbed"
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from beam_ecommerce.generator import write_files
    from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse
    from beam_ecommerce.pipelines.reports import RUNS_DIR, report_path

    workdir = os.path.abspath(args.workdir)
    landing = os.path.join(workdir, "landing")
    warehouse_path = os.path.join(workdir, "warehouse", "ecommerce.duckdb")
    dead_letter_dir = os.path.join(workdir, "warehouse", "dead_letter")
    runs_dir = os.path.join(workdir, "warehouse", RUNS_DIR)
    for previous in (landing, dead_letter_dir, warehouse_path, runs_dir):
        _remove(previous)
    started = time.perf_counter()
    legs = 3 if args.no_stream else 4
    print(f"1/{legs} generating {args.num_events:,} events into {landing}")
    manifest = write_files(_generator_config(args), landing, args.format, compress=args.gzip, progress=not args.quiet)
    generated = time.perf_counter()
    print(f"2/{legs} running the batch pipeline into {warehouse_path}")
    summary = _run_batch(
        [
            f"--input={landing}/events-*",
            f"--duckdb_path={warehouse_path}",
            f"--dead_letter_dir={dead_letter_dir}",
            *args.pipeline_args,
        ]
    )
    finished = time.perf_counter()
    _print_summary(summary)
    con = DuckDBWarehouse(warehouse_path).connect(read_only=True)
    try:
        print("\nraw_events by type:")
        for event_type, count in con.execute(
            "SELECT event_type, count(*) FROM raw_events GROUP BY 1 ORDER BY 1"
        ).fetchall():
            print(f"  {event_type:<22}{count:>10,}")
    finally:
        con.close()
    print(
        f"\ngenerated {manifest.records:,} records in {generated - started:.1f}s;"
        f" pipeline {finished - generated:.1f}s ({summary.records_in / max(finished - generated, 1e-9):,.0f} records/s)"
    )
    print(f"warehouse:    {warehouse_path}  (DuckDB tables raw_events, dead_letter, pipeline_runs)")
    print(f"dead letters: {dead_letter_dir}/run_id={summary.run_id}/ and table dead_letter")
    _print_run_report(report_path(runs_dir, summary.run_id))
    streamed = True if args.no_stream else _demo_stream(args, warehouse_path)
    modelled = _demo_dbt(warehouse_path, f"{legs}/{legs}", live=not args.no_stream)
    _demo_dashboard(args, warehouse_path)
    return 0 if summary.reconciles and streamed and modelled else 1


def _demo_dbt(warehouse_path: str, step: str, live: bool) -> bool:
    """The demo's dbt step: staging and marts built and tested on the warehouse, then a look at revenue
    and, after a streaming leg, the stream's closed live windows against the marts."""
    from beam_ecommerce.dbt_project import PROJECT_DIR, DbtError, build, daily_revenue
    from beam_ecommerce.live_vs_batch import compare_live_with_marts

    print(f"\n{step} dbt build: staging and marts on the local warehouse (project {PROJECT_DIR})")
    try:
        result = build(warehouse_path)
        days = daily_revenue(warehouse_path)
    except DbtError as error:
        print(f"dbt build FAILED: {error}")
        return False
    print(result.summary())
    _print_daily_revenue(days)
    if not live:
        return True
    agreement = compare_live_with_marts(warehouse_path)
    print(f"\n{agreement}")
    return agreement.differing == 0


def _print_daily_revenue(days: Sequence) -> None:
    """A short table of ``dbt_project.daily_revenue``'s days."""
    print("\nrevenue by order date (marts.dm_daily_revenue, every category and currency, net in EUR):")
    print(f"  {'date':<12}{'orders':>8}{'cancelled':>11}{'refunded':>10}{'net EUR':>14}")
    for day in days:
        print(
            f"  {day.revenue_date.isoformat():<12}{day.orders:>8,}{day.cancelled_orders:>11,}"
            f"{day.refunded_orders:>10,}{day.net_revenue_eur:>14,.2f}"
        )


def _demo_stream(args: argparse.Namespace, warehouse_path: str) -> bool:
    from beam_ecommerce.demo import run_stream_leg
    from beam_ecommerce.generator import GeneratorConfig
    from beam_ecommerce.io.pubsub_emulator import emulator_missing_reason

    if reason := emulator_missing_reason():
        print(f"\n3/4 streaming leg skipped: {reason}")
        return True
    config = GeneratorConfig(
        num_events=args.stream_events,
        seed=args.seed + 1,
        invalid_rate=args.invalid_rate,
        duplicate_rate=args.duplicate_rate,
    )
    print(f"\n3/4 streaming {config.num_events:,} events through the Pub/Sub emulator into the same warehouse")
    leg = run_stream_leg(config, warehouse_path, args.stream_rate)
    print(f"published {sum(leg.published.values())} messages; landed {stream_line(leg.landed)} in {leg.seconds:.1f}s")
    verdict = "OK" if leg.reconciles else "MISMATCH"
    print(f"stream reconciliation {verdict}: published = loaded + dead letters + duplicates")
    _print_run_report(leg.report)
    return leg.reconciles


def _demo_dashboard(args: argparse.Namespace, warehouse_path: str) -> None:
    """The demo's last step: where to see the result (a snapshot, the served page, or its command)."""
    from beam_ecommerce.dashboard import DEFAULT_PORT, DuckDBReader, write_snapshot

    reader = DuckDBReader(warehouse_path)
    if args.snapshot:
        print(f"\ndashboard snapshot: {write_snapshot(reader, args.snapshot)}")
    if args.open:
        _serve_dashboard(reader, "127.0.0.1", DEFAULT_PORT, open_browser=True)
    else:
        command = f"{_PROG} dashboard --duckdb_path {warehouse_path}"
        print(f"\ndashboard: {command}  then open http://127.0.0.1:{DEFAULT_PORT}/")


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from beam_ecommerce.dashboard import DuckDBReader, write_snapshot

    reader = DuckDBReader(args.duckdb_path)
    if args.snapshot:
        print(f"wrote the dashboard of {reader.describe()} to {write_snapshot(reader, args.snapshot)}")
        return 0
    return _serve_dashboard(reader, args.host, args.port, args.open, args.allow_host)


def _serve_dashboard(reader, host: str, port: int, open_browser: bool, allowed_hosts: Sequence[str] = ()) -> int:
    """Serves until Ctrl-C, which is how a dashboard normally stops (so exit 0)."""
    import webbrowser

    from beam_ecommerce.dashboard import DashboardServer

    try:
        server = DashboardServer(reader, host, port, allowed_hosts)
    except OSError as error:
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {error.strerror}; try another --port") from None
    if server.exposed:
        print(
            f"{_PROG}: warning: serving on {server.server_address[0]}, not loopback: anyone who can reach this "
            f"machine's port {server.server_address[1]} can read the warehouse's data",
            file=sys.stderr,
            flush=True,
        )
    print(f"dashboard of {reader.describe()} on {server.url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


# dbt commands that read no warehouse: they run without one.
_DBT_WITHOUT_WAREHOUSE = frozenset({"parse", "ls", "list", "clean", "deps", "--help", "-h", "--version"})


def _cmd_dbt(args: argparse.Namespace) -> int:
    """Any dbt command on the bundled project and profile, against the warehouse at --duckdb_path."""
    from beam_ecommerce.dbt_project import invoke

    if not args.dbt_args:
        raise UserError("give a dbt command, e.g. `beam-ecommerce dbt build` or `beam-ecommerce dbt docs generate`")
    if args.dbt_args[0] not in _DBT_WITHOUT_WAREHOUSE and not os.path.isfile(args.duckdb_path):
        raise UserError(f"no warehouse at {args.duckdb_path}: run `{_PROG} batch` or `{_PROG} demo` first")
    outcome = invoke(args.dbt_args, args.duckdb_path, quiet=False)
    if outcome.exception is not None:
        first_line = next((line for line in str(outcome.exception).splitlines() if line.strip()), "")
        raise UserError(f"dbt {args.dbt_args[0]} could not run: {first_line.strip()}")
    return 0 if outcome.success else 1


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def _pipeline_parser(
    subparsers, common, name: str, summary: str, description: str, option_classes: Callable[[], tuple], chosen: bool
) -> argparse.ArgumentParser:
    """A command whose options are a pipeline's options (the names its Flex Template takes).

    ``option_classes`` is called only for the ``chosen`` command: the classes import Beam,
    which costs every other command (``generate`` above all) a second and a half.
    """
    parser = subparsers.add_parser(name, parents=[common], help=summary, description=description)
    options = BothSpellings(parser.add_argument_group("pipeline options (also the Flex Template's parameters)"))
    for options_class in option_classes() if chosen else ():
        options_class._add_argparse_args(options)
    parser.set_defaults(pipeline_dests=[action.dest for action in options._group_actions])
    return parser


def _batch_options() -> tuple:
    from beam_ecommerce.pipelines.options import BatchOptions, RunOptions

    return BatchOptions, RunOptions


def _stream_options() -> tuple:
    from beam_ecommerce.pipelines.options import RunOptions
    from beam_ecommerce.pipelines.streaming import StreamingOptions

    return StreamingOptions, RunOptions


def _replay_options() -> tuple:
    from beam_ecommerce.pipelines.options import RunOptions
    from beam_ecommerce.pipelines.replay import ReplayOptions

    return ReplayOptions, RunOptions


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only ``command``'s pipeline options are loaded (all of them when it is None)."""
    common = ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="show Beam's logs")
    warehouse_file = ArgumentParser(add_help=False)
    warehouse_file.add_argument(
        "--duckdb_path", default=DEFAULT_WAREHOUSE, help=f"warehouse file (default {DEFAULT_WAREHOUSE})"
    )
    parser = ArgumentParser(
        prog=_PROG,
        description="E-commerce events on Apache Beam: batch, local warehouse. Options are spelled with dashes "
        "(--num-events, --duckdb-path); Beam's spelling with underscores (--duckdb_path) works as well.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    generate = subparsers.add_parser(
        "generate",
        parents=[common],
        help="write realistic shop events to files",
        description=(
            "Write realistic, deterministic shop events (sessions, carts, orders, payments, status changes) with "
            "deliberately malformed records and duplicates, plus a _manifest.json of what was written."
        ),
    )
    _add_generator_arguments(generate, 100_000, format_default=None)
    destinations = BothSpellings(
        generate.add_argument_group(
            "destination (one of them; with none: the platform's topic if GOOGLE_CLOUD_PROJECT is set, "
            "else data/landing)"
        )
    )
    destinations.add_argument("--output", help="a folder or gs:// prefix")
    destinations.add_argument(
        "--pubsub-topic",
        help="publish to projects/P/topics/T (default with GOOGLE_CLOUD_PROJECT=P: beam-ecommerce-events)",
    )
    destinations.add_argument(
        "--gcs-upload",
        action="store_true",
        help="CSV files into the landing bucket, where the batch DAG reads day DATE: gs://BUCKET/PREFIX/dt=DATE/",
    )
    destinations.add_argument(
        "--gcs-bucket", help="the landing bucket (default with GOOGLE_CLOUD_PROJECT=P: P-beam-ecommerce-landing)"
    )
    destinations.add_argument("--gcs-prefix", default="landing", help="prefix inside the bucket (default landing)")
    destinations.add_argument(
        "--date", type=date.fromisoformat, help="the DAG's day the upload is for, YYYY-MM-DD (default today, UTC)"
    )
    generate.add_argument("--overwrite", action="store_true", help="replace event files already in the output")
    generate.add_argument("--rate", type=float, default=None, help="messages per second when publishing (default: max)")

    _pipeline_parser(
        subparsers,
        common,
        "batch",
        "run the batch pipeline over event files",
        "Run the batch pipeline: files -> parse, validate, enrich -> warehouse + dead letter. "
        "Any other Beam option (--runner, --project, --region, --temp-location, ...) is passed to Beam.",
        _batch_options,
        command in (None, "batch"),
    )
    stream = _pipeline_parser(
        subparsers,
        common,
        "stream",
        "run the streaming pipeline from Pub/Sub",
        "Run the streaming pipeline: Pub/Sub -> parse, validate, enrich, dedupe -> warehouse + dead "
        "letter, until Ctrl-C (or --duration). With --emulator it starts Google's Pub/Sub emulator locally "
        f"(project {LOCAL_PROJECT}, topic events). Other Beam options are passed to Beam.",
        _stream_options,
        command in (None, "stream"),
    )
    stream.add_argument("--emulator", action="store_true", help="start a local Pub/Sub emulator and read from it")
    stream.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    replay = _pipeline_parser(
        subparsers,
        common,
        "replay",
        "replay dead letters through the core into the warehouse",
        "Replay dead letters (files, a gs:// prefix or the warehouse's dead_letter table), picked by stage, reason "
        "and time, optionally through a fix function, through the same parse, validate, enrich; load what passes, "
        "dead-letter what still fails, and remember what was replayed so that no replay loads it twice. "
        "With --sink bigquery it reads dead-letter files and loads BigQuery as the batch pipeline does (load jobs "
        "and a MERGE: a rerun adds nothing), on any runner, and keeps its attempts in a JSONL file beside its "
        "dead-letter files. Other Beam options (--runner, --project, --temp-location, ...) are passed to Beam.",
        _replay_options,
        command in (None, "replay"),
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="run the same steps in this process, the --fix function included, and write nothing (no rows, "
        "dead letters, replay marks, files or run report); report what would pass and fail",
    )

    demo = subparsers.add_parser(
        "demo",
        parents=[common],
        help="run the whole local platform in one command",
        description=(
            "Generate events, run the batch pipeline into the local DuckDB warehouse, reconcile and show the result. "
            "Each run starts from scratch: it replaces WORKDIR/landing and WORKDIR/warehouse."
        ),
    )
    _add_generator_arguments(demo, 100_000)
    demo.add_argument("--workdir", default="demo", help="where the demo writes everything (default ./demo)")
    demo.add_argument("--no-stream", action="store_true", help="leave out the streaming leg")
    demo.add_argument("--stream-events", type=_positive_int, default=1000, help="events the streaming leg publishes")
    demo.add_argument("--stream-rate", type=float, default=None, help="messages/s the streaming leg publishes")
    demo.add_argument("--open", action="store_true", help="at the end, serve the dashboard and open it in a browser")
    demo.add_argument("--snapshot", metavar="FILE", help="at the end, write the dashboard as one static HTML file")

    dashboard = subparsers.add_parser(
        "dashboard",
        parents=[common, warehouse_file],
        help="serve the analytics dashboard of the local warehouse",
        description=(
            "Serve a page on the dbt marts of the local DuckDB warehouse (revenue, orders, funnel, top products, "
            "dead letters, pipeline freshness) that follows new loads without a restart; the file is only "
            "read, a moment per refresh. With --snapshot, write the page as one static HTML file instead."
        ),
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to serve on (default 127.0.0.1); any other than loopback exposes the data to the network",
    )
    dashboard.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a name browsers may use to reach the page besides localhost, --host and IP addresses (repeatable); "
        "requests for any other name are refused, against DNS rebinding",
    )
    dashboard.add_argument("--port", type=_port, default=8050, help="port (default 8050; 0 picks a free one)")
    dashboard.add_argument("--open", action="store_true", help="open the page in a browser")
    dashboard.add_argument("--snapshot", metavar="FILE", help="write a static HTML snapshot to FILE and exit")

    dbt = subparsers.add_parser(
        "dbt",
        parents=[common, warehouse_file],
        help="run dbt (build, test, docs ...) on the local warehouse",
        description=(
            "Run any dbt command on the bundled dbt project (dbt/) and profile, target local, against the "
            "warehouse at --duckdb_path; dbt's state and logs go to dbt/ beside the warehouse file. "
            "Examples: `dbt build`, `dbt build --select fct_orders+ --full-refresh`, `dbt docs generate`, "
            "`dbt docs serve --port 8081`. Everything after COMMAND is dbt's."
        ),
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="COMMAND ...", help="a dbt command and its options")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((arg for arg in argv if not arg.startswith("-")), None))
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("batch", "stream", "replay"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # What the command does not know itself goes to Beam, whose options are underscored.
    args.pipeline_args = beam_style(extra)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # Beam logs a failing step's traceback before it re-raises; the command reports the error in one line.
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    commands: dict[str, Callable[..., int]] = {
        "generate": _cmd_generate,
        "batch": _cmd_batch,
        "stream": _cmd_stream,
        "replay": _cmd_replay,
        "demo": _cmd_demo,
        "dashboard": _cmd_dashboard,
        "dbt": _cmd_dbt,
    }
    try:
        return commands[args.command](args)
    except UserError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in _LOCAL_EXTRAS:
            raise
        print(
            f"{_PROG}: error: {args.command} needs the local extras: pip install 'beam-ecommerce[local]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
