"""``beam-ecommerce dbt``: any dbt command on the bundled project, against the local warehouse."""

from __future__ import annotations

import argparse
import os

from beam_ecommerce.cli.errors import PROG, UserError

# dbt commands that read no warehouse: they run without one.
_DBT_WITHOUT_WAREHOUSE = frozenset({"parse", "ls", "list", "clean", "deps", "--help", "-h", "--version"})


def handle_dbt(args: argparse.Namespace) -> int:
    from beam_ecommerce.dbt_project import invoke

    if not args.dbt_args:
        raise UserError("give a dbt command, e.g. `beam-ecommerce dbt build` or `beam-ecommerce dbt docs generate`")
    if args.dbt_args[0] not in _DBT_WITHOUT_WAREHOUSE and not os.path.isfile(args.duckdb_path):
        raise UserError(f"no warehouse at {args.duckdb_path}: run `{PROG} batch` or `{PROG} demo` first")
    outcome = invoke(args.dbt_args, args.duckdb_path, quiet=False)
    if outcome.exception is not None:
        first_line = next((line for line in str(outcome.exception).splitlines() if line.strip()), "")
        raise UserError(f"dbt {args.dbt_args[0]} could not run: {first_line.strip()}")
    return 0 if outcome.success else 1
