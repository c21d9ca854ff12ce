"""What the dashboard shows, as SQL on the dbt marts and the raw tables.

Each section reads one mart (the contract the dbt project keeps) and returns plain,
JSON-ready data; ``collect`` runs them all in one short read session and turns a
missing table or an empty warehouse into a message instead of an error. Money across
currencies is only ever added up in EUR (``net_revenue_eur``); top products are ranked
by units, which need no currency.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from beam_ecommerce.dashboard.reader import QueryError, ReadSession, WarehouseReader, WarehouseUnavailable

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
# Streamed rows keep their Pub/Sub origin as source: ``projects/P/subscriptions/S#<message id>``
# (batch rows carry ``<file>:<line>``). That is how a load is told apart as batch or stream.
STREAMED_SOURCE = "projects/%#%"
# Streaming lag is measured over the newest streamed rows, so it tracks the stream as it is now.
LAG_SAMPLE_ROWS = 500

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


def daily_revenue(session: ReadSession, filters: Filters) -> list[dict[str, Any]]:
    where, params = filters.where("revenue_date", "product_category")
    rows = session.rows(
        f"SELECT revenue_date, sum(net_revenue_eur) AS net_revenue_eur FROM {DAILY_REVENUE}"
        f" WHERE {where} GROUP BY revenue_date ORDER BY revenue_date",
        params,
    )
    return [{"date": r["revenue_date"].isoformat(), "net_revenue_eur": _number(r["net_revenue_eur"])} for r in rows]


def orders_by_category_status(session: ReadSession, filters: Filters) -> list[dict[str, Any]]:
    where, params = filters.where("order_date", "product_category")
    rows = session.rows(
        f"SELECT coalesce(product_category, 'unknown') AS category, coalesce(status, 'unknown') AS status,"
        f" count(*) AS orders FROM {ORDERS} WHERE {where} GROUP BY ALL ORDER BY category, status",
        params,
    )
    return [{"category": r["category"], "status": r["status"], "orders": int(r["orders"])} for r in rows]


def funnel(session: ReadSession, filters: Filters) -> list[dict[str, Any]]:
    # The funnel is per session, not per category: only the dates filter it.
    where, params = filters.where("funnel_date")
    sums = ", ".join(f"sum({column}) AS {step}" for step, column in FUNNEL_STEPS)
    (row,) = session.rows(f"SELECT {sums} FROM {DAILY_FUNNEL} WHERE {where}", params)
    return [{"step": step, "sessions": int(_number(row[step]))} for step, _ in FUNNEL_STEPS]


def top_products(
    session: ReadSession, filters: Filters, limit: int = TOP_PRODUCTS, named: bool = False
) -> list[dict[str, Any]]:
    """The best sellers by units; ``named``: with their names from ``dim_products`` (else the id stands in)."""
    where, params = filters.where("i.order_date", "i.product_category")
    name = "any_value(coalesce(p.product_name, i.product_id))" if named else "i.product_id"
    products = f"LEFT JOIN {PRODUCTS} AS p USING (product_id)" if named else ""
    rows = session.rows(
        f"SELECT i.product_id, {name} AS name, any_value(i.product_category) AS category, sum(i.quantity) AS units,"
        f" count(DISTINCT i.order_id) AS orders FROM {ORDER_ITEMS} AS i {products} WHERE {where}"
        f" GROUP BY i.product_id ORDER BY units DESC, i.product_id LIMIT {int(limit)}",
        params,
    )
    return [
        {
            "product_id": r["product_id"],
            "name": r["name"],
            "category": r["category"],
            "units": int(r["units"]),
            "orders": int(r["orders"]),
        }
        for r in rows
    ]


def dead_letters(session: ReadSession, filters: Filters) -> list[dict[str, Any]]:
    # Dead letters have no category; only the dates filter them.
    where, params = filters.where("dead_letter_date")
    rows = session.rows(
        f"SELECT dead_letter_date, stage, error_type, sum(dead_letters) AS dead_letters FROM {DEAD_LETTERS_DAILY}"
        f" WHERE {where} GROUP BY ALL ORDER BY dead_letter_date, stage, error_type",
        params,
    )
    return [
        {
            "date": r["dead_letter_date"].isoformat(),
            "reason": f"{r['stage']}: {r['error_type']}",
            "dead_letters": int(r["dead_letters"]),
        }
        for r in rows
    ]


def live_minutes(session: ReadSession, filters: Filters, euro_rates: bool = False) -> list[dict[str, Any]]:
    """The stream's last hour per event-time minute, from ``live_metrics`` (no dbt needed).

    Revenue is added up in EUR with the ``exchange_rates`` seed once dbt has loaded it
    (``euro_rates``); until then only EUR orders count. Events per second divide a
    minute's events by the seconds of it that have passed. Dead letters have no category:
    a category filter leaves them out. ``final`` says the watermark has closed the minute.
    """
    where, params = filters.where("NULL", "product_category")
    rates = f"LEFT JOIN {EXCHANGE_RATES} AS r USING (currency)" if euro_rates else ""
    eur = "m.gross_revenue / r.units_per_eur" if euro_rates else "CASE WHEN currency = 'EUR' THEN gross_revenue END"
    rows = session.rows(
        f"""SELECT window_start, sum(orders) AS orders, coalesce(sum({eur}), 0) AS revenue_eur, sum(events) AS events,
                   sum(dead_letters) AS dead_letters, bool_or(pane_timing <> 'EARLY') AS final,
                   least(60, greatest(1, epoch(now()) - epoch(window_start))) AS seconds
            FROM {LIVE_METRICS_TABLE} AS m {rates}
            WHERE window_start > now() - INTERVAL {LIVE_MINUTES} MINUTE AND {where}
            GROUP BY window_start ORDER BY window_start""",
        params,
    )
    return [
        {
            "minute": r["window_start"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
            "orders": int(r["orders"]),
            "revenue_eur": round(float(r["revenue_eur"]), 2),
            "events_per_second": round(int(r["events"]) / float(r["seconds"]), 2),
            "dead_letters": int(r["dead_letters"]),
            "final": bool(r["final"]),
        }
        for r in rows
    ]


def freshness(session: ReadSession, tables: frozenset[str]) -> dict[str, Any]:
    """How current the raw tables are; these move while a stream loads, without dbt."""
    (events,) = session.rows(
        f"SELECT count(*) AS events, epoch(max(occurred_at)) AS newest_event FROM {RAW_EVENTS_TABLE}"
    )
    result: dict[str, Any] = {
        "events": int(events["events"]),
        "newest_event": events["newest_event"],
        "dead_letters": None,
        "last_batch_load": None,
        "last_stream_load": None,
        "stream_lag_seconds": None,
    }
    if DEAD_LETTER_TABLE in tables:
        result["dead_letters"] = int(session.rows(f"SELECT count(*) AS n FROM {DEAD_LETTER_TABLE}")[0]["n"])
    if PIPELINE_RUNS in tables:
        (loads,) = session.rows(
            f"""WITH runs AS (
                  SELECT run_id, bool_or(source LIKE '{STREAMED_SOURCE}') AS streamed
                  FROM {RAW_EVENTS_TABLE} GROUP BY run_id
                )
                SELECT epoch(max(loaded_at) FILTER (WHERE NOT streamed)) AS last_batch_load,
                       epoch(max(loaded_at) FILTER (WHERE streamed)) AS last_stream_load
                FROM {PIPELINE_RUNS} JOIN runs USING (run_id)"""
        )
        result |= loads
    (lag,) = session.rows(
        f"""SELECT median(epoch(ingested_at) - epoch(occurred_at)) AS lag FROM (
              SELECT occurred_at, ingested_at FROM {RAW_EVENTS_TABLE} WHERE source LIKE '{STREAMED_SOURCE}'
              ORDER BY ingested_at DESC LIMIT {LAG_SAMPLE_ROWS}
            )"""
    )
    result["stream_lag_seconds"] = lag["lag"]
    return result


def filter_options(session: ReadSession, tables: frozenset[str]) -> dict[str, Any]:
    """The categories to choose from and the dates the marts span."""
    options: dict[str, Any] = {"categories": [], "min_date": None, "max_date": None}
    if DAILY_REVENUE in tables:
        options["categories"] = [
            r["product_category"]
            for r in session.rows(
                f"SELECT DISTINCT product_category FROM {DAILY_REVENUE} WHERE product_category IS NOT NULL ORDER BY 1"
            )
        ]
    spans = [
        f"SELECT min({column}) AS lo, max({column}) AS hi FROM {table}"
        for table, column in (
            (DAILY_REVENUE, "revenue_date"),
            (DAILY_FUNNEL, "funnel_date"),
            (DEAD_LETTERS_DAILY, "dead_letter_date"),
        )
        if table in tables
    ]
    if spans:
        (span,) = session.rows(f"SELECT min(lo) AS lo, max(hi) AS hi FROM ({' UNION ALL '.join(spans)})")
        options["min_date"] = span["lo"].isoformat() if span["lo"] else None
        options["max_date"] = span["hi"].isoformat() if span["hi"] else None
    return options


@dataclass(frozen=True)
class Section:
    """One panel: the mart it needs, how to read it, and what to say while the mart is missing.

    ``read`` also gets the tables that exist, for optional joins (product names, rates).
    """

    name: str
    table: str
    read: Callable[[ReadSession, Filters, frozenset[str]], Any]
    missing: str = ""


BUILD_MARTS = "build the marts with dbt (the project in dbt/) on this warehouse"
START_STREAM = "no stream has written live_metrics yet: run `beam-ecommerce stream` (or `demo`)"

LIVE = Section(
    LIVE_PANEL, LIVE_METRICS_TABLE, lambda s, f, tables: live_minutes(s, f, EXCHANGE_RATES in tables), START_STREAM
)
SECTIONS = (
    LIVE,
    Section("revenue", DAILY_REVENUE, lambda s, f, _: daily_revenue(s, f)),
    Section("orders", ORDERS, lambda s, f, _: orders_by_category_status(s, f)),
    Section("funnel", DAILY_FUNNEL, lambda s, f, _: funnel(s, f)),
    Section("top_products", ORDER_ITEMS, lambda s, f, tables: top_products(s, f, named=PRODUCTS in tables)),
    Section("dead_letters", DEAD_LETTERS_DAILY, lambda s, f, _: dead_letters(s, f)),
)
# The marts' panels: the page's status says whether these are built.
MART_SECTIONS = SECTIONS[1:]
NO_DATA = f"No data yet: run `beam-ecommerce demo` (or `batch`), then {BUILD_MARTS}."


def _read_section(session: ReadSession, section: Section, tables: frozenset[str], filters: Filters) -> dict[str, Any]:
    """One panel's data, or why there is none: the page shows the rest either way."""
    if section.table not in tables:
        return {"ok": False, "message": f"{section.table} is not built yet: {section.missing or BUILD_MARTS}."}
    try:
        return {"ok": True, "data": section.read(session, filters, tables)}
    except QueryError as error:
        return {"ok": False, "message": f"Cannot read {section.table}: {error}"}


