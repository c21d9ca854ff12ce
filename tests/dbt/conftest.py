"""Warehouses for the dbt tests: generator data through the real batch pipeline, or a few rows by hand.

Every fixture writes under pytest's tmp folders and keeps dbt's target and log folders
beside its own warehouse, so parallel workers never share dbt state.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from beam_ecommerce import dbt_project
from beam_ecommerce.generator import GeneratorConfig, write_files
from beam_ecommerce.pipelines import batch
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS
from tests.conftest import built_once

# Two files: loaded one after the other, the second brings late status changes of the
# first's orders, as a later load would.
CONFIG = GeneratorConfig(num_events=20_000, seed=11)
# Models the local target builds: all but those enabled on BigQuery only.
BIGQUERY_ONLY_MODELS = frozenset(
    path.stem
    for path in (dbt_project.PROJECT_DIR / "models").rglob("*.sql")
    if "enabled=target.type == 'bigquery'" in path.read_text()
)
LOCAL_MODELS = sum(1 for _ in (dbt_project.PROJECT_DIR / "models").rglob("*.sql")) - len(BIGQUERY_ONLY_MODELS)
RECORDS_PER_FILE = 10_000


@dataclass(frozen=True)
class Landing:
    first: str
    second: str
    both: str


def _write_landing(folder: Path) -> None:
    write_files(CONFIG, str(folder), "jsonl", compress=False, progress=False, records_per_file=RECORDS_PER_FILE)


@pytest.fixture(scope="session")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Landing:
    """The generator's two files, written once per session (shared by the xdist workers)."""
    folder = built_once(tmp_path_factory, "dbt-landing", _write_landing)
    return Landing(
        str(folder / "events-00000.jsonl"), str(folder / "events-00001.jsonl"), str(folder / "events-*.jsonl")
    )


def load(pattern: str, warehouse: Path) -> None:
    """Runs the batch pipeline on ``pattern`` into ``warehouse``."""
    summary = batch.run(
        [f"--input={pattern}", f"--duckdb_path={warehouse}", f"--dead_letter_dir={warehouse.parent / 'dead_letter'}"]
    )
    assert summary.reconciles


@dataclass(frozen=True)
class Built:
    warehouse: Path
    result: dbt_project.DbtBuildResult


@pytest.fixture(scope="session")
def built(landing: Landing, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The generator's data set loaded by the batch pipeline, then `dbt build` on it; once per session.

    Tests read it (read-only connections); one that opens it read-write takes ``copy_warehouse``.
    """

    def load_and_build(folder: Path) -> None:
        warehouse = folder / "ecommerce.duckdb"
        load(landing.both, warehouse)
        (folder / "result.pickle").write_bytes(pickle.dumps(dbt_project.build(warehouse)))

    folder = built_once(tmp_path_factory, "dbt-built", load_and_build)
    return Built(folder / "ecommerce.duckdb", pickle.loads((folder / "result.pickle").read_bytes()))


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _write_tiny_warehouse(warehouse: Path) -> Path:
    """One user's visit and paid order, written straight into the pipeline's tables at ``warehouse``."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(RAW_EVENTS.duckdb_ddl())
        con.execute(DEAD_LETTER.duckdb_ddl())
        con.execute(
            """
            INSERT INTO raw_events BY NAME
            SELECT
                event_id, event_type, 1 AS schema_version,
                TIMESTAMPTZ '2026-11-01 10:00:00+00' + INTERVAL (minute) MINUTE AS occurred_at,
                'u1' AS user_id, 's1' AS session_id, 'SE' AS country, 'organic' AS signup_channel,
                CASE WHEN event_type != 'page_view' THEN 'o1' END AS order_id,
                CASE WHEN event_type = 'order_placed'
                     THEN [{'product_id': 'p1', 'product_category': 'books', 'unit_price': 57.0, 'quantity': 2}] END
                     AS items,
                CASE WHEN event_type IN ('order_placed', 'payment') THEN 'SEK' END AS currency,
                status,
                CASE WHEN event_type = 'payment' THEN 114.0 END AS amount,
                CASE WHEN event_type = 'payment' THEN 'pay1' END AS payment_id,
                CASE WHEN event_type = 'payment' THEN 'card' END AS payment_method,
                CASE WHEN event_type = 'payment' THEN 'succeeded' END AS payment_status,
                CASE WHEN event_type = 'page_view' THEN '/' END AS page_url,
                DATE '2026-11-01' AS event_date,
                CASE WHEN event_type = 'order_placed' THEN 114.0 END AS revenue,
                TIMESTAMPTZ '2026-11-01 11:00:00+00' AS ingested_at,
                'tiny.jsonl:' || minute AS source, 'test' AS pipeline_version, 'r1' AS run_id
            FROM (VALUES
                ('e1', 'page_view', NULL, 0),
                ('e2', 'order_placed', 'created', 1),
                ('e3', 'payment', NULL, 2),
                ('e4', 'order_status_changed', 'paid', 3)
            ) AS t(event_id, event_type, status, minute)
            """
        )
    finally:
        con.close()
    return warehouse


@pytest.fixture
def tiny_warehouse(tmp_path: Path) -> Path:
    """A warehouse with one user's visit and paid order, written straight into the pipeline's tables."""
    return _write_tiny_warehouse(tmp_path / "tiny.duckdb")


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The tiny warehouse after `dbt build`, once per session, dbt's target and logs beside it.

    Tests read it (read-only connections); one that writes or runs dbt again takes ``copy_warehouse``.
    """

    def write_and_build(folder: Path) -> None:
        warehouse = _write_tiny_warehouse(folder / "tiny.duckdb")
        (folder / "result.pickle").write_bytes(pickle.dumps(dbt_project.build(warehouse)))

    folder = built_once(tmp_path_factory, "dbt-tiny-built", write_and_build)
    return Built(folder / "tiny.duckdb", pickle.loads((folder / "result.pickle").read_bytes()))
