"""The served page, its JSON and the snapshot, and its defences, over real HTTP and sockets on a free port."""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_ecommerce import cli
from beam_ecommerce.dashboard import DashboardServer, DuckDBReader, write_snapshot
from beam_ecommerce.dashboard.page import PLOTLY_JS_ROUTE
from beam_ecommerce.dashboard.server import host_allowed
from tests.commands import cli_command
from tests.dashboard.warehouse_fixture import insert_raw_events, make_warehouse


@contextmanager
def _serving(path: str, **options) -> Iterator[DashboardServer]:
    """The dashboard of the warehouse at ``path`` on a free port, served from a thread within the block."""
    served = DashboardServer(DuckDBReader(path, lock_wait_seconds=0.2), port=0, **options)
    served.start()
    try:
        yield served
    finally:
        served.shutdown()
        served.server_close()


@pytest.fixture
def server(warehouse) -> Iterator[DashboardServer]:
    with _serving(warehouse) as served:
        yield served


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def _api(server: DashboardServer, query: str = "") -> tuple[int, dict]:
    status, content_type, body = _get(f"{server.url}api/dashboard?{query}")
    assert content_type == "application/json"
    return status, json.loads(body)


def test_page_loads_plotly_from_the_server_not_the_network(server):
    status, content_type, body = _get(server.url)
    page = body.decode()
    assert status == 200 and content_type.startswith("text/html")
    assert f'<script src="{PLOTLY_JS_ROUTE}"></script>' in page
    assert "https://" not in page and "http://" not in page
    status, content_type, script = _get(server.url + PLOTLY_JS_ROUTE)
    assert status == 200 and content_type.startswith("text/javascript")
    assert b"plotly.js v" in script[:200]


def test_api_answers_data_and_one_figure_per_chart(server):
    status, data = _api(server, "category=books")
    assert status == 200 and data["status"] == "ok"
    assert data["filters"] == {"start": None, "end": None, "category": "books"}
    assert data["kpis"]["net_revenue_eur"]["text"] == "€260"
    assert set(data["figures"]) == {"revenue", "orders", "funnel", "top_products", "dead_letters"}
    revenue = data["figures"]["revenue"]["data"][0]
    assert revenue["type"] == "scatter"
    assert list(revenue["y"]) == [200.0, 60.0]
    orders = data["figures"]["orders"]["data"]
    assert {trace["name"] for trace in orders} == {"delivered", "shipped", "placed"}


def test_filters_matching_nothing_draw_an_empty_chart_with_a_note(server):
    _, data = _api(server, "start=2030-01-01")
    layout = data["figures"]["revenue"]["layout"]
    assert data["figures"]["revenue"]["data"] == []
    assert layout["annotations"][0]["text"] == "No rows for these filters"


def test_bad_filters_are_a_400_with_a_message(server):
    status, data = _api(server, "start=soon")
    assert status == 400 and data["status"] == "bad_request"
    assert "start must be a date" in data["message"]


def test_unknown_paths_are_404(server):
    status, _, _ = _get(server.url + "nothing-here")
    assert status == 404


def test_new_rows_show_on_the_next_request_without_a_restart(server, warehouse):
    _, before = _api(server)
    # The server holds nothing open between requests, so a writer gets the file at once.
    con = duckdb.connect(warehouse)
    insert_raw_events(
        con,
        [
            (
                "late-1",
                "page_view",
                1,
                "2026-11-05 08:00:00+00",
                "u",
                "s",
                "2026-11-05",
                "2026-11-05 08:00:01+00",
                "projects/p/subscriptions/s#9",
                "t",
                "stream-2",
            )
        ],
    )
    con.close()
    _, after = _api(server)
    assert after["freshness"]["events"] == before["freshness"]["events"] + 1


def test_missing_warehouse_is_a_message_not_an_error(tmp_path):
    with _serving(str(tmp_path / "none.duckdb")) as served:
        status, data = _api(served)
    assert status == 200 and data["status"] == "missing"
    assert "figures" not in data


