"""A small warehouse with the raw tables and the dbt marts' contract columns, by hand.

The values are chosen so that every number the dashboard shows can be worked out on
paper; the end-to-end test checks the same page against marts that dbt really built.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb

from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse

BATCH_RUN, STREAM_RUN = "20261104T100000Z-batch", "20261104T110000Z-stream"
BATCH_LOADED = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)
STREAM_LOADED = datetime(2026, 11, 4, 11, 5, tzinfo=UTC)

MARTS_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE marts.dm_daily_revenue (
  revenue_date DATE, product_category VARCHAR, currency VARCHAR, gross_revenue DOUBLE, refunds DOUBLE,
  net_revenue DOUBLE, net_revenue_eur DOUBLE, orders BIGINT, cancelled_orders BIGINT, refunded_orders BIGINT,
  average_order_value DOUBLE);
CREATE TABLE marts.fct_orders (
  order_id VARCHAR, user_id VARCHAR, ordered_at TIMESTAMPTZ, order_date DATE, currency VARCHAR,
  product_category VARCHAR, items_count BIGINT, gross_revenue DOUBLE, status VARCHAR,
  status_updated_at TIMESTAMPTZ, is_cancelled BOOLEAN, is_refunded BOOLEAN, paid_at TIMESTAMPTZ);
CREATE TABLE marts.fct_order_items (
  order_id VARCHAR, line_number BIGINT, product_id VARCHAR, product_category VARCHAR, unit_price DOUBLE,
  quantity BIGINT, line_revenue DOUBLE, order_date DATE, currency VARCHAR);
CREATE TABLE marts.dm_daily_funnel (
  funnel_date DATE, sessions_with_view BIGINT, sessions_with_cart BIGINT, sessions_with_order BIGINT,
  sessions_with_payment BIGINT, view_to_cart_rate DOUBLE, cart_to_order_rate DOUBLE, order_to_payment_rate DOUBLE);
CREATE TABLE marts.dm_dead_letters_daily (
  dead_letter_date DATE, stage VARCHAR, error_type VARCHAR, dead_letters BIGINT);
CREATE TABLE marts.dim_users (user_id VARCHAR, country VARCHAR, signup_channel VARCHAR);
CREATE TABLE marts.dim_products (
  product_id VARCHAR, product_name VARCHAR, product_category VARCHAR, list_price_eur DOUBLE, is_catalogued BOOLEAN,
  units_ordered BIGINT, orders BIGINT);
CREATE TABLE marts.live_minutes (
  minute_start TIMESTAMPTZ, orders BIGINT, revenue_eur DOUBLE, events BIGINT, events_per_second DOUBLE,
  dead_letters BIGINT, is_closed INTEGER);
CREATE TABLE marts.fct_sessions (session_id VARCHAR, user_id VARCHAR, session_date DATE);
"""

D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)

# (date, category, currency, gross, refunds, net, net_eur, orders, cancelled, refunded)
DAILY_REVENUE = [
    (D1, "books", "EUR", 100.0, 0.0, 100.0, 100.0, 2, 0, 0),
    (D1, "books", "USD", 110.0, 0.0, 110.0, 100.0, 1, 0, 0),
    (D1, "electronics", "EUR", 500.0, 50.0, 450.0, 450.0, 1, 0, 1),
    (D2, "books", "EUR", 60.0, 0.0, 60.0, 60.0, 1, 0, 0),
    (D2, "electronics", "USD", 330.0, 0.0, 330.0, 300.0, 1, 0, 0),
    (D3, "electronics", "EUR", 200.0, 0.0, 200.0, 200.0, 2, 1, 0),
]
# (order_id, date, category, status)
ORDERS = [
    ("o1", D1, "books", "delivered"),
    ("o2", D1, "books", "shipped"),
    ("o3", D1, "books", "delivered"),
    ("o4", D1, "electronics", "refunded"),
    ("o5", D2, "books", "placed"),
    ("o6", D2, "electronics", "shipped"),
    ("o7", D3, "electronics", "cancelled"),
    ("o8", D3, "electronics", "delivered"),
]
# (order_id, line, product_id, category, quantity)
ORDER_ITEMS = [
    ("o1", 1, "p-book-1", "books", 2),
    ("o2", 1, "p-book-1", "books", 1),
    ("o2", 2, "p-book-2", "books", 1),
    ("o3", 1, "p-book-2", "books", 1),
    ("o4", 1, "p-tv", "electronics", 1),
    ("o5", 1, "p-book-3", "books", 3),
    ("o6", 1, "p-phone", "electronics", 1),
    ("o7", 1, "p-phone", "electronics", 2),
    ("o8", 1, "p-cable", "electronics", 5),
]
# The catalogue's names (dim_products); p-book-3 is not catalogued and keeps its id.
PRODUCT_NAMES = {
    "p-book-1": "Quiet Harbor Novel",
    "p-book-2": "Green Valley Atlas",
    "p-tv": "Wide Screen Monitor",
    "p-phone": "Pocket Phone Charger",
    "p-cable": "USB-C Cable",
}
# (date, view, cart, order, payment)
FUNNEL = [(D1, 100, 40, 10, 9), (D2, 80, 30, 8, 7), (D3, 90, 35, 9, 8)]
DEAD_LETTERS = [
    (D1, "parse", "invalid_json", 3),
    (D1, "validate", "schema_required", 2),
    (D3, "parse", "invalid_json", 1),
]


