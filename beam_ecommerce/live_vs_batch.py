"""Do the two layers agree? ``live_metrics`` (the stream's speed layer) against the dbt marts.

A window the watermark has closed (its on-time pane has fired, maybe late ones since)
holds the stream's final figure for that minute, category and currency. After ``dbt
build`` the marts hold the same events, so they must give the same orders, gross
revenue and items (``fct_orders``), events (staging, an order under its ``fct_orders``
category) and dead letters (staging's dead letters), for the same minute and run.
Early panes are partial by design and are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from beam_ecommerce.io.duckdb.warehouse import LOCK_WAIT_SECONDS, DuckDBWarehouse
from beam_ecommerce.transforms.live_metrics import NONE

# Revenue is summed in floating point in two places, in a different order: equal to the cent.
REVENUE_TOLERANCE = 0.005

_COMPARE = f"""
WITH live AS (
    SELECT * FROM main.live_metrics WHERE pane_timing <> 'EARLY'
),
orders AS (
    SELECT date_trunc('minute', ordered_at) AS window_start, coalesce(product_category, '{NONE}') AS product_category,
           coalesce(currency, '{NONE}') AS currency, count(*) AS orders, sum(gross_revenue) AS gross_revenue,
           sum(items_count) AS items
    FROM marts.fct_orders
    WHERE date_trunc('minute', ordered_at) IN (SELECT window_start FROM live)
    GROUP BY ALL
),
events AS (
    SELECT date_trunc('minute', e.occurred_at) AS window_start, e.run_id,
           coalesce(CASE WHEN e.event_type = 'order_placed' THEN o.product_category ELSE e.product_category END,
                    '{NONE}') AS product_category,
           coalesce(e.currency, '{NONE}') AS currency, count(*) AS events
    FROM staging.stg_ecommerce__events AS e
    LEFT JOIN marts.fct_orders AS o ON e.event_type = 'order_placed' AND o.order_id = e.order_id
    WHERE date_trunc('minute', e.occurred_at) IN (SELECT window_start FROM live)
    GROUP BY ALL
),
dead_letters AS (
    SELECT date_trunc('minute', failed_at) AS window_start, run_id, count(*) AS dead_letters
    FROM staging.stg_ecommerce__dead_letters
    WHERE date_trunc('minute', failed_at) IN (SELECT window_start FROM live)
    GROUP BY ALL
)
SELECT
    count(*) AS compared,
    count(*) FILTER (
        WHERE live.orders <> coalesce(orders.orders, 0)
           OR abs(live.gross_revenue - coalesce(orders.gross_revenue, 0)) > {REVENUE_TOLERANCE}
           OR live.items <> coalesce(orders.items, 0)
           OR live.events <> coalesce(events.events, 0)
           OR live.dead_letters <> coalesce(dead_letters.dead_letters, 0)
    ) AS differing
FROM live
LEFT JOIN orders USING (window_start, product_category, currency)
LEFT JOIN events USING (window_start, run_id, product_category, currency)
LEFT JOIN dead_letters
    ON dead_letters.window_start = live.window_start AND dead_letters.run_id = live.run_id
   AND live.product_category = '{NONE}' AND live.currency = '{NONE}'
"""


@dataclass(frozen=True)
class LiveVsBatch:
    """How many closed windows were compared, and how many of them the marts disagree with."""

    compared: int
    differing: int

    def __str__(self) -> str:
        return f"live vs batch: {self.compared} windows compared, {self.differing} differ"


def compare_live_with_marts(duckdb_path: str) -> LiveVsBatch:
    """Compares the closed windows of ``live_metrics`` with the marts of the same warehouse (after dbt build).

    A warehouse no stream has written (no ``live_metrics`` table) has no window to compare.
    """
    con = DuckDBWarehouse(duckdb_path).connect(wait_for_lock=LOCK_WAIT_SECONDS)
    try:
        if not con.execute(
            "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'live_metrics'"
        ).fetchall():
            return LiveVsBatch(0, 0)
        compared, differing = con.execute(_COMPARE).fetchone()
    finally:
        con.close()
    return LiveVsBatch(int(compared), int(differing or 0))
