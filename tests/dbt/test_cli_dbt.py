"""`beam-ecommerce dbt ...` and the demo's dbt step, as a user meets them."""

from __future__ import annotations

import re

import pytest

from beam_ecommerce.cli import main
from tests.dbt.conftest import LOCAL_MODELS


@pytest.mark.e2e
def test_dbt_passes_any_command_through_with_the_bundled_project(tiny_warehouse, capsys):
    code = main(["dbt", "--duckdb_path", str(tiny_warehouse), "ls", "--resource-type", "model", "--output", "name"])
    out = capsys.readouterr().out
    assert code == 0
    assert {"fct_orders", "dm_daily_revenue", "stg_ecommerce__events"} <= set(out.split())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dbt"], "give a dbt command"),
        (["dbt", "--duckdb_path", "nowhere/ecommerce.duckdb", "build"], "no warehouse at nowhere/ecommerce.duckdb"),
    ],
)
def test_dbt_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.e2e
def test_the_demo_builds_the_marts_and_shows_daily_revenue(demo_run):
    out = demo_run.out
    assert demo_run.exit_code == 0, out
    assert re.search(rf"dbt build OK: {LOCAL_MODELS} models, 2 seeds, \d+ data tests, \d+ unit tests", out)
    table = out.split("revenue by order date")[1].splitlines()
    assert table[1].split() == ["date", "orders", "cancelled", "refunded", "net", "EUR"]
    rows = [line.split() for line in table[2:] if re.match(r"\s+\d{4}-\d\d-\d\d", line)]
    assert 1 <= len(rows) <= 7
    assert sum(int(row[1].replace(",", "")) for row in rows) > 0
