"""An independent check: orders and daily revenue recomputed in plain Python from raw_events.

Nothing here reads a dbt model to compute the expected figures: each order is rebuilt from
its events, the revenue rules applied as dm_daily_revenue documents them, and EUR
converted with the generator's own rates. Both marts must match exactly (money to the cent).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from beam_ecommerce.generator.pools import EXCHANGE_RATES
from tests.dbt.conftest import Built, query

pytestmark = pytest.mark.e2e

LIFECYCLE = {"created": 0, "paid": 1, "shipped": 2, "delivered": 3, "cancelled": 4, "refunded": 4}


def cents(value: float) -> float:
    """Rounds the exact binary value to the cent, half away from zero, as DuckDB's round() does."""
    return float(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass
class Order:
    order_id: str
    ordered_at: datetime
    order_date: date
    currency: str
    category: str
    gross: float
    refunded: float = 0.0
    refunds: int = 0
    statuses: list = field(default_factory=list)

    @property
    def cancelled(self) -> bool:
        return self.latest_status == "cancelled"

    @property
    def latest_status(self) -> str:
        # Latest by event time; at the same instant the later step of the lifecycle wins.
        return max(self.statuses, key=lambda s: (s[0], LIFECYCLE[s[1]], s[2]))[1]


def orders_from_raw_events(built: Built) -> dict[str, Order]:
    rows = query(
        built.warehouse,
        """select event_id, event_type, order_id, occurred_at, event_date, currency, items, revenue, status, amount
           from main.raw_events where order_id is not null order by occurred_at, event_id""",
    )
    orders: dict[str, Order] = {}
    for event_id, event_type, order_id, occurred_at, event_date, currency, items, revenue, _, _ in rows:
        if event_type == "order_placed" and order_id not in orders:
            largest = max(enumerate(items), key=lambda line: (line[1]["unit_price"] * line[1]["quantity"], -line[0]))
            orders[order_id] = Order(
                order_id,
                occurred_at,
                event_date,
                currency,
                largest[1]["product_category"],
                revenue,
                statuses=[(occurred_at, "created", event_id)],
            )
    for event_id, event_type, order_id, occurred_at, _, _, _, _, status, amount in rows:
        order = orders.get(order_id)
        if order is None or event_type != "order_status_changed":
            continue
        order.statuses.append((occurred_at, status, event_id))
        if status == "refunded":
            order.refunded += amount
            order.refunds += 1
    return orders


def test_fct_orders_matches_the_orders_rebuilt_from_raw_events(built: Built):
    expected = orders_from_raw_events(built)
    actual = {
        row[0]: row[1:]
        for row in query(
            built.warehouse,
            """select order_id, order_date, currency, product_category, gross_revenue, refunded_amount,
                      status, is_cancelled, is_refunded from marts.fct_orders""",
        )
    }
    assert len(expected) > 300
    assert actual.keys() == expected.keys()
    for order_id, order in expected.items():
        assert actual[order_id] == (
            order.order_date,
            order.currency,
            order.category,
            order.gross,
            cents(order.refunded),
            order.latest_status,
            order.cancelled,
            order.refunds > 0,
        ), order_id
    statuses = {order.latest_status for order in expected.values()}
    assert {"delivered", "cancelled", "refunded"} <= statuses, "the data set exercises the revenue rules"


def test_dm_daily_revenue_matches_a_recount_from_raw_events(built: Built):
    days: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for order in orders_from_raw_events(built).values():
        day = days[(order.order_date, order.category, order.currency)]
        day["orders"] += 1
        if order.cancelled:
            day["cancelled_orders"] += 1
            day["cancelled_revenue"] += order.gross
            continue
        day["gross_revenue"] += order.gross
        day["refunds"] += order.refunded
        day["refunded_orders"] += order.refunds > 0
    expected = {}
    for (revenue_date, category, currency), day in days.items():
        gross, refunds = cents(day["gross_revenue"]), cents(day["refunds"])
        kept = day["orders"] - day["cancelled_orders"]
        expected[(revenue_date, category, currency)] = (
            gross,
            refunds,
            cents(gross - refunds),
            cents((gross - refunds) / EXCHANGE_RATES[currency]),
            int(day["orders"]),
            int(day["cancelled_orders"]),
            int(day["refunded_orders"]),
            cents(day["cancelled_revenue"]),
            cents(gross / kept) if kept else None,
        )
    actual = {
        row[:3]: row[3:]
        for row in query(
            built.warehouse,
            """select revenue_date, product_category, currency, gross_revenue, refunds, net_revenue,
                      net_revenue_eur, orders, cancelled_orders, refunded_orders, cancelled_revenue,
                      average_order_value
               from marts.dm_daily_revenue""",
        )
    }
    assert actual == expected
    total_orders = sum(row[4] for row in expected.values())
    assert total_orders == query(built.warehouse, "select count(*) from marts.fct_orders")[0][0]
