"""Side by side: the dashboard server's answers on a kept-alive connection, against Nagle's algorithm on.

    python -m benchmarks.dashboard_requests --requests 500

The baseline is the same server with ``disable_nagle_algorithm`` off, as it was before:
headers and body leave in two writes, and with Nagle's algorithm the body waits for the
client's delayed ACK. Both serve ``/`` (the page) and ``/api/dashboard`` (JSON, no
warehouse: the server's own cost, not DuckDB's) on one connection each, in alternating
rounds; the table shows the best round of each and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time

from beam_ecommerce.dashboard import DashboardServer, DuckDBReader, WarehouseReader

BASELINE = "baseline: Nagle on (before)"


def nagle_on(reader: WarehouseReader, port: int) -> DashboardServer:
    """The baseline: the dashboard server with Nagle's algorithm on its connections."""
    server = DashboardServer(reader, port=port)
    server.RequestHandlerClass = type("NagleOn", (server.RequestHandlerClass,), {"disable_nagle_algorithm": False})
    return server


def _seconds_per_request(server: DashboardServer, path: str, requests: int) -> float:
    server.start()
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        started = time.perf_counter()
        for _ in range(requests):
            connection.request("GET", path, headers={"Host": "localhost"})
            connection.getresponse().read()
        return (time.perf_counter() - started) / requests
    finally:
        connection.close()
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        reader = DuckDBReader(f"{folder}/none.duckdb")
        contenders = {BASELINE: nagle_on, "dashboard server": DashboardServer}
        print(f"{'path':<16}{'contender':<30}{'µs/request':>12}{'ratio':>8}")
        for path in ("/", "/api/dashboard"):
            best = {name: float("inf") for name in contenders}
            for _ in range(args.rounds):
                for name, serve in contenders.items():
                    seconds = _seconds_per_request(serve(reader, port=0), path, args.requests)
                    best[name] = min(best[name], seconds)
            baseline = best[BASELINE]
            for name, seconds in best.items():
                print(f"{path:<16}{name:<30}{seconds * 1e6:>12.0f}{seconds / baseline:>8.3f}")


if __name__ == "__main__":
    main()
