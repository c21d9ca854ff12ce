"""The local sink of ``LiveMetrics``: each pane upserted into the warehouse's ``live_metrics`` table.

One row per (window start, category, currency). A pane replaces the row when its index
is newer than the row's, or when it comes from another run (a restarted stream starts
its panes again at 0): a late pane corrects the row, a replayed pane changes nothing.
Each bundle's panes go in as one Arrow table in one statement, in the pipeline's
process, waiting for the file as the stream's raw loads do.
"""

from __future__ import annotations

import apache_beam as beam
import duckdb
import pyarrow as pa

from beam_ecommerce.io.duckdb_warehouse import LOCK_WAIT_SECONDS, DuckDBWarehouse, WarehouseError, rollback
from beam_ecommerce.records import Row
from beam_ecommerce.schemas import LIVE_METRICS

_KEY = ", ".join(f'"{name}"' for name in LIVE_METRICS.primary_key)
_COLUMNS = ", ".join(f'"{name}"' for name in LIVE_METRICS.column_names)
_UPDATES = ", ".join(
    f'"{name}" = excluded."{name}"' for name in LIVE_METRICS.column_names if name not in LIVE_METRICS.primary_key
)
_UPSERT = f"""
INSERT INTO "{LIVE_METRICS.name}" ({_COLUMNS}) SELECT {_COLUMNS} FROM panes
ON CONFLICT ({_KEY}) DO UPDATE SET {_UPDATES}
WHERE excluded.pane_index > "{LIVE_METRICS.name}".pane_index OR excluded.run_id <> "{LIVE_METRICS.name}".run_id
"""


def newest_panes(rows: list[Row]) -> list[Row]:
    """One row per key, its newest pane: one statement may not update a row twice."""
    newest: dict[tuple, Row] = {}
    for row in rows:
        key = tuple(row[name] for name in LIVE_METRICS.primary_key)
        if key not in newest or row["pane_index"] >= newest[key]["pane_index"]:
            newest[key] = row
    return list(newest.values())


def upsert_live_metrics(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    """Upserts ``live_metrics`` rows (creating the table if needed) in one transaction."""
    panes = pa.Table.from_pylist(newest_panes(rows), schema=LIVE_METRICS.arrow_schema())
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(LIVE_METRICS.duckdb_ddl())
        con.register("panes", panes)
        con.execute(_UPSERT)
        con.unregister("panes")
        con.execute("COMMIT")
    except duckdb.Error as error:
        rollback(con)
        raise WarehouseError(f"upserting {len(rows)} live_metrics rows failed, nothing was written: {error}") from None


class _UpsertEachBundle(beam.DoFn):
    """Upserts the panes of one bundle when it ends."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse

    def start_bundle(self) -> None:
        self._rows: list[Row] = []

    def process(self, row: Row) -> None:
        self._rows.append(row)

    def finish_bundle(self) -> None:
        if not self._rows:
            return
        con = self.warehouse.connect(wait_for_lock=LOCK_WAIT_SECONDS)
        try:
            upsert_live_metrics(con, self._rows)
        finally:
            con.close()
        self._rows = []


class WriteLiveMetricsToDuckDB(beam.PTransform):
    """``LiveMetrics`` rows -> the local warehouse's ``live_metrics``, upserted per bundle."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        super().__init__()
        self.warehouse = warehouse

    def expand(self, rows):
        return rows | "UpsertEachBundle" >> beam.ParDo(_UpsertEachBundle(self.warehouse))
