"""The dashboard's charts: Plotly figures built from ``queries``' data.

Figures are built here, in Python, and the page only hands them to plotly.js
(``Plotly.react``): one place decides what a chart shows, and the served page and the
static snapshot draw exactly the same figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_HEIGHT = 330
# One tick label per day ("Nov 03"), not Plotly's default of hours when only a few days show.
_DAYS = {"type": "date", "tickformat": "%b %d"}
# An order's statuses in lifecycle order, each with a color that reads as what it means.
STATUS_COLORS = {
    "created": "#9aa5b1",
    "paid": "#7c3aed",
    "shipped": "#0ea5e9",
    "delivered": "#16a34a",
    "refunded": "#f59e0b",
    "cancelled": "#dc2626",
}


def _figure(traces: list[Any], **layout: Any) -> go.Figure:
    defaults = {
        "template": "plotly_white",
        "height": _HEIGHT,
        "margin": {"l": 60, "r": 20, "t": 10, "b": 40},
        # Above the plot, where it cannot collide with rotated category labels below it.
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "traceorder": "normal"},
    }
    return go.Figure(traces, layout=defaults | layout)


def _empty() -> go.Figure:
    figure = _figure([])
    figure.update_layout(
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[{"text": "No rows for these filters", "showarrow": False, "font": {"size": 16}}],
    )
    return figure


def revenue_chart(days: list[dict[str, Any]]) -> go.Figure:
    return _figure(
        [
            go.Scatter(
                x=[d["date"] for d in days],
                y=[d["net_revenue_eur"] for d in days],
                mode="lines+markers",
                name="net revenue (EUR)",
                hovertemplate="%{x}<br>€%{y:,.2f}<extra></extra>",
            )
        ],
        yaxis={"tickprefix": "€", "rangemode": "tozero"},
        xaxis=_DAYS,
    )


def _lifecycle_order(status: str) -> tuple[int, str]:
    known = list(STATUS_COLORS)
    return (known.index(status) if status in known else len(known), status)


def orders_chart(bars: list[dict[str, Any]]) -> go.Figure:
    categories = sorted({b["category"] for b in bars})
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    for bar in bars:
        by_status[bar["status"]][bar["category"]] = bar["orders"]
    traces = [
        go.Bar(
            x=categories,
            y=[by_status[status].get(c, 0) for c in categories],
            name=status,
            marker_color=STATUS_COLORS.get(status),
        )
        for status in sorted(by_status, key=_lifecycle_order)
    ]
    return _figure(traces, barmode="stack", xaxis={"automargin": True}, yaxis={"title": {"text": "orders"}})


def funnel_chart(steps: list[dict[str, Any]]) -> go.Figure:
    return _figure(
        [
            go.Funnel(
                y=[s["step"] for s in steps],
                x=[s["sessions"] for s in steps],
                texttemplate="%{x:,}<br>%{percentInitial:.1%}",
                name="sessions",
            )
        ],
        margin={"l": 80, "r": 20, "t": 10, "b": 20},
    )


def top_products_chart(products: list[dict[str, Any]]) -> go.Figure:
    # Plotly draws horizontal bars bottom-up: reversed, the best seller is on top.
    ranked = list(reversed(products))
    return _figure(
        [
            go.Bar(
                x=[p["units"] for p in ranked],
                y=[p["name"] for p in ranked],
                orientation="h",
                customdata=[[p["category"], p["orders"], p["product_id"]] for p in ranked],
                hovertemplate="%{y} (%{customdata[2]}, %{customdata[0]})<br>"
                "%{x:,} units in %{customdata[1]:,} orders<extra></extra>",
                name="units",
            )
        ],
        xaxis={"title": {"text": "units ordered"}},
        yaxis={"type": "category", "automargin": True},
    )


def dead_letters_chart(days: list[dict[str, Any]]) -> go.Figure:
    dates = sorted({d["date"] for d in days})
    by_reason: dict[str, dict[str, int]] = defaultdict(dict)
    for day in days:
        by_reason[day["reason"]][day["date"]] = day["dead_letters"]
    traces = [
        go.Bar(x=dates, y=[counts.get(d, 0) for d in dates], name=reason)
        for reason, counts in sorted(by_reason.items())
    ]
    return _figure(traces, barmode="stack", xaxis=_DAYS, yaxis={"title": {"text": "dead letters"}})


# The live panel's rows, top to bottom: (field, title, hover format).
LIVE_SERIES = (
    ("orders", "orders", "%{y:,}"),
    ("revenue_eur", "revenue €", "€%{y:,.2f}"),
    ("events_per_second", "events/s", "%{y:,.1f}"),
    ("dead_letters", "dead letters", "%{y:,}"),
)
_MINUTE_MS = 60_000
_OPEN_MINUTE = "#93c5fd"  # a minute the watermark has not closed yet: its figure may still grow
_CLOSED_MINUTE = "#2563eb"


def live_chart(minutes: list[dict[str, Any]]) -> go.Figure:
    """The stream's last hour per minute, one small chart per figure on a shared time axis.

    The axis spans the hour up to the newest minute, one bar per minute, so that a quiet
    minute shows as a gap and a few minutes do not stretch into wide bars.
    """
    figure = make_subplots(rows=len(LIVE_SERIES), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    # Naive UTC "YYYY-MM-DD HH:MM:SS", as plotly.js reads dates; a bar sits in the middle of its minute.
    x = [f"{m['minute'].replace('T', ' ')}:30" for m in minutes]
    colors = [_CLOSED_MINUTE if m["final"] else _OPEN_MINUTE for m in minutes]
    for row, (field, title, value_format) in enumerate(LIVE_SERIES, start=1):
        figure.add_trace(
            go.Bar(
                x=x,
                y=[m[field] for m in minutes],
                name=title,
                marker_color=colors,
                width=0.85 * _MINUTE_MS,
                hovertemplate=f"%{{x|%H:%M}} UTC<br>{value_format} {title}<extra></extra>",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        figure.update_yaxes(title={"text": title, "font": {"size": 11}}, rangemode="tozero", row=row, col=1)
    newest = datetime.fromisoformat(minutes[-1]["minute"])
    span = [(newest + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M") for m in (-59, 1)]
    figure.update_xaxes(type="date", tickformat="%H:%M", dtick=10 * _MINUTE_MS, range=span)
    figure.update_layout(template="plotly_white", height=420, margin={"l": 70, "r": 20, "t": 10, "b": 30}, bargap=0.15)
    return figure


CHARTS: dict[str, Callable[[Any], go.Figure]] = {
    "live": live_chart,
    "revenue": revenue_chart,
    "orders": orders_chart,
    "funnel": funnel_chart,
    "top_products": top_products_chart,
    "dead_letters": dead_letters_chart,
}


def figures(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One Plotly figure (``{"data": [...], "layout": {...}}``) per section that has data."""
    result = {}
    for name, section in sections.items():
        if section["ok"]:
            empty = not section["data"] or (name == "funnel" and not section["data"][0]["sessions"])
            result[name] = (_empty() if empty else CHARTS[name](section["data"])).to_plotly_json()
    return result
