"""The command line's grammar: every command, its options and their checks; no command's work."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from beam_ecommerce import __version__
from beam_ecommerce.cli.errors import PROG
from beam_ecommerce.flags import ArgumentParser, BothSpellings, beam_style
from beam_ecommerce.local_defaults import DEFAULT_WAREHOUSE, EMULATOR_PROJECT, EMULATOR_TOPIC

Number = TypeVar("Number", int, float)


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


@dataclass(frozen=True)
class Argument:
    """One option or positional, as ``add_argument`` takes it: its names and its settings."""

    names: tuple[str, ...]
    settings: Mapping[str, Any]


def _argument(*names: str, **settings: Any) -> Argument:
    return Argument(names, settings)


@dataclass(frozen=True)
class Group:
    """Arguments the help lists under a heading of their own."""

    title: str
    arguments: tuple[Argument, ...]


@dataclass(frozen=True)
class Command:
    """A command as data: its line in the list of commands, its own help, and what it takes.

    ``pipeline_options`` (the pipeline commands): the ``PipelineOptions`` classes whose options
    the command takes, the names its Flex Template takes too. It is called only for the command
    being parsed: the classes import Beam, which would cost every other command (``generate``
    above all) a second and a half. ``warehouse_file``: the command takes ``--duckdb_path``.
    """

    name: str
    summary: str
    description: str
    arguments: tuple[Argument | Group, ...] = ()
    pipeline_options: Callable[[], tuple] | None = None
    warehouse_file: bool = False


def _generator_arguments(format_default: str | None = "jsonl") -> tuple[Argument, ...]:
    """The generator's settings: ``generate``'s and the demo's."""
    return (
        _argument("--num-events", type=_positive_int, default=100_000, help="records to write"),
        _argument("--seed", type=int, default=42, help="random seed: same seed, same bytes (default 42)"),
        _argument(
            "--invalid-rate", type=_rate, default=0.02, help="fraction of deliberately malformed records (default 0.02)"
        ),
        _argument(
            "--duplicate-rate", type=_rate, default=0.01, help="fraction of re-sent duplicate records (default 0.01)"
        ),
        _argument("--days", type=_positive_int, default=14, help="days the events spread over (default 14)"),
        _argument(
            "--format",
            choices=("jsonl", "csv"),
            default=format_default,
            help=f"file format (default {format_default or 'jsonl; csv with --gcs-upload'})",
        ),
        _argument("--gzip", action="store_true", help="gzip the files"),
    )


def _page_arguments(open_help: str, snapshot_help: str) -> tuple[Argument, ...]:
    """``--open`` and ``--snapshot``: what ``demo`` and ``dashboard`` do with the dashboard page."""
    return (
        _argument("--open", action="store_true", help=open_help),
        _argument("--snapshot", metavar="FILE", help=snapshot_help),
    )


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


