"""``python -m beam_ecommerce.metabase``: provision the starter dashboard in a Metabase.

Secrets come from the environment, never the command line (where ``ps`` and shell
history would keep them): the password from ``$MB_PASSWORD`` or an API key from
``$MB_API_KEY``; the service account's key is read from a file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from beam_ecommerce.metabase.client import MetabaseClient, MetabaseError
from beam_ecommerce.metabase.provision import provision
from beam_ecommerce.metabase.spec import BigQueryConnection


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m beam_ecommerce.metabase",
        description=(
            "Create or update, in place, the beam-ecommerce starter dashboard in Metabase: a BigQuery connection, "
            "five native-SQL questions on the dbt marts and one dashboard, in the collection 'beam-ecommerce'. "
            "Running it again changes nothing unless something drifted. Sign in with $MB_PASSWORD "
            "(and --username) or $MB_API_KEY."
        ),
    )
    parser.add_argument("--url", default=env("MB_URL"), help="Metabase's address (default $MB_URL)")
    parser.add_argument("--username", default=env("MB_USERNAME"), help="email to sign in with (default $MB_USERNAME)")
    parser.add_argument(
        "--project", default=env("BEAM_ECOMMERCE_GCP_PROJECT"), help="GCP project (default $BEAM_ECOMMERCE_GCP_PROJECT)"
    )
    parser.add_argument(
        "--marts-dataset",
        default=f"{env('BEAM_ECOMMERCE_BQ_DATASET', 'analytics')}_marts",
        help="BigQuery dataset dbt builds the marts in (default ${BEAM_ECOMMERCE_BQ_DATASET:-analytics}_marts)",
    )
    parser.add_argument(
        "--service-account-file",
        default=env("BEAM_ECOMMERCE_BQ_KEYFILE"),
        help="JSON key of a service account that can read the marts (default $BEAM_ECOMMERCE_BQ_KEYFILE)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    api_key, password = os.environ.get("MB_API_KEY"), os.environ.get("MB_PASSWORD")
    for value, name in (
        (args.url, "--url"),
        (args.project, "--project"),
        (args.service_account_file, "--service-account-file"),
    ):
        if not value:
            parser.error(f"{name} is required")
    if not api_key and not (password and args.username):
        parser.error("set $MB_API_KEY, or $MB_PASSWORD and --username")
    try:
        key = Path(args.service_account_file).read_text(encoding="utf-8")
    except OSError as error:
        parser.error(f"cannot read the service account key: {error}")
    client = MetabaseClient(args.url, api_key=api_key)
    try:
        if not api_key:
            client.login(args.username, password)
        dashboard_id, report = provision(client, BigQueryConnection(args.project, args.marts_dataset, key))
    except MetabaseError as error:
        print(f"metabase: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    print(f"dashboard: {client.url}/dashboard/{dashboard_id}" + ("" if report.changed else "  (nothing changed)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
