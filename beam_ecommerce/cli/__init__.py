"""The ``beam-ecommerce`` command line: a parser (``parser``) and one thin handler per command.

- ``generate``: realistic shop events to files, a ``gs://`` landing folder or a Pub/Sub topic
- ``batch``: the batch pipeline over event files into the warehouse
- ``stream``: the streaming pipeline from Pub/Sub (or a local emulator) into the warehouse
- ``replay``: dead letters back through the transform core into the warehouse
- ``demo``: the whole local platform in one command (``beam_ecommerce.demo.run``)
- ``dashboard``: the analytics page of the local warehouse
- ``dbt``: any dbt command on the bundled project against the local warehouse

Handlers only call the library and print; a problem the user can fix is one line on
stderr with exit 2. Each command imports what it needs when it runs: ``generate`` must
start without Beam, DuckDB or dbt.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from beam_ecommerce.cli.errors import PROG, UserError
from beam_ecommerce.cli.parser import build_parser, parse_command_line
from beam_ecommerce.collector import raise_collector_thresholds

__all__ = ["build_parser", "main"]

# Top-level modules of setup.py's "local" extra (dbt and the dashboard).
_LOCAL_EXTRAS = {"dbt", "plotly"}


# Each command's handler (module, function), imported only when the command runs.
_HANDLERS = {
    "generate": ("generate", "handle_generate"),
    "batch": ("pipelines", "handle_batch"),
    "stream": ("pipelines", "handle_stream"),
    "replay": ("pipelines", "handle_replay"),
    "demo": ("demo", "handle_demo"),
    "dashboard": ("dashboard", "handle_dashboard"),
    "dbt": ("dbt", "handle_dbt"),
}


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    module, function = _HANDLERS[command]
    return getattr(importlib.import_module(f"beam_ecommerce.cli.{module}"), function)


def main(argv: Sequence[str] | None = None) -> int:
    # Before Beam is imported: at the default thresholds its import alone ran three full
    # collections, 0.2 s of every pipeline command (benchmarks/README.md, session 8).
    raise_collector_thresholds()
    args = parse_command_line(sys.argv[1:] if argv is None else list(argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # Beam logs a failing step's traceback before it re-raises; the command reports the error in one line.
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    try:
        return _handler(args.command)(args)
    except UserError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in _LOCAL_EXTRAS:
            raise
        print(
            f"{PROG}: error: {args.command} needs the local extras: pip install 'beam-ecommerce[local]'",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
