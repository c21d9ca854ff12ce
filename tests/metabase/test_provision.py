"""Metabase as code, against a fake of Metabase's REST API (``fake_metabase``).

Metabase itself cannot run here (a JVM server with an application database), so these
tests use a stateful fake that follows Metabase's documented API; the questions' SQL is
checked for real, on DuckDB marts with the contract's columns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import duckdb
import pytest

from beam_ecommerce.metabase import BigQueryConnection, MetabaseClient, MetabaseError, provision
from beam_ecommerce.metabase.__main__ import main
from beam_ecommerce.metabase.spec import DASHBOARD, DATABASE, QUESTIONS
from tests.dashboard.warehouse_fixture import make_warehouse
from tests.metabase.fake_metabase import PASSWORD, REDACTED, USERNAME, FakeMetabase

CONNECTION = BigQueryConnection("shop-prod-1", "analytics_marts", '{"type": "service_account"}')


@pytest.fixture
def fake() -> Iterator[FakeMetabase]:
    server = FakeMetabase()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _client(fake: FakeMetabase) -> MetabaseClient:
    client = MetabaseClient(fake.url)
    client.login(USERNAME, PASSWORD)
    return client


def test_first_run_creates_the_connection_questions_and_dashboard(fake):
    dashboard_id, report = provision(_client(fake), CONNECTION)
    state = fake.state
    assert report.changed
    assert [action for _, _, action in report.actions] == ["created"] * (3 + len(QUESTIONS))

    (database,) = state.databases.values()
    assert database["engine"] == "bigquery-cloud-sdk"
    assert database["details"] == {
        "project-id": "shop-prod-1",
        "service-account-json": '{"type": "service_account"}',
        "dataset-filters-type": "inclusion",
        "dataset-filters-patterns": "analytics_marts",
    }
    database_id = next(iter(state.databases))
    assert {card["name"] for card in state.cards.values()} == {q.name for q in QUESTIONS}
    for card in state.cards.values():
        query = card["dataset_query"]
        assert query["type"] == "native" and query["database"] == database_id
        assert "`shop-prod-1.analytics_marts`." in query["native"]["query"]

    dashboard = state.dashboards[dashboard_id]
    assert dashboard["name"] == DASHBOARD
    assert sorted(d["card_id"] for d in dashboard["dashcards"]) == sorted(state.cards)
    # The personal collection of the same name was left alone.
    assert all(card["collection_id"] == dashboard["collection_id"] != 1 for card in state.cards.values())


def test_second_run_changes_nothing(fake):
    first_id, _ = provision(_client(fake), CONNECTION)
    fake.state.calls.clear()
    second_id, report = provision(_client(fake), CONNECTION)
    assert second_id == first_id
    assert not report.changed
    assert fake.state.changes() == []


def test_drift_is_put_back_in_place_keeping_ids(fake):
    dashboard_id, _ = provision(_client(fake), CONNECTION)
    state = fake.state
    card_id = next(i for i, c in state.cards.items() if c["name"] == "Top products")
    state.cards[card_id]["dataset_query"]["native"]["query"] = "SELECT 1"
    dashcards = state.dashboards[dashboard_id]["dashcards"]
    dashcard_ids = sorted(d["id"] for d in dashcards)
    dashcards[0]["row"] = 40
    del dashcards[-1]
    state.calls.clear()

    again, report = provision(_client(fake), CONNECTION)
    assert again == dashboard_id
    assert [(c.method, c.path) for c in state.changes()] == [
        ("PUT", f"/api/card/{card_id}"),
        ("PUT", f"/api/dashboard/{dashboard_id}"),
    ]
    assert "ORDER BY units DESC" in fake.card_sql(card_id)
    restored = state.dashboards[dashboard_id]["dashcards"]
    assert len(restored) == len(QUESTIONS)
    # The four dashcards still there kept their ids; the removed one came back as a new one.
    assert len(set(dashcard_ids) & {d["id"] for d in restored}) == len(QUESTIONS) - 1
    assert ("question", "Top products", "updated") in report.actions


def test_a_changed_dataset_updates_the_connection(fake):
    provision(_client(fake), CONNECTION)
    fake.state.calls.clear()
    moved = BigQueryConnection(CONNECTION.project, "prod_marts", CONNECTION.service_account_json)
    _, report = provision(_client(fake), moved)
    (database_id,) = fake.state.databases
    assert ("PUT", f"/api/database/{database_id}") in [(c.method, c.path) for c in fake.state.changes()]
    assert fake.state.databases[database_id]["details"]["dataset-filters-patterns"] == "prod_marts"
    assert ("database", DATABASE, "updated") in report.actions
    assert all("`shop-prod-1.prod_marts`" in fake.card_sql(i) for i in fake.state.cards)


def test_secrets_are_not_compared_since_metabase_never_returns_them(fake):
    provision(_client(fake), CONNECTION)
    listed = _client(fake).get("/api/database")["data"][0]
    assert listed["details"]["service-account-json"] == REDACTED
    fake.state.calls.clear()
    provision(_client(fake), CONNECTION)
    assert fake.state.changes() == []


def test_a_wrong_password_is_a_clear_error(fake):
    with pytest.raises(MetabaseError, match="HTTP 401"):
        MetabaseClient(fake.url).login(USERNAME, "wrong")


def test_unreachable_metabase_is_a_clear_error():
    with pytest.raises(MetabaseError, match="cannot reach Metabase"):
        MetabaseClient("http://127.0.0.1:9").get("/api/database")


def test_the_questions_run_on_the_marts_columns(tmp_path):
    con = duckdb.connect(make_warehouse(str(tmp_path / "w.duckdb")), read_only=True)
    try:
        results = {q.name: con.execute(q.query("marts")).fetchall() for q in QUESTIONS}
    finally:
        con.close()
    assert results["Daily net revenue (EUR)"][0][1] == 650.0
    assert results["Conversion funnel"] == [("view", 270), ("cart", 105), ("order", 27), ("payment", 24)]
    assert results["Top products"][0][:3] == ("USB-C Cable", "electronics", 5)
    assert results["Live: the last hour per minute"] == []  # no stream in this warehouse
    assert ("books", "delivered", 2) in results["Orders by category and status"]
    assert results["Dead letters by stage and reason"][0][1:] == ("parse: invalid_json", 3)


def test_command_line_provisions_and_reports(fake, tmp_path, monkeypatch, capsys):
    key = tmp_path / "key.json"
    key.write_text(CONNECTION.service_account_json)
    monkeypatch.setenv("MB_PASSWORD", PASSWORD)
    monkeypatch.delenv("MB_API_KEY", raising=False)
    monkeypatch.delenv("BEAM_ECOMMERCE_BQ_DATASET", raising=False)
    argv = ["--url", fake.url, "--username", USERNAME, "--project", "shop-prod-1", "--service-account-file", str(key)]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "created   dashboard" in first and f"{fake.url}/dashboard/" in first
    assert main(argv) == 0
    assert "(nothing changed)" in capsys.readouterr().out
    (database,) = fake.state.databases.values()
    assert database["details"]["dataset-filters-patterns"] == "analytics_marts"

    monkeypatch.setenv("MB_PASSWORD", "wrong")
    assert main(argv) == 1
    assert "HTTP 401" in capsys.readouterr().err
