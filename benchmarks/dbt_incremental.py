"""dbt on the local warehouse: a full refresh against an incremental run, on ~10M raw events.

One command, one run, one table::

    python -m benchmarks.dbt_incremental --events 10000000 --delta 0.01

A shop's history is synthesized straight in DuckDB (SQL over ``range``, into the
``raw_events`` and ``dead_letter`` DDL of ``beam_ecommerce.schemas.tables``): visits with
page views, carts, orders, payments and order lifecycles (paid, shipped, delivered,
cancelled, refunded), loaded hourly. The last ``--delta`` of the rows by ingestion time
are held back. Then, with the bundled project on one dbt thread:

1. ``dbt run --full-refresh`` on everything but the delta (set-up, not measured);
2. the delta is appended: new visits and orders, and late status changes of older orders;
3. ``dbt run``: the incremental run (measured);
4. ``dbt run --full-refresh`` on the same final data (measured);
5. every model's incremental result is compared with the full refresh's, row for row.

Per model: dbt's own execution time (``run_results.json``) and the rows DuckDB scanned
for it (its profiler's ``total_rows_scanned``, summed over every statement dbt ran for
the model), side by side, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb

from beam_ecommerce import dbt_project
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Events per visit the synthesized shop makes on average (measured on it), to size it.
EVENTS_PER_SESSION = 4.80
START = "2026-01-01"
COUNTRIES = {"DE": "EUR", "US": "USD", "GB": "GBP", "PL": "PLN", "SE": "SEK", "CA": "CAD", "CH": "CHF"}
CATEGORIES = ("electronics", "books", "fashion", "home", "toys", "beauty", "sports", "grocery")
MARTS = ("fct_orders", "fct_order_items", "fct_sessions", "dim_users", "dm_daily_funnel", "dm_daily_revenue")


def _sql_list(values) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def _pick(values, draw: str) -> str:
    """SQL for the element of ``values`` a non-negative integer ``draw`` picks."""
    return f"{_sql_list(values)}[1 + CAST({draw} % {len(values)} AS BIGINT)]"


def _spread(index: str, count: int, span_us: int) -> str:
    """SQL for the microsecond at which item ``index`` of ``count``, evenly spread over the window, happens."""
    return f"epoch_us(TIMESTAMPTZ '{START}') + CAST(CAST({index} AS HUGEINT) * {span_us} // {count} AS BIGINT)"


def synthesize(con: duckdb.DuckDBPyConnection, events: int, days: int) -> None:
    """Creates ``synthetic_events``: about ``events`` raw_events rows of a shop over ``days`` days.

    Every draw is a hash of the visit number, so the same arguments give the same rows.
    Visits are evenly spread; 30 % add to the cart, 10 % order. An order is paid (10 %
    after a failed attempt; 3 % fail and are cancelled unpaid), then 4 % are cancelled
    and the rest shipped 6-48 h later and delivered 1-4 days after that; 5 % of deliveries
    are refunded 1-10 days later (60 % in full, else the first line). Rows are loaded
    hourly: ingested_at is the next hour plus 5 minutes. Events after the window are not made.
    """
    sessions = int(events / EVENTS_PER_SESSION)
    span_us = days * 86_400_000_000
    users = max(1, sessions // 4)
    countries, currencies = list(COUNTRIES), list(COUNTRIES.values())
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE visits AS
        SELECT
            i AS visit,
            printf('s%012d', i) AS session_id,
            CAST(hash(i, 'user') % {users} AS BIGINT) AS user_no,
            {_spread("i", sessions, span_us)} AS started_us,
            CAST(1 + hash(i, 'views') % 7 AS BIGINT) AS page_views,
            CAST(hash(i, 'funnel') % 100 AS BIGINT) AS funnel,
            CAST(hash(i, 'order') >> 1 AS BIGINT) AS draw
        FROM range({sessions}) AS t(i)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE orders AS
        SELECT
            v.*,
            'o' || v.visit AS order_id,
            v.started_us + v.page_views * 30_000_000 + 60_000_000 AS ordered_us,
            list_transform(range(1 + v.draw % 3), lambda j: {{
                'product_id': 'p' || ((v.draw >> (4 * j)) % 5000),
                'product_category': {_sql_list(CATEGORIES)}[1 + (v.draw >> (4 * j + 1)) % {len(CATEGORIES)}],
                'unit_price': round(3 + ((v.draw >> (6 * j + 2)) % 30000) / 100.0, 2),
                'quantity': 1 + (v.draw >> (5 * j + 3)) % 3
            }}) AS items,
            (v.draw >> 20) % 100 AS lifecycle,
            (v.draw >> 28) % 1000 AS delay
        FROM visits AS v
        WHERE v.funnel < 10
        """
    )
    user_columns = f"""
        'u' || user_no AS user_id,
        {_sql_list(countries)}[1 + user_no % {len(countries)}] AS country,
        {_sql_list(currencies)}[1 + user_no % {len(currencies)}] AS currency,
        ['organic', 'paid_search', 'social', 'email', 'referral'][1 + user_no % 5] AS signup_channel,
        ['desktop', 'mobile', 'tablet'][1 + user_no % 3] AS device
    """
    hour_us = 3_600_000_000
    day_us = 24 * hour_us
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE synthetic_events AS
        WITH
        page_views AS (
            SELECT v.*, 'page_view' AS event_type, k AS step,
                   v.started_us + k * 30_000_000 AS occurred_us,
                   'p' || (hash(v.visit, k) % 5000) AS product_id,
                   {_pick(CATEGORIES, "hash(v.visit, k, 0)")} AS product_category
            FROM visits AS v, range(v.page_views) AS r(k)
        ),
        carts AS (
            SELECT v.*, 'add_to_cart' AS event_type, 0 AS step,
                   v.started_us + v.page_views * 30_000_000 + 10_000_000 AS occurred_us,
                   'p' || (v.draw % 5000) AS product_id,
                   {_sql_list(CATEGORIES)}[1 + (v.draw >> 1) % {len(CATEGORIES)}] AS product_category
            FROM visits AS v WHERE v.funnel < 30
        ),
        lifecycle AS (
            -- (event type, status or payment outcome, time) of each order's later events
            SELECT o.*, e.* FROM orders AS o, LATERAL (
                SELECT * FROM (VALUES
                    ('payment', 'failed', o.ordered_us + 10_000_000, o.lifecycle < 13),
                    ('order_status_changed', 'cancelled', o.ordered_us + {hour_us}, o.lifecycle < 3),
                    ('payment', 'succeeded', o.ordered_us + 20_000_000, o.lifecycle >= 3),
                    ('order_status_changed', 'paid', o.ordered_us + 25_000_000, o.lifecycle >= 3),
                    ('order_status_changed', 'cancelled',
                        o.ordered_us + {hour_us} + o.delay * 11 * {hour_us} // 1000, o.lifecycle BETWEEN 3 AND 6),
                    ('order_status_changed', 'shipped',
                        o.ordered_us + 6 * {hour_us} + o.delay * 42 * {hour_us} // 1000, o.lifecycle >= 7),
                    ('order_status_changed', 'delivered',
                        o.ordered_us + 30 * {hour_us} + o.delay * 4 * {day_us} // 1000, o.lifecycle >= 7),
                    ('order_status_changed', 'refunded',
                        o.ordered_us + 5 * {day_us} + o.delay * 10 * {day_us} // 1000, o.lifecycle >= 95)
                ) AS s(event_type, outcome, occurred_us, happens)
            ) AS e
            WHERE e.happens
        ),
        all_events AS (
            SELECT session_id, visit, user_no, event_type, step, occurred_us, product_id, product_category,
                   NULL AS order_id, NULL AS items, NULL AS outcome, NULL::DOUBLE AS amount
            FROM page_views
            UNION ALL
            SELECT session_id, visit, user_no, event_type, step, occurred_us, product_id, product_category,
                   NULL, NULL, NULL, NULL
            FROM carts
            UNION ALL
            SELECT session_id, visit, user_no, 'order_placed', 0, ordered_us, NULL, NULL,
                   order_id, items, 'created', NULL
            FROM orders
            UNION ALL
            SELECT session_id, visit, user_no, event_type, 0, occurred_us, NULL, NULL,
                   order_id, items, outcome,
                   CASE WHEN outcome = 'refunded' AND lifecycle >= 98 THEN items[1].unit_price * items[1].quantity END
            FROM lifecycle
        )
        SELECT
            md5(session_id || event_type || step || coalesce(outcome, '')) AS event_id,
            event_type,
            1 AS schema_version,
            make_timestamptz(occurred_us) AS occurred_at,
            session_id,
            {user_columns},
            md5('email' || user_no) AS email_hash,
            md5('ip' || user_no) AS ip_address_hash,
            product_id,
            product_category,
            CASE WHEN event_type = 'add_to_cart' THEN 9.99 END AS unit_price,
            CASE WHEN event_type = 'add_to_cart' THEN 1 END AS quantity,
            order_id,
            CASE WHEN event_type = 'order_placed' THEN items END AS items,
            CASE WHEN event_type IN ('order_placed', 'order_status_changed') THEN outcome END AS status,
            CASE WHEN event_type = 'payment' THEN outcome END AS payment_status,
            CASE WHEN event_type = 'payment' THEN 'pay' || visit || outcome END AS payment_id,
            CASE WHEN event_type = 'payment' THEN 'card' END AS payment_method,
            CASE
                WHEN event_type = 'payment' OR outcome = 'refunded'
                    THEN round(coalesce(amount, list_sum([l.unit_price * l.quantity FOR l IN items])), 2)
            END AS amount,
            CASE WHEN event_type = 'page_view' THEN '/p/' || product_id END AS page_url,
            CASE WHEN event_type = 'page_view' THEN 'product' END AS page_type,
            CAST(make_timestamptz(occurred_us) AS DATE) AS event_date,
            CASE WHEN event_type = 'order_placed'
                 THEN round(list_sum([l.unit_price * l.quantity FOR l IN items]), 2) END AS revenue,
            make_timestamptz((occurred_us // {hour_us} + 1) * {hour_us} + 300_000_000) AS ingested_at,
            'synthetic' AS source,
            'benchmark' AS pipeline_version,
            'hourly' AS run_id
        FROM all_events
        WHERE occurred_us < epoch_us(TIMESTAMPTZ '{START}') + {span_us}
        """
    )
    # Dead letters: 0.5 % of the events, spread over the window as the loads that made them.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE synthetic_dead_letters AS
        SELECT
            md5('dl' || i) AS dead_letter_id,
            make_timestamptz({_spread("i", max(1, events // 200), span_us)}) AS timestamp,
            '{{"broken": ' AS payloadString,
            '{{"broken": '::BLOB AS payloadBytes,
            [] AS attributes,
            'Expecting value' AS errorMessage,
            {_pick(("parse", "validate"), "hash(i)")} AS stage,
            {_pick(("invalid_json", "schema_required", "schema_enum"), "hash(i, 1)")} AS error_type,
            'synthetic' AS source,
            'benchmark' AS pipeline_version,
            'hourly' AS run_id
        FROM range({max(1, events // 200)}) AS t(i)
        """
    )


def create_warehouse(path: Path, events: int, delta: float, days: int) -> tuple[int, int, str]:
    """A warehouse holding all but the last ``delta`` of the synthesized rows; (base rows, delta rows, cutoff)."""
    con = duckdb.connect(str(path))
    try:
        synthesize(con, int(events * (1 + delta)), days)
        con.execute(RAW_EVENTS.duckdb_ddl())
        con.execute(DEAD_LETTER.duckdb_ddl())
        (cutoff,) = con.execute(
            f"SELECT quantile_disc(ingested_at, {1 - delta / (1 + delta)}) FROM synthetic_events"
        ).fetchone()
        cutoff = cutoff.isoformat()
        # Loaded as the pipeline appends them: in ingestion order.
        con.execute(
            "INSERT INTO raw_events BY NAME SELECT * FROM synthetic_events "
            f"WHERE ingested_at <= TIMESTAMPTZ '{cutoff}' ORDER BY ingested_at, occurred_at"
        )
        con.execute(
            "INSERT INTO dead_letter BY NAME SELECT * FROM synthetic_dead_letters "
            f"WHERE timestamp <= TIMESTAMPTZ '{cutoff}'"
        )
        con.execute(
            "CREATE TABLE main.held_back_events AS SELECT * FROM synthetic_events "
            f"WHERE ingested_at > TIMESTAMPTZ '{cutoff}'"
        )
        con.execute(
            "CREATE TABLE main.held_back_dead_letters AS SELECT * FROM synthetic_dead_letters "
            f"WHERE timestamp > TIMESTAMPTZ '{cutoff}'"
        )
        base = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
        held = con.execute("SELECT count(*) FROM main.held_back_events").fetchone()[0]
    finally:
        con.close()
    return base, held, cutoff


def append_delta(path: Path) -> Counter:
    """Loads the held-back rows, as the next hourly loads would; what they hold, by kind."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "INSERT INTO raw_events BY NAME SELECT * FROM main.held_back_events ORDER BY ingested_at, occurred_at"
        )
        con.execute("INSERT INTO dead_letter BY NAME SELECT * FROM main.held_back_dead_letters")
        (cutoff,) = con.execute("SELECT min(ingested_at) FROM main.held_back_events").fetchone()
        kinds = Counter(
            dict(
                con.execute(
                    """
                    SELECT CASE
                        WHEN d.event_type = 'order_status_changed' AND p.order_id IS NOT NULL
                            THEN 'late status change of an older order'
                        ELSE d.event_type END AS kind,
                        count(*)
                    FROM main.held_back_events AS d
                    LEFT JOIN (SELECT order_id FROM raw_events WHERE event_type = 'order_placed' AND ingested_at < ?)
                        AS p ON d.order_id = p.order_id
                    GROUP BY kind
                    """,
                    [cutoff],
                ).fetchall()
            )
        )
        con.execute("DROP TABLE main.held_back_events")
        con.execute("DROP TABLE main.held_back_dead_letters")
    finally:
        con.close()
    return kinds


def _values_scanned(operator: dict) -> int:
    """Rows times columns read by the table scans under ``operator``: what a columnar store reads."""
    own = 0
    if operator.get("type") == "TABLE_SCAN":
        projections = operator.get("extra_info", {}).get("Projections", [])
        if isinstance(projections, str):
            projections = [line for line in projections.splitlines() if line.strip()]
        own = int(operator.get("rows_scanned", 0)) * max(1, len(projections))
    return own + sum(_values_scanned(child) for child in operator.get("children", []))


class ScanCounter:
    """What DuckDB scanned per dbt node: its profiler, read after each statement dbt-duckdb runs.

    ``rows`` is the profiler's total_rows_scanned (a row counts once, however few of its
    columns are read); ``values`` weighs each scanned row by the columns read. dbt runs on
    one thread here, so the node that started last owns every statement until the next
    one starts.
    """

    def __init__(self) -> None:
        self.node: str | None = None
        self.rows: Counter[str] = Counter()
        self.values: Counter[str] = Counter()

    def on_event(self, event) -> None:
        if event.info.name == "NodeStart":
            self.node = event.data.node_info.unique_id.split(".")[-1]

    def install(self) -> None:
        from dbt.adapters.duckdb.environments.local import DuckDBCursorWrapper

        original = DuckDBCursorWrapper.execute
        counter = self

        def execute(wrapper, sql, bindings=None):
            cursor = wrapper._cursor
            if not getattr(wrapper, "profiling", False):
                cursor.execute("SET enable_profiling = 'no_output'")
                cursor.execute("SET profiling_coverage = 'ALL'")
                wrapper.profiling = True
            result = original(wrapper, sql, bindings)
            counter.record(cursor)
            return result

        DuckDBCursorWrapper.execute = execute

    def record(self, cursor) -> None:
        if self.node is None:
            return
        try:
            profile = json.loads(cursor.get_profiling_information())
        except (duckdb.Error, ValueError):
            return  # a statement with no plan (BEGIN, SET)
        self.rows[self.node] += int(profile.get("query", {}).get("total_rows_scanned", 0))
        self.values[self.node] += sum(_values_scanned(operator) for operator in profile.get("operator", []))


@dataclass
class RunMeasurement:
    seconds: dict[str, float]
    rows_scanned: dict[str, int]
    values_scanned: dict[str, int]
    wall: float

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def total_rows(self) -> int:
        return sum(self.rows_scanned.values())

    @property
    def total_values(self) -> int:
        return sum(self.values_scanned.values())


def run_dbt(path: Path, state: Path, counter: ScanCounter, full_refresh: bool) -> RunMeasurement:
    """``dbt run`` (one thread) on the warehouse; dbt's per-model times and what DuckDB scanned."""
    args = ["run", "--threads", "1"]
    if full_refresh:
        args.append("--full-refresh")
    counter.rows.clear()
    counter.values.clear()
    started = time.perf_counter()
    outcome = dbt_project.invoke(args, path, state / "target", state / "logs", callbacks=[counter.on_event])
    wall = time.perf_counter() - started
    if not outcome.success:
        raise RuntimeError(f"dbt run failed: {outcome.exception or outcome.result}")
    run_results = json.loads((state / "target" / "run_results.json").read_text())
    seconds = {r["unique_id"].split(".")[-1]: r["execution_time"] for r in run_results["results"]}
    rows = {name: counter.rows[name] for name in seconds}
    return RunMeasurement(seconds, rows, {name: counter.values[name] for name in seconds}, wall)


def seed(path: Path, state: Path) -> None:
    outcome = dbt_project.invoke(["seed"], path, state / "target", state / "logs")
    if not outcome.success:
        raise RuntimeError(f"dbt seed failed: {outcome.exception or outcome.result}")


def snapshot_marts(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS incremental_result")
        for name in (*MARTS, "stg_ecommerce__events"):
            schema = "staging" if name.startswith("stg_") else "marts"
            con.execute(f"CREATE OR REPLACE TABLE incremental_result.{name} AS SELECT * FROM {schema}.{name}")
    finally:
        con.close()


def differences(path: Path) -> dict[str, int]:
    """Rows that differ between each model's incremental result and its full refresh (both ways)."""
    con = duckdb.connect(str(path))
    try:
        found = {}
        for name in (*MARTS, "stg_ecommerce__events"):
            schema = "staging" if name.startswith("stg_") else "marts"
            found[name] = con.execute(
                f"""SELECT (SELECT count(*) FROM (SELECT * FROM incremental_result.{name}
                                                 EXCEPT ALL SELECT * FROM {schema}.{name}))
                         + (SELECT count(*) FROM (SELECT * FROM {schema}.{name}
                                                 EXCEPT ALL SELECT * FROM incremental_result.{name}))"""
            ).fetchone()[0]
    finally:
        con.close()
    return found


def _ratio(full: float, incremental: float) -> str:
    return f"{full / incremental:.1f}x" if incremental else "-"


def table(full: RunMeasurement, incremental: RunMeasurement) -> str:
    """Markdown: per model and in all, seconds, rows and values scanned, full refresh next to incremental."""
    lines = [
        "| model | full refresh s | incremental s | ratio | rows scanned, full | incremental | ratio "
        "| values scanned, full | incremental | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    measures = [
        (name, full.seconds[name], incremental.seconds.get(name, 0.0))
        + (full.rows_scanned[name], incremental.rows_scanned.get(name, 0))
        + (full.values_scanned[name], incremental.values_scanned.get(name, 0))
        for name in full.seconds
    ]
    measures.append(
        ("**all models**", full.total_seconds, incremental.total_seconds)
        + (full.total_rows, incremental.total_rows, full.total_values, incremental.total_values)
    )
    for name, fs, is_, fr, ir, fv, iv in measures:
        lines.append(
            f"| {name} | {fs:.2f} | {is_:.2f} | {_ratio(fs, is_)} | {fr:,} | {ir:,} | {_ratio(fr, ir)} "
            f"| {fv:,} | {iv:,} | {_ratio(fv, iv)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="raw events before the delta")
    parser.add_argument("--delta", type=float, default=0.01, help="the delta, as a fraction of --events")
    parser.add_argument("--days", type=int, default=120, help="days the events span")
    parser.add_argument("--workdir", type=Path, default=RESULTS_DIR / "dbt_incremental", help="scratch folder")
    args = parser.parse_args(argv)

    if args.workdir.exists():
        shutil.rmtree(args.workdir)
    args.workdir.mkdir(parents=True)
    path = args.workdir / "warehouse.duckdb"
    state = args.workdir / "dbt"
    started = time.perf_counter()
    base, held, cutoff = create_warehouse(path, args.events, args.delta, args.days)
    print(
        f"synthesized {base:,} raw events + a delta of {held:,} ({held / base:.2%}) ingested after {cutoff}"
        f" in {time.perf_counter() - started:.0f}s"
    )

    counter = ScanCounter()
    counter.install()
    seed(path, state)
    setup = run_dbt(path, state, counter, full_refresh=True)
    print(f"set-up: full refresh on the base in {setup.wall:.1f}s")
    kinds = append_delta(path)
    print("delta: " + ", ".join(f"{count:,} {kind}" for kind, count in kinds.most_common()))
    incremental = run_dbt(path, state, counter, full_refresh=False)
    snapshot_marts(path)
    full = run_dbt(path, state, counter, full_refresh=True)
    diff = differences(path)

    print()
    print(table(full, incremental))
    print()
    print(f"dbt wall time (parse included): full refresh {full.wall:.1f}s, incremental {incremental.wall:.1f}s")
    print(
        "incremental result = full refresh, row for row: "
        + ", ".join(f"{name} {'yes' if n == 0 else f'NO ({n} rows differ)'}" for name, n in diff.items())
    )
    results = {
        "events": base,
        "delta": held,
        "delta_kinds": dict(kinds),
        "cpu_count": os.cpu_count(),
        "full_refresh": full.__dict__,
        "incremental": incremental.__dict__,
        "differences": diff,
    }
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    return 0 if not any(diff.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
