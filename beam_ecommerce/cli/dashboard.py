"""``beam-ecommerce dashboard``: the analytics page of the local warehouse, served or as a snapshot."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_ecommerce.cli.errors import PROG, UserError

if TYPE_CHECKING:  # the dashboard needs the local extras: only when a command runs
    from beam_ecommerce.dashboard import WarehouseReader


def handle_dashboard(args: argparse.Namespace) -> int:
    from beam_ecommerce.dashboard import DuckDBReader, write_snapshot

    reader = DuckDBReader(args.duckdb_path)
    if args.snapshot:
        print(f"wrote the dashboard of {reader.describe()} to {write_snapshot(reader, args.snapshot)}")
        return 0
    return serve_dashboard(reader, args.host, args.port, args.open, args.allow_host)


def serve_dashboard(
    reader: WarehouseReader, host: str, port: int, open_browser: bool, allowed_hosts: Sequence[str] = ()
) -> int:
    """Serves until Ctrl-C, which is how a dashboard normally stops (so exit 0)."""
    import webbrowser

    from beam_ecommerce.dashboard import DashboardServer

    try:
        server = DashboardServer(reader, host, port, allowed_hosts)
    except OSError as error:
        raise UserError(f"cannot serve the dashboard on {host}:{port}: {error.strerror}; try another --port") from None
    if server.exposed:
        print(
            f"{PROG}: warning: serving on {server.server_address[0]}, not loopback: anyone who can reach this "
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