def test_snapshot_is_one_self_contained_file(warehouse, tmp_path):
    path = write_snapshot(DuckDBReader(warehouse), tmp_path / "share" / "dashboard.html")
    page = path.read_text()
    assert PLOTLY_JS_ROUTE not in page
    assert "plotly.js v" in page
    assert '"net_revenue_eur":{"value":1210.0,"text":"€1,210"}' in page
    assert "window.SNAPSHOT = null" not in page


def test_cli_writes_a_snapshot(tmp_path, capsys):
    warehouse = make_warehouse(str(tmp_path / "w.duckdb"))
    target = tmp_path / "snap.html"
    assert cli.main(["dashboard", "--duckdb_path", warehouse, "--snapshot", str(target)]) == 0
    assert "wrote the dashboard" in capsys.readouterr().out
    assert "€1,210" in target.read_text()


def test_cli_refuses_a_port_in_use(server, capsys):
    port = server.server_address[1]
    assert cli.main(["dashboard", "--duckdb_path", "x.duckdb", "--port", str(port)]) == 2
    assert "try another --port" in capsys.readouterr().err


@pytest.mark.e2e
def test_demo_ends_with_the_dashboard_command_and_a_snapshot(demo_run):
    assert demo_run.exit_code == 0, demo_run.out
    assert f"dashboard: beam-ecommerce dashboard --duckdb_path {demo_run.warehouse}" in demo_run.out
    assert "http://127.0.0.1:8050/" in demo_run.out
    assert f"dashboard snapshot: {demo_run.snapshot}" in demo_run.out
    assert "Events in warehouse" in demo_run.snapshot.read_text()


def _status_for_host(server: DashboardServer, host: str) -> tuple[int, bytes]:
    """``GET /api/dashboard`` over a real connection, with ``host`` as its ``Host`` header."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        connection.request("GET", "/api/dashboard", headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _raw_exchange(server: DashboardServer, request: bytes) -> bytes:
    """Sends ``request`` as it is and reads until the server closes the connection."""
    with socket.create_connection(server.server_address[:2], timeout=30) as client:
        client.sendall(request)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LocalHost", "10.1.2.3"])
def test_requests_addressed_to_this_machine_are_answered(server, host):
    status, body = _status_for_host(server, host.format(port=server.server_address[1]))
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.parametrize(
    "host", ["rebound.example:{port}", "localhost.rebound.example", "rebound.example@127.0.0.1", "[::1", ""]
)
def test_requests_for_another_name_get_a_421_and_no_data(server, host):
    """DNS rebinding: a page of rebound.example, its name re-pointed at 127.0.0.1, sends its own name."""
    status, body = _status_for_host(server, host.format(port=server.server_address[1]))
    answer = json.loads(body)
    assert status == 421 and answer["status"] == "misdirected" and "kpis" not in answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/dashboard HTTP/1.0\r\n\r\n",
        b"GET /api/dashboard HTTP/1.0\r\nHost: localhost\r\nHost: rebound.example\r\n\r\n",
    ],
    ids=["no-host", "two-hosts"],
)
def test_a_request_without_exactly_one_host_gets_a_421(server, request_bytes):
    answer = _raw_exchange(server, request_bytes)
    assert answer.startswith(b"HTTP/1.1 421 ") and b'"kpis"' not in answer


def test_names_given_with_allow_host_are_answered(warehouse):
    with _serving(warehouse, allowed_hosts=["Shop-Dashboard.lan"]) as served:
        assert _status_for_host(served, f"shop-dashboard.lan:{served.server_address[1]}")[0] == 200
        assert _status_for_host(served, "other.lan")[0] == 421


def test_a_half_sent_request_is_closed_after_the_timeout_while_others_are_served(warehouse, capfd):
    with (
        _serving(warehouse, request_timeout=0.5) as served,
        socket.create_connection(served.server_address[:2], timeout=30) as stalled,
    ):
        stalled.sendall(b"GET /api/dashboard HTTP/1.1\r\nHost: local")
        assert _status_for_host(served, "localhost")[0] == 200, "another connection is served meanwhile"
        assert stalled.recv(65536) == b"", "the server closes the stalled connection, answering nothing"
    assert "Traceback" not in capfd.readouterr().err


class _Noted(logging.Handler):
    """Sets ``seen`` when a record whose message contains ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.lines.append(record.getMessage())
            self.seen.set()


