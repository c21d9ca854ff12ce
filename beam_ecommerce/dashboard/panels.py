"""Each panel's data as SQL: a ``Query`` on one table of the warehouse within the page's ``Filters``.

A panel reads one mart (the contract the dbt project keeps), or the stream's ``live_metrics``,
and returns plain, JSON-ready rows. Money across currencies is only ever added up in EUR
(``net_revenue_eur``); top products are ranked by units, which need no currency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from beam_ecommerce.dashboard.reader import ReadSession

DAILY_REVENUE = "marts.dm_daily_revenue"
ORDERS = "marts.fct_orders"
ORDER_ITEMS = "marts.fct_order_items"
DAILY_FUNNEL = "marts.dm_daily_funnel"
DEAD_LETTERS_DAILY = "marts.dm_dead_letters_daily"
PRODUCTS = "marts.dim_products"
EXCHANGE_RATES = "staging.exchange_rates"
# The pipelines' own tables, by qualified name (``schemas.RAW_EVENTS`` and friends are their contracts).
LIVE_METRICS_TABLE = "main.live_metrics"
RAW_EVENTS_TABLE = "main.raw_events"
DEAD_LETTER_TABLE = "main.dead_letter"
PIPELINE_RUNS = "main.pipeline_runs"

TOP_PRODUCTS = 10
# The live panel: the last hour of the stream's per-minute windows, polled every second.
LIVE_MINUTES = 60
LIVE_PANEL = "live"

FUNNEL_STEPS = (
    ("view", "sessions_with_view"),
    ("cart", "sessions_with_cart"),
    ("order", "sessions_with_order"),
    ("payment", "sessions_with_payment"),
)


@dataclass(frozen=True)
class Filters:
    """The page's filters; ``None`` means no bound (all dates, all categories)."""

    start: date | None = None
    end: date | None = None
    category: str | None = None
    live_only: bool = False
    """Only the live panel (``panel=live``): what the page polls every second."""

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        """From query parameters ``start``, ``end`` (``YYYY-MM-DD``) and ``category``; raises ValueError."""

        def day(name: str) -> date | None:
            text = params.get(name, "").strip()
            if not text:
                return None
            try:
                return date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{name} must be a date like 2026-11-01, not {text!r}") from None

        start, end = day("start"), day("end")
        if start and end and start > end:
            raise ValueError(f"start {start} is after end {end}")
        panel = params.get("panel", "").strip()
        if panel not in ("", LIVE_PANEL):
            raise ValueError(f"panel must be {LIVE_PANEL!r} or absent, not {panel!r}")
        return cls(start, end, params.get("category", "").strip() or None, panel == LIVE_PANEL)

    def where(self, date_column: str, category_column: str | None = None) -> tuple[str, list[Any]]:
        """A WHERE clause (possibly ``TRUE``) and its parameters for these filters."""
        clauses, params = [], []
        if self.start:
            clauses.append(f"{date_column} >= ?")
            params.append(self.start)
        if self.end:
            clauses.append(f"{date_column} <= ?")
            params.append(self.end)
        if self.category and category_column:
            clauses.append(f"{category_column} = ?")
            params.append(self.category)
        return " AND ".join(clauses) or "TRUE", params


def _number(value: Any) -> float:
    """A SQL sum as a float; SUM over no rows is NULL, which is zero here."""
    return float(value) if value is not None else 0.0


def _count(value: Any) -> int:
    """A SQL count, or sum of whole numbers, as an int; SUM over no rows is NULL, which is zero here."""
    return int(value) if value is not None else 0


def _hundredths(value: Any) -> float:
    return round(float(value), 2)


def _day(value: date) -> str:
    return value.isoformat()


