"""Cost guardrails of the dbt project: a byte cap on every BigQuery target, and incremental
runs that bound raw_events' partition column with a literal date, which BigQuery prunes on.

`dbt compile --target bigquery` needs credentials and a reachable BigQuery, so the compiled
incremental SQL is shown on the local target: the bound is the same literal there (only
how the latest built day is looked up differs, and that lookup is in the macro, not the
compiled model). The BigQuery variant of the macro is checked by `dbt parse` offline.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from beam_ecommerce import dbt_project
from beam_ecommerce.dbt_project import PROFILES_DIR, PROJECT_DIR
from tests.conftest import copy_warehouse
from tests.dbt.conftest import Built

STAGING = "stg_ecommerce__events"


def _compiled(warehouse: Path, *extra: str) -> str:
    target = warehouse.parent / "dbt-target"
    outcome = dbt_project.invoke(["compile", "--select", STAGING, *extra], warehouse, target_path=target)
    assert outcome.success, outcome.exception
    (path,) = target.glob(f"compiled/**/{STAGING}.sql")
    return path.read_text()


def test_every_bigquery_target_caps_the_bytes_a_query_may_bill() -> None:
    outputs = yaml.safe_load((PROFILES_DIR / "profiles.yml").read_text())["beam_ecommerce"]["outputs"]
    bigquery = {name: output for name, output in outputs.items() if output["type"] == "bigquery"}
    assert set(bigquery) == {"bigquery", "bigquery_sa"}
    for name, output in bigquery.items():
        cap = output.get("maximum_bytes_billed", "")
        assert "BEAM_ECOMMERCE_BQ_MAXIMUM_BYTES_BILLED" in cap and "as_number" in cap, name
        assert re.search(r"'(\d+)'\)", cap) and int(re.search(r"'(\d+)'\)", cap).group(1)) <= 100 * 10**9, name


@pytest.mark.e2e
def test_an_incremental_run_reads_raw_events_from_a_literal_date(tiny_built: Built, tmp_path: Path) -> None:
    sql = _compiled(copy_warehouse(tiny_built.warehouse, tmp_path))  # dbt opens it read-write
    source = sql[sql.index("source as (") : sql.index("numbered as (")]
    # The latest built day is 2026-11-01; the default look-back is 3 days.
    assert "where event_date >= date '2026-10-29'" in source
    assert "select" not in source.split("where", 1)[1].split("and", 1)[0], "the partition bound is no subquery"
    staged = sql[sql.index("already_staged as (") :]
    assert "event_date >= date '2026-10-29'" in staged and "min(renamed.event_date)" not in staged


@pytest.mark.e2e
def test_a_late_backfill_widens_the_window_with_a_variable(tiny_built: Built, tmp_path: Path) -> None:
    sql = _compiled(copy_warehouse(tiny_built.warehouse, tmp_path), "--vars", '{raw_events_since: "2026-01-01"}')
    assert "where event_date >= date '2026-01-01'" in sql


def test_the_bigquery_lookup_reads_partition_metadata_not_the_table() -> None:
    macro = (PROJECT_DIR / "macros" / "incremental.sql").read_text()
    bigquery = macro[macro.index("{%- if target.type == 'bigquery' -%}", macro.index("macro raw_events_since")) :]
    bigquery = bigquery[: bigquery.index("{%- else -%}")]
    assert "INFORMATION_SCHEMA.PARTITIONS" in bigquery and "from {{ this }}" not in bigquery
