"""What the dashboard shows: every panel's data, the warehouse's freshness and the filters' choices.

``collect`` reads them all in one short read session and turns a missing table or an
empty warehouse into a message instead of an error; each panel's SQL is in ``panels``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beam_ecommerce.dashboard.panels import (
    DAILY_FUNNEL,
    DAILY_REVENUE,
    DAILY_REVENUE_QUERY,
    DEAD_LETTER_TABLE,
    DEAD_LETTERS_DAILY,
    DEAD_LETTERS_QUERY,
    EXCHANGE_RATES,
    LIVE_METRICS_TABLE,
    LIVE_PANEL,
    ORDER_ITEMS,
    ORDERS,
    ORDERS_QUERY,
    PIPELINE_RUNS,
    PRODUCTS,
    RAW_EVENTS_TABLE,
    Filters,
    funnel,
    live_minutes_query,
    top_products_query,
)
from beam_ecommerce.dashboard.reader import QueryError, ReadSession, WarehouseReader, WarehouseUnavailable

# Streamed rows keep their Pub/Sub origin as source: ``projects/P/subscriptions/S#<message id>``
# (batch rows carry ``<file>:<line>``). That is how a load is told apart as batch or stream.
STREAMED_SOURCE = "projects/%#%"
# Streaming lag is measured over the newest streamed rows, so it tracks the stream as it is now.
LAG_SAMPLE_ROWS = 500


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
    LIVE_PANEL,
    LIVE_METRICS_TABLE,
    lambda s, f, tables: live_minutes_query(EXCHANGE_RATES in tables).run(s, f),
    START_STREAM,
)
SECTIONS = (
    LIVE,
    Section("revenue", DAILY_REVENUE, lambda s, f, _: DAILY_REVENUE_QUERY.run(s, f)),
    Section("orders", ORDERS, lambda s, f, _: ORDERS_QUERY.run(s, f)),
    Section("funnel", DAILY_FUNNEL, lambda s, f, _: funnel(s, f)),
    Section("top_products", ORDER_ITEMS, lambda s, f, tables: top_products_query(PRODUCTS in tables).run(s, f)),
    Section("dead_letters", DEAD_LETTERS_DAILY, lambda s, f, _: DEAD_LETTERS_QUERY.run(s, f)),
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