def _minute(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Query:
    """A panel's SQL on one table within the page's filters; its rows are the panel's data.

    ``sql`` reads ``filtered``: the rows of ``table`` within the filters' dates (on ``date_column``)
    and category (on ``category_column``; None where the table has none, so that a category
    filter leaves it whole). It names its columns as the page's data does; ``convert`` turns
    the values of those that need it into JSON's.
    """

    table: str
    date_column: str
    category_column: str | None
    sql: str
    convert: Mapping[str, Callable[[Any], Any]]

    def run(self, session: ReadSession, filters: Filters) -> list[dict[str, Any]]:
        where, params = filters.where(self.date_column, self.category_column)
        rows = session.rows(f"WITH filtered AS (SELECT * FROM {self.table} WHERE {where})\n{self.sql}", params)
        return [row | {name: convert(row[name]) for name, convert in self.convert.items()} for row in rows]


DAILY_REVENUE_QUERY = Query(
    DAILY_REVENUE,
    date_column="revenue_date",
    category_column="product_category",
    sql="SELECT revenue_date AS date, sum(net_revenue_eur) AS net_revenue_eur FROM filtered GROUP BY ALL ORDER BY date",
    convert={"date": _day, "net_revenue_eur": _number},
)
ORDERS_QUERY = Query(
    ORDERS,
    date_column="order_date",
    category_column="product_category",
    sql="""SELECT coalesce(product_category, 'unknown') AS category, coalesce(status, 'unknown') AS status,
                  count(*) AS orders
           FROM filtered GROUP BY ALL ORDER BY category, status""",
    convert={"orders": _count},
)
# The funnel is per session, not per category: only the dates filter it. Its one row is the four steps' totals.
FUNNEL_QUERY = Query(
    DAILY_FUNNEL,
    date_column="funnel_date",
    category_column=None,
    sql=f"SELECT {', '.join(f'sum({column}) AS {step}' for step, column in FUNNEL_STEPS)} FROM filtered",
    convert={step: _count for step, _ in FUNNEL_STEPS},
)
# Dead letters have no category; only the dates filter them.
DEAD_LETTERS_QUERY = Query(
    DEAD_LETTERS_DAILY,
    date_column="dead_letter_date",
    category_column=None,
    sql="""SELECT dead_letter_date AS date, concat(stage, ': ', error_type) AS reason, sum(dead_letters) AS dead_letters
           FROM filtered
           GROUP BY dead_letter_date, stage, error_type ORDER BY dead_letter_date, stage, error_type""",
    convert={"date": _day, "dead_letters": _count},
)


def funnel(session: ReadSession, filters: Filters) -> list[dict[str, Any]]:
    (totals,) = FUNNEL_QUERY.run(session, filters)
    return [{"step": step, "sessions": totals[step]} for step, _ in FUNNEL_STEPS]


def top_products_query(named: bool) -> Query:
    """The best sellers by units; ``named``: with their names from ``dim_products`` (else the id stands in)."""
    name = "any_value(coalesce(p.product_name, i.product_id))" if named else "i.product_id"
    products = f"LEFT JOIN {PRODUCTS} AS p USING (product_id)" if named else ""
    return Query(
        ORDER_ITEMS,
        date_column="order_date",
        category_column="product_category",
        sql=f"""SELECT i.product_id, {name} AS name, any_value(i.product_category) AS category,
                       sum(i.quantity) AS units, count(DISTINCT i.order_id) AS orders
                FROM filtered AS i {products}
                GROUP BY i.product_id ORDER BY units DESC, i.product_id LIMIT {TOP_PRODUCTS}""",
        convert={"units": _count, "orders": _count},
    )


def live_minutes_query(euro_rates: bool) -> Query:
    """The stream's last hour per event-time minute, from ``live_metrics`` (no dbt needed).

    Revenue is added up in EUR with the ``exchange_rates`` seed once dbt has loaded it
    (``euro_rates``); until then only EUR orders count. Events per second divide a
    minute's events by the seconds of it that have passed. Dead letters have no category:
    a category filter leaves them out. A date filter reads a minute's UTC date, as the
    marts' dates are. ``final`` says the watermark has closed the minute.
    """
    rates = f"LEFT JOIN {EXCHANGE_RATES} AS r USING (currency)" if euro_rates else ""
    eur = "m.gross_revenue / r.units_per_eur" if euro_rates else "CASE WHEN currency = 'EUR' THEN gross_revenue END"
    return Query(
        LIVE_METRICS_TABLE,
        date_column="CAST(timezone('UTC', window_start) AS DATE)",
        category_column="product_category",
        sql=f"""SELECT window_start AS minute, sum(orders) AS orders, coalesce(sum({eur}), 0) AS revenue_eur,
                       sum(events) / least(60, greatest(1, epoch(now()) - epoch(window_start))) AS events_per_second,
                       sum(dead_letters) AS dead_letters, bool_or(pane_timing <> 'EARLY') AS final
                FROM filtered AS m {rates}
                WHERE window_start > now() - INTERVAL {LIVE_MINUTES} MINUTE
                GROUP BY window_start ORDER BY window_start""",
        convert={
            "minute": _minute,
            "orders": _count,
            "revenue_eur": _hundredths,
            "events_per_second": _hundredths,
            "dead_letters": _count,
            "final": bool,
        },
    )