def _raw_row(event_id: str, occurred: datetime, ingested: datetime, source: str, run_id: str) -> tuple:
    return (event_id, "page_view", 1, occurred, "u1", "s1", occurred.date(), ingested, source, "test", run_id)


RAW_ROWS = [
    _raw_row("e1", datetime(2026, 11, 1, 9, tzinfo=UTC), BATCH_LOADED, "/landing/events-0.jsonl:1", BATCH_RUN),
    _raw_row("e2", datetime(2026, 11, 2, 9, tzinfo=UTC), BATCH_LOADED, "/landing/events-0.jsonl:2", BATCH_RUN),
    _raw_row("e3", datetime(2026, 11, 3, 9, tzinfo=UTC), BATCH_LOADED, "/landing/events-0.jsonl:3", BATCH_RUN),
    # Streamed 2 s and 4 s after they occurred: a median lag of 3 s.
    _raw_row(
        "e4",
        datetime(2026, 11, 4, 11, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 4, 11, 0, 2, tzinfo=UTC),
        "projects/local-shop/subscriptions/events-stream#1",
        STREAM_RUN,
    ),
    _raw_row(
        "e5",
        datetime(2026, 11, 4, 11, 4, 0, tzinfo=UTC),
        datetime(2026, 11, 4, 11, 4, 4, tzinfo=UTC),
        "projects/local-shop/subscriptions/events-stream#2",
        STREAM_RUN,
    ),
]
NEWEST_EVENT = datetime(2026, 11, 4, 11, 4, tzinfo=UTC)


def insert_raw_events(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.executemany(
        "INSERT INTO raw_events (event_id, event_type, schema_version, occurred_at, user_id, session_id, event_date,"
        " ingested_at, source, pipeline_version, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def make_warehouse(path: str, raw: bool = True, marts: bool = True) -> str:
    """Creates the warehouse file at ``path``: raw tables (with rows if ``raw``) and marts if ``marts``."""
    warehouse = DuckDBWarehouse(path)
    con = warehouse.connect()
    try:
        warehouse.create_tables(con)
        if raw:
            insert_raw_events(con, RAW_ROWS)
            con.executemany(
                "INSERT INTO pipeline_runs VALUES (?, ?, 3, 3, 0, 6, 6)",
                [
                    (BATCH_RUN, BATCH_LOADED),
                    (STREAM_RUN, datetime(2026, 11, 4, 11, 1, tzinfo=UTC)),
                    (STREAM_RUN, STREAM_LOADED),
                ],
            )
        if marts:
            _make_marts(con)
    finally:
        con.close()
    return path


def _make_marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MARTS_DDL)
    con.executemany(
        "INSERT INTO marts.dm_daily_revenue VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row + (row[5] / row[7],) for row in DAILY_REVENUE],
    )
    con.executemany(
        "INSERT INTO marts.fct_orders (order_id, user_id, order_date, currency, product_category, status,"
        " is_cancelled, is_refunded) VALUES (?, 'u1', ?, 'EUR', ?, ?, ? = 'cancelled', ? = 'refunded')",
        [(order_id, day, category, status, status, status) for order_id, day, category, status in ORDERS],
    )
    order_dates = {order_id: day for order_id, day, _, _ in ORDERS}
    con.executemany(
        "INSERT INTO marts.fct_order_items VALUES (?, ?, ?, ?, 10.0, ?, 10.0 * ?, ?, 'EUR')",
        [(o, line, p, c, q, q, order_dates[o]) for o, line, p, c, q in ORDER_ITEMS],
    )
    con.executemany(
        "INSERT INTO marts.dm_daily_funnel VALUES (?, ?, ?, ?, ?, ? / ?, ? / ?, ? / ?)",
        [(d, v, c, o, p, c, v, o, c, p, o) for d, v, c, o, p in FUNNEL],
    )
    con.executemany("INSERT INTO marts.dm_dead_letters_daily VALUES (?, ?, ?, ?)", DEAD_LETTERS)
    con.executemany(
        "INSERT INTO marts.dim_products (product_id, product_name, is_catalogued) VALUES (?, ?, true)",
        list(PRODUCT_NAMES.items()),
    )