COMMANDS = (
    Command(
        "generate",
        summary="write realistic shop events to files",
        description="Write realistic, deterministic shop events (sessions, carts, orders, payments, status changes) "
        "with deliberately malformed records and duplicates, plus a _manifest.json of what was written.",
        arguments=(
            *_generator_arguments(format_default=None),
            Group(
                "destination (one of them; with none: the platform's topic if GOOGLE_CLOUD_PROJECT is set, "
                "else data/landing)",
                (
                    _argument("--output", help="a folder or gs:// prefix"),
                    _argument(
                        "--pubsub-topic",
                        help="publish to projects/P/topics/T (default with GOOGLE_CLOUD_PROJECT=P: "
                        "beam-ecommerce-events)",
                    ),
                    _argument(
                        "--gcs-upload",
                        action="store_true",
                        help="CSV files into the landing bucket, where the batch DAG reads day DATE: "
                        "gs://BUCKET/PREFIX/dt=DATE/",
                    ),
                    _argument(
                        "--gcs-bucket",
                        help="the landing bucket (default with GOOGLE_CLOUD_PROJECT=P: P-beam-ecommerce-landing)",
                    ),
                    _argument("--gcs-prefix", default="landing", help="prefix inside the bucket (default landing)"),
                    _argument(
                        "--date",
                        type=date.fromisoformat,
                        help="the DAG's day the upload is for, YYYY-MM-DD (default today, UTC)",
                    ),
                ),
            ),
            _argument("--overwrite", action="store_true", help="replace event files already in the output"),
            _argument("--rate", type=float, default=None, help="messages per second when publishing (default: max)"),
        ),
    ),
    Command(
        "batch",
        summary="run the batch pipeline over event files",
        description="Run the batch pipeline: files -> parse, validate, enrich -> warehouse + dead letter. "
        "Any other Beam option (--runner, --project, --region, --temp-location, ...) is passed to Beam.",
        pipeline_options=_batch_options,
    ),
    Command(
        "stream",
        summary="run the streaming pipeline from Pub/Sub",
        description="Run the streaming pipeline: Pub/Sub -> parse, validate, enrich, dedupe -> warehouse + dead "
        "letter, until Ctrl-C (or --duration). With --emulator it starts Google's Pub/Sub emulator locally "
        f"(project {EMULATOR_PROJECT}, topic {EMULATOR_TOPIC}). Other Beam options are passed to Beam.",
        arguments=(
            _argument("--emulator", action="store_true", help="start a local Pub/Sub emulator and read from it"),
            _argument("--duration", type=float, default=None, help="stop after this many seconds"),
        ),
        pipeline_options=_stream_options,
    ),
    Command(
        "replay",
        summary="replay dead letters through the core into the warehouse",
        description="Replay dead letters (files, a gs:// prefix or the warehouse's dead_letter table), picked by "
        "stage, reason and time, optionally through a fix function, through the same parse, validate, enrich; load "
        "what passes, dead-letter what still fails, and remember what was replayed so that no replay loads it "
        "twice. With --sink bigquery it reads dead-letter files and loads BigQuery as the batch pipeline does (load "
        "jobs and a MERGE: a rerun adds nothing), on any runner, and keeps its attempts in a JSONL file beside its "
        "dead-letter files. Other Beam options (--runner, --project, --temp-location, ...) are passed to Beam.",
        arguments=(
            _argument(
                "--dry-run",
                action="store_true",
                help="run the same steps in this process, the --fix function included, and write nothing (no "
                "rows, dead letters, replay marks, files or run report); report what would pass and fail",
            ),
        ),
        pipeline_options=_replay_options,
    ),
    Command(
        "demo",
        summary="run the whole local platform in one command",
        description="Generate events, run the batch pipeline into the local DuckDB warehouse, reconcile and show "
        "the result. Each run starts from scratch: it replaces WORKDIR/landing and WORKDIR/warehouse.",
        arguments=(
            *_generator_arguments(),
            _argument("--workdir", default="demo", help="where the demo writes everything (default ./demo)"),
            _argument("--no-stream", action="store_true", help="leave out the streaming leg"),
            _argument("--stream-events", type=_positive_int, default=1000, help="events the streaming leg publishes"),
            _argument("--stream-rate", type=float, default=None, help="messages/s the streaming leg publishes"),
            *_page_arguments(
                "at the end, serve the dashboard and open the page in a browser",
                "at the end, write the dashboard as one static HTML file",
            ),
        ),
    ),
    Command(
        "dashboard",
        summary="serve the analytics dashboard of the local warehouse",
        description="Serve a page on the dbt marts of the local DuckDB warehouse (revenue, orders, funnel, top "
        "products, dead letters, pipeline freshness) that follows new loads without a restart; the file is only "
        "read, a moment per refresh. With --snapshot, write the page as one static HTML file instead.",
        arguments=(
            _argument(
                "--host",
                default="127.0.0.1",
                help="address to serve on (default 127.0.0.1); any other than loopback exposes the data to the network",
            ),
            _argument(
                "--allow-host",
                action="append",
                default=[],
                metavar="NAME",
                help="a name browsers may use to reach the page besides localhost, --host and IP addresses "
                "(repeatable); requests for any other name are refused, against DNS rebinding",
            ),
            _argument("--port", type=_port, default=8050, help="port (default 8050; 0 picks a free one)"),
            *_page_arguments("open the page in a browser", "write a static HTML snapshot to FILE and exit"),
        ),
        warehouse_file=True,
    ),
    Command(
        "dbt",
        summary="run dbt (build, test, docs ...) on the local warehouse",
        description="Run any dbt command on the bundled dbt project (dbt/) and profile, target local, against the "
        "warehouse at --duckdb_path; dbt's state and logs go to dbt/ beside the warehouse file. "
        "Examples: `dbt build`, `dbt build --select fct_orders+ --full-refresh`, `dbt docs generate`, "
        "`dbt docs serve --port 8081`. Everything after COMMAND is dbt's.",
        arguments=(
            _argument(
                "dbt_args", nargs=argparse.REMAINDER, metavar="COMMAND ...", help="a dbt command and its options"
            ),
        ),
        warehouse_file=True,
    ),
)
"""Every command, in the order the help lists them."""
PIPELINE_COMMANDS = tuple(command.name for command in COMMANDS if command.pipeline_options is not None)
"""Commands that pass the options they do not know on to Beam."""


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
    for spec in COMMANDS:
        parents = [common, warehouse_file] if spec.warehouse_file else [common]
        subparser = subparsers.add_parser(spec.name, parents=parents, help=spec.summary, description=spec.description)
        if spec.pipeline_options is not None:
            _add_pipeline_options(subparser, spec.pipeline_options() if command in (None, spec.name) else ())
        for item in spec.arguments:
            _add(subparser, item)
    return parser


def _add_pipeline_options(parser: argparse.ArgumentParser, option_classes: tuple) -> None:
    """A pipeline's options as the command's, remembered by name (``pipeline_dests``) to pass on to it."""
    options = BothSpellings(parser.add_argument_group("pipeline options (also the Flex Template's parameters)"))
    for options_class in option_classes:
        options_class._add_argparse_args(options)
    parser.set_defaults(pipeline_dests=[action.dest for action in options._group_actions])


def _add(parser: argparse.ArgumentParser, item: Argument | Group) -> None:
    if isinstance(item, Group):
        group = BothSpellings(parser.add_argument_group(item.title))
        for argument in item.arguments:
            group.add_argument(*argument.names, **argument.settings)
    else:
        parser.add_argument(*item.names, **item.settings)


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
