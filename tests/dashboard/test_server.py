"""The served page, its JSON and the snapshot, over real HTTP on a free port."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import duckdb
import pytest

from beam_ecommerce import cli
from beam_ecommerce.dashboard import DashboardServer, DuckDBReader, write_snapshot
from beam_ecommerce.dashboard.page import PLOTLY_JS_ROUTE
from tests.dashboard.warehouse_fixture import insert_raw_events, make_warehouse


@pytest.fixture
def server(warehouse) -> Iterator[DashboardServer]:
    served = DashboardServer(DuckDBReader(warehouse, lock_wait_seconds=0.2), port=0)
    served.start()
    yield served
    served.shutdown()
    served.server_close()


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
    served = DashboardServer(DuckDBReader(str(tmp_path / "none.duckdb")), port=0)
    served.start()
    try:
        status, data = _api(served)
    finally:
        served.shutdown()
        served.server_close()
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
def test_demo_ends_with_the_dashboard_command_and_a_snapshot(tmp_path, capsys):
    snapshot = tmp_path / "share" / "dashboard.html"
    argv = ["demo", "-q", "--no-stream", "--num-events", "500", "--workdir", str(tmp_path / "demo")]
    assert cli.main([*argv, "--snapshot", str(snapshot)]) == 0
    out = capsys.readouterr().out
    warehouse = tmp_path / "demo" / "warehouse" / "ecommerce.duckdb"
    assert f"dashboard: beam-ecommerce dashboard --duckdb_path {warehouse}" in out
    assert "http://127.0.0.1:8050/" in out
    assert f"dashboard snapshot: {snapshot}" in out
    assert "Events in warehouse" in snapshot.read_text()