def kpis(sections: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The headline numbers, each a total of a section above it (so the two always agree).

    ``text`` is formatted here rather than in the page, so the page shows exactly what
    a test can compute from the marts.
    """

    def data(name: str) -> Any:
        return sections[name]["data"] if sections[name]["ok"] else None

    result: dict[str, dict[str, Any]] = {}
    if (revenue := data("revenue")) is not None:
        total = sum(day["net_revenue_eur"] for day in revenue)
        result["net_revenue_eur"] = {"value": total, "text": format_eur(total)}
    if (orders := data("orders")) is not None:
        count = sum(bar["orders"] for bar in orders)
        result["orders"] = {"value": count, "text": f"{count:,}"}
    if (steps := data("funnel")) is not None:
        viewed, paid = steps[0]["sessions"], steps[-1]["sessions"]
        rate = paid / viewed if viewed else None
        result["conversion"] = {"value": rate, "text": format_percent(rate)}
    if (letters := data("dead_letters")) is not None:
        count = sum(day["dead_letters"] for day in letters)
        result["dead_letters"] = {"value": count, "text": f"{count:,}"}
    return result


def format_eur(amount: float) -> str:
    return f"€{amount:,.0f}"


def format_percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def collect(reader: WarehouseReader, filters: Filters) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data with a ``status``.

    ``status`` is ``ok``, ``partial`` (some marts missing), ``no_data``, or the reason the
    warehouse cannot be read (``missing``, ``busy``, ``error``), with a ``message`` for
    the page in every case but ``ok``. A missing ``live_metrics`` (no stream yet) is
    said in its panel only. With ``filters.live_only`` just the live panel is read
    (status ``ok``), in one short session, for the page's one-second poll.
    """
    payload: dict[str, Any] = {
        "generated_at": datetime.now(UTC).timestamp(),
        "source": reader.describe(),
        "filters": {
            "start": filters.start.isoformat() if filters.start else None,
            "end": filters.end.isoformat() if filters.end else None,
            "category": filters.category,
        },
    }
    if filters.live_only:
        try:
            with reader.session() as session:
                live = _read_section(session, LIVE, session.tables(), filters)
        except WarehouseUnavailable as unavailable:
            return payload | {"status": unavailable.reason, "message": unavailable.message}
        return payload | {"status": "ok", "message": None, "sections": {LIVE.name: live}}
    try:
        with reader.session() as session:
            tables = session.tables()
            sections = {s.name: _read_section(session, s, tables, filters) for s in SECTIONS}
            fresh = freshness(session, tables) if RAW_EVENTS_TABLE in tables else None
            options = filter_options(session, tables)
    except WarehouseUnavailable as unavailable:
        return payload | {"status": unavailable.reason, "message": unavailable.message}
    missing = [s.table for s in MART_SECTIONS if s.table not in tables]
    broken = [s.table for s in MART_SECTIONS if s.table in tables and not sections[s.name]["ok"]]
    if fresh is None or fresh["events"] == 0:
        status, message = "no_data", NO_DATA
    elif missing or broken:
        notes = [f"Not built yet: {', '.join(missing)}; {BUILD_MARTS}." if missing else ""]
        notes.append(f"Cannot read {', '.join(broken)}: see the panels." if broken else "")
        status, message = "partial", " ".join(note for note in notes if note)
    else:
        status, message = "ok", None
    return payload | {
        "status": status,
        "message": message,
        "sections": sections,
        "kpis": kpis(sections),
        "freshness": fresh,
        "options": options,
    }
