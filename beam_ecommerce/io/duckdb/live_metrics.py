"""The local sink of ``LiveMetrics``: each pane upserted into the warehouse's ``live_metrics`` table.

One row per (window start, category, currency). A pane replaces the row when its index
is newer than the row's, or when it comes from another run (a restarted stream starts
its panes again at 0): a late pane corrects the row, a replayed pane changes nothing.
Each bundle's panes go through a temporary table into one statement, in the
pipeline's process, waiting for the file as the stream's raw loads do (up to the
warehouse's lock timeout; past it the bundle's panes are skipped and counted, since the
next pane of each window carries its whole value). (Not a
registered Arrow table: with other threads writing the same file, DuckDB's Python
client sometimes failed to find its Arrow scan, and the failed bundle stopped the stream.)
"""

from __future__ import annotations

import logging
import threading

import apache_beam as beam
import duckdb

from beam_ecommerce import metrics
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseError, WarehouseLocked, rollback
from beam_ecommerce.records import Row
from beam_ecommerce.schemas import LIVE_METRICS

_KEY = ", ".join(f'"{name}"' for name in LIVE_METRICS.primary_key)
_COLUMNS = ", ".join(f'"{name}"' for name in LIVE_METRICS.column_names)
_UPDATES = ", ".join(
    f'"{name}" = excluded."{name}"' for name in LIVE_METRICS.column_names if name not in LIVE_METRICS.primary_key
)
_STAGE = f'CREATE TEMP TABLE panes AS FROM "{LIVE_METRICS.name}" LIMIT 0'
_STAGE_ROW = f"INSERT INTO panes ({_COLUMNS}) VALUES ({', '.join('?' for _ in LIVE_METRICS.column_names)})"
_UPSERT = f"""
INSERT INTO "{LIVE_METRICS.name}" ({_COLUMNS}) SELECT {_COLUMNS} FROM panes
ON CONFLICT ({_KEY}) DO UPDATE SET {_UPDATES}
WHERE excluded.pane_index > "{LIVE_METRICS.name}".pane_index OR excluded.run_id <> "{LIVE_METRICS.name}".run_id
"""


# The local runner finishes bundles on several threads; two upserts of one key at once
# would conflict in DuckDB (optimistic concurrency) and fail their bundles, so the
# pipeline's process runs one upsert at a time.
_ONE_UPSERT_AT_A_TIME = threading.Lock()
CONFLICT_RETRIES = 5
# Panes not written because the warehouse stayed locked past its timeout (the next pane carries them).
LIVE_PANES_SKIPPED = "live_metrics_panes_skipped"

_LOGGER = logging.getLogger(__name__)


def newest_panes(rows: list[Row]) -> list[Row]:
    """One row per key, its newest pane: one statement may not update a row twice."""
    newest: dict[tuple, Row] = {}
    for row in rows:
        key = tuple(row[name] for name in LIVE_METRICS.primary_key)
        if key not in newest or row["pane_index"] >= newest[key]["pane_index"]:
            newest[key] = row
    return list(newest.values())


def create_live_metrics(con: duckdb.DuckDBPyConnection) -> None:
    """Creates ``live_metrics`` if the warehouse lacks it (once, before the upserts)."""
    con.execute(LIVE_METRICS.duckdb_ddl())


def upsert_live_metrics(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    """Upserts ``live_metrics`` rows in one transaction, again if a concurrent writer conflicted.

    DuckDB's concurrency is optimistic: a transaction that meets another one's catalog or
    row change fails and is retried here, up to ``CONFLICT_RETRIES`` times.
    """
    panes = [tuple(row[name] for name in LIVE_METRICS.column_names) for row in newest_panes(rows)]
    for attempt in range(CONFLICT_RETRIES + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(_STAGE)
            con.executemany(_STAGE_ROW, panes)
            con.execute(_UPSERT)
            con.execute("DROP TABLE panes")
            con.execute("COMMIT")
            return
        except duckdb.TransactionException as conflict:
            rollback(con)
            if attempt == CONFLICT_RETRIES:
                raise WarehouseError(f"upserting {len(rows)} live_metrics rows kept conflicting: {conflict}") from None
        except duckdb.Error as error:
            rollback(con)
            raise WarehouseError(
                f"upserting {len(rows)} live_metrics rows failed, nothing was written: {error}"
            ) from None


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
        rows, self._rows = self._rows, []
        with _ONE_UPSERT_AT_A_TIME:
            try:
                con = self.warehouse.connect(wait_for_lock=self.warehouse.lock_timeout_seconds)
            except WarehouseLocked as locked:
                # Figures, not records: a pane carries its window's whole value so far, so the next
                # one corrects the row; failing the stream here would stall its raw loads too.
                metrics.counter(LIVE_PANES_SKIPPED).inc(len(rows))
                _LOGGER.warning("skipped %d live_metrics panes: %s", len(rows), locked)
                return
            try:
                upsert_live_metrics(con, rows)
            finally:
                con.close()


class WriteLiveMetricsToDuckDB(beam.PTransform):
    """``LiveMetrics`` rows -> the local warehouse's ``live_metrics``, upserted per bundle."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        super().__init__()
        self.warehouse = warehouse

    def expand(self, rows):
        # Once, as the pipeline is built (the DuckDB file is on this machine, as warehouse_sink's
        # prepare() is): the local runner sets a DoFn up again for every bundle, and a setup that
        # waited for a locked file would stall each of them.
        con = self.warehouse.connect(wait_for_lock=self.warehouse.lock_timeout_seconds)
        try:
            create_live_metrics(con)
        finally:
            con.close()
        return rows | "UpsertEachBundle" >> beam.ParDo(_UpsertEachBundle(self.warehouse))