def test_a_client_that_resets_the_connection_mid_response_is_one_line_not_a_traceback(server, caplog, capfd):
    """The client reads the start of plotly.js (megabytes), then resets: the server's write or next read fails."""
    caplog.set_level(logging.DEBUG, logger="beam_ecommerce.dashboard.server")
    noted = _Noted("went away")
    logging.getLogger("beam_ecommerce.dashboard.server").addHandler(noted)
    try:
        client = socket.create_connection(server.server_address[:2], timeout=30)
        client.sendall(f"GET /{PLOTLY_JS_ROUTE} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        assert client.recv(1024).startswith(b"HTTP/1.1 200 ")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends a reset
        client.close()
        assert noted.seen.wait(timeout=60), "the server noted the reset"
    finally:
        logging.getLogger("beam_ecommerce.dashboard.server").removeHandler(noted)
    assert len(noted.lines) == 1 and noted.lines[0].startswith("client 127.0.0.1 went away: ")
    assert "Traceback" not in capfd.readouterr().err
    assert _status_for_host(server, "localhost")[0] == 200, "and it goes on serving"


def test_serving_on_every_address_warns_on_stderr(warehouse, server):
    """The real command in its own process, stopped with Ctrl-C (SIGINT) once it has answered a request."""
    assert not server.exposed
    command = cli_command("dashboard", "--duckdb_path", warehouse)
    dashboard = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        url = dashboard.stdout.readline().split(" on ")[-1].split()[0]
        port = int(urlsplit(url).port)
        # Answered: it is serving (Ctrl-C before that would be an interrupted start, exit 130).
        assert _get(f"http://127.0.0.1:{port}/")[0] == 200
    finally:
        dashboard.send_signal(signal.SIGINT)
        _, err = dashboard.communicate(timeout=60)
    assert dashboard.returncode == 0
    (line,) = err.splitlines()
    assert line.startswith("beam-ecommerce: warning: serving on 0.0.0.0, not loopback: anyone who can reach")


# Generating from this regex once took 1.7 s on a busy machine: Hypothesis's wall-clock checks are not the test.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True),
    port=st.none() | st.integers(0, 65535),
)
def test_no_name_but_the_known_ones_passes_the_host_check(name, port):
    """Names are compared whole, whatever port follows; only localhost, the known names and IP addresses pass."""
    header = name if port is None else f"{name}:{port}"
    known = frozenset({"localhost", "shop.lan"})
    try:
        ipaddress.ip_address(name)
        expected = True
    except ValueError:
        expected = name in known
    assert host_allowed(header, known) is expected
    assert host_allowed(f"{name}.evil.example", known) is False


def test_a_request_trickled_a_byte_at_a_time_is_closed_at_its_deadline(warehouse, capfd):
    """A byte every 0.2 s never trips a timeout per read (1 s); the request's deadline (1 s in all) does."""
    with (
        _serving(warehouse, request_timeout=1.0) as served,
        socket.create_connection(served.server_address[:2], timeout=30) as trickle,
    ):
        trickle.sendall(b"GET /api/dashboard HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        for _ in range(600):  # 2 minutes of trickle at most
            readable, _, _ = select.select([trickle], [], [], 0.2)  # paces the bytes; wakes when it closes
            if readable:
                break
            trickle.sendall(b"a")
        assert readable and trickle.recv(65536) == b"", "the server closed it, answering nothing"
    assert "Traceback" not in capfd.readouterr().err
