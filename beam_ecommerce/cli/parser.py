"""The command line's grammar: every command, its options and their checks; no command's work."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import date
from typing import TypeVar

from beam_ecommerce import __version__
from beam_ecommerce.cli.errors import PROG
from beam_ecommerce.flags import ArgumentParser, BothSpellings, beam_style
from beam_ecommerce.local_defaults import DEFAULT_WAREHOUSE, EMULATOR_PROJECT, EMULATOR_TOPIC

Number = TypeVar("Number", int, float)

PIPELINE_COMMANDS = ("batch", "stream", "replay")
"""Commands that pass the options they do not know on to Beam."""


def _checked(
    convert: Callable[[str], Number], noun: str, accepts: Callable[[Number], bool], rule: str
) -> Callable[[str], Number]:
    """An option's type: the text ``convert``-ed, then refused unless ``accepts``; each error names what was wrong."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {noun}: {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"{rule}: {value}")
        return value

    return parse


_positive_int = _checked(int, "a whole number", lambda value: value > 0, "must be positive")
_port = _checked(int, "a port number", lambda value: 0 <= value <= 65535, "must be 0 to 65535")
_rate = _checked(float, "a number", lambda value: 0.0 <= value < 1.0, "must be in [0, 1)")


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


def _command(
    subparsers, parents: list[argparse.ArgumentParser], name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    """The parser of command ``name``: ``summary`` in the list of commands, ``description`` in its own help."""
    return subparsers.add_parser(name, parents=parents, help=summary, description=description)


def _pipeline_parser(
    subparsers, common, name: str, summary: str, description: str, option_classes: Callable[[], tuple], chosen: bool
) -> argparse.ArgumentParser:
    """A command whose options are a pipeline's options (the names its Flex Template takes).

    ``option_classes`` is called only for the ``chosen`` command: the classes import Beam,
    which costs every other command (``generate`` above all) a second and a half.
    """
    parser = _command(subparsers, [common], name, summary, description)
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
        prog=PROG,
        description="E-commerce events on Apache Beam: generate them, run the batch and streaming pipelines and "
        "replays into the warehouse, model it with dbt, look at it on a dashboard, or all of it in one demo. "
        "Options are spelled with dashes "
        "(--num-events, --duckdb-path); Beam's spelling with underscores (--duckdb_path) works as well.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_generate(subparsers, common)
    _add_pipeline_commands(subparsers, common, command)
    _add_demo(subparsers, common)
    _add_dashboard(subparsers, [common, warehouse_file])
    _add_dbt(subparsers, [common, warehouse_file])
    return parser


def _add_generate(subparsers, common: argparse.ArgumentParser) -> None:
    """``generate``: the generator's settings and its one destination."""
    generate = _command(
        subparsers,
        [common],
        "generate",
        "write realistic shop events to files",
        "Write realistic, deterministic shop events (sessions, carts, orders, payments, status changes) with "
        "deliberately malformed records and duplicates, plus a _manifest.json of what was written.",
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


def _add_pipeline_commands(subparsers, common: argparse.ArgumentParser, command: str | None) -> None:
    """``batch``, ``stream`` and ``replay``: each a pipeline's options, and a few of the command's own."""
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
        f"(project {EMULATOR_PROJECT}, topic {EMULATOR_TOPIC}). Other Beam options are passed to Beam.",
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


def _add_demo(subparsers, common: argparse.ArgumentParser) -> None:
    """``demo``: the generator's settings, the streaming leg's and where to show the result."""
    demo = _command(
        subparsers,
        [common],
        "demo",
        "run the whole local platform in one command",
        "Generate events, run the batch pipeline into the local DuckDB warehouse, reconcile and show the result. "
        "Each run starts from scratch: it replaces WORKDIR/landing and WORKDIR/warehouse.",
    )
    _add_generator_arguments(demo, 100_000)
    demo.add_argument("--workdir", default="demo", help="where the demo writes everything (default ./demo)")
    demo.add_argument("--no-stream", action="store_true", help="leave out the streaming leg")
    demo.add_argument("--stream-events", type=_positive_int, default=1000, help="events the streaming leg publishes")
    demo.add_argument("--stream-rate", type=float, default=None, help="messages/s the streaming leg publishes")
    _add_page_arguments(
        demo, "at the end, serve the dashboard and ", "at the end, write the dashboard as one static HTML file"
    )


def _add_page_arguments(parser: argparse.ArgumentParser, open_prefix: str, snapshot_help: str) -> None:
    """``--open`` and ``--snapshot``: what ``demo`` and ``dashboard`` do with the dashboard page."""
    parser.add_argument("--open", action="store_true", help=f"{open_prefix}open the page in a browser")
    parser.add_argument("--snapshot", metavar="FILE", help=snapshot_help)


def _add_dashboard(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """``dashboard``: where to serve the page, or a snapshot."""
    dashboard = _command(
        subparsers,
        parents,
        "dashboard",
        "serve the analytics dashboard of the local warehouse",
        "Serve a page on the dbt marts of the local DuckDB warehouse (revenue, orders, funnel, top products, "
        "dead letters, pipeline freshness) that follows new loads without a restart; the file is only "
        "read, a moment per refresh. With --snapshot, write the page as one static HTML file instead.",
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
    _add_page_arguments(dashboard, "", "write a static HTML snapshot to FILE and exit")


def _add_dbt(subparsers, parents: list[argparse.ArgumentParser]) -> None:
    """``dbt``: everything after the command is dbt's."""
    dbt = _command(
        subparsers,
        parents,
        "dbt",
        "run dbt (build, test, docs ...) on the local warehouse",
        "Run any dbt command on the bundled dbt project (dbt/) and profile, target local, against the "
        "warehouse at --duckdb_path; dbt's state and logs go to dbt/ beside the warehouse file. "
        "Examples: `dbt build`, `dbt build --select fct_orders+ --full-refresh`, `dbt docs generate`, "
        "`dbt docs serve --port 8081`. Everything after COMMAND is dbt's.",
    )
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="COMMAND ...", help="a dbt command and its options")


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; ``pipeline_argv`` holds a pipeline command's options for its pipeline
    (its own, then the rest, passed on to Beam in Beam's underscored spelling)."""
    parser = build_parser(next((arg for arg in argv if not arg.startswith("-")), None))
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in PIPELINE_COMMANDS:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    own = [
        f"--{dest}={getattr(args, dest)}"
        for dest in getattr(args, "pipeline_dests", ())
        if getattr(args, dest) is not None
    ]
    args.pipeline_argv = own + beam_style(extra)
    return args
