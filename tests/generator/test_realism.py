"""The valid events tell a consistent, plausible story: sessions, funnels, order lifecycles."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest

from beam_ecommerce.generator.pools import CATEGORIES
from tests.generator.conftest import CONFIG

LEGAL_TRANSITIONS = {
    ("created", "paid"),
    ("created", "cancelled"),
    ("paid", "shipped"),
    ("paid", "cancelled"),
    ("shipped", "delivered"),
    ("delivered", "refunded"),
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")


def _sessions(events: list[dict]) -> dict[str, list[dict]]:
    sessions: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        sessions[event["session_id"]].append(event)
    return sessions


def test_timestamps_are_utc_inside_the_window_and_in_time_order(valid_events):
    start, end = CONFIG.start, CONFIG.start + timedelta(days=CONFIG.days)
    stamps = [event["occurred_at"] for event in valid_events]
    assert all(TIMESTAMP.match(stamp) for stamp in stamps)
    moments = [datetime.fromisoformat(stamp) for stamp in stamps]
    assert all(start <= moment < end for moment in moments)
    assert moments == sorted(moments)
    # The whole window is used, not just its beginning.
    assert moments[-1] - moments[0] > timedelta(days=CONFIG.days - 1)


def test_session_timestamps_never_go_back(valid_events):
    for events in _sessions(valid_events).values():
        stamps = [event["occurred_at"] for event in events]
        assert stamps == sorted(stamps)


def test_user_attributes_are_stable_and_session_attributes_per_session(valid_events):
    users: dict[str, tuple] = {}
    sessions: dict[str, tuple] = {}
    for event in valid_events:
        user = (event["country"], event["signup_channel"], event["email"])
        assert users.setdefault(event["user_id"], user) == user
        session = (event["user_id"], event["device"], event["ip_address"])
        assert sessions.setdefault(event["session_id"], session) == session
    assert len(users) > 1_000
    countries = Counter(country for country, _, _ in users.values())
    assert all(re.fullmatch(r"[A-Z]{2}", country) for country in countries)
    assert countries.most_common(1)[0][1] < 0.35 * len(users)


def test_every_payment_and_status_change_follows_its_order_placed_by_the_same_user(valid_events):
    orders: dict[str, dict] = {}
    transitions: Counter[tuple[str, str]] = Counter()
    for event in valid_events:
        if event["event_type"] == "order_placed":
            assert event["order_id"] not in orders
            orders[event["order_id"]] = {"user": event["user_id"], "status": "created", "event": event, "paid": 0}
        elif event["event_type"] in ("payment", "order_status_changed"):
            order = orders[event["order_id"]]
            assert order["user"] == event["user_id"]
            assert event["session_id"] == order["event"]["session_id"]
            if event["event_type"] == "payment":
                assert order["status"] == "created"
                assert event["amount"] == pytest.approx(_total(order["event"]))
                assert event["currency"] == order["event"]["currency"]
                order["paid"] += event["payment_status"] == "succeeded"
            else:
                assert event["previous_status"] == order["status"]
                transitions[(event["previous_status"], event["status"])] += 1
                if event["status"] == "paid":
                    assert order["paid"] == 1
                if event["status"] == "refunded":
                    assert 0 < event["amount"] <= _total(order["event"]) + 1e-9
                    assert event["currency"] == order["event"]["currency"]
                order["status"] = event["status"]
    assert set(transitions) == LEGAL_TRANSITIONS, "every lifecycle step shows up, and no other"


def _total(order_placed: dict) -> float:
    return round(sum(item["unit_price"] * item["quantity"] for item in order_placed["items"]), 2)


def test_orders_hold_what_was_put_in_the_cart_at_the_cart_price(valid_events):
    for events in _sessions(valid_events).values():
        carted: Counter[str] = Counter()
        prices: dict[str, float] = {}
        for event in events:
            if event["event_type"] == "add_to_cart":
                carted[event["product_id"]] += event["quantity"]
                prices[event["product_id"]] = event["unit_price"]
            elif event["event_type"] == "order_placed":
                ordered = {item["product_id"]: item for item in event["items"]}
                assert Counter({pid: item["quantity"] for pid, item in ordered.items()}) == carted
                assert all(item["unit_price"] == prices[pid] for pid, item in ordered.items())


def test_failed_payments_are_retried_or_the_order_is_cancelled(valid_events):
    payments: dict[str, list[str]] = defaultdict(list)
    cancelled_unpaid: set[str] = set()
    for event in valid_events:
        if event["event_type"] == "payment":
            payments[event["order_id"]].append(event["payment_status"])
        elif event["event_type"] == "order_status_changed" and event["previous_status"] == "created":
            if event["status"] == "cancelled":
                cancelled_unpaid.add(event["order_id"])
    failed_first = [order for order, statuses in payments.items() if statuses[0] == "failed"]
    assert failed_first and cancelled_unpaid
    # A failure is followed by a successful retry, or by nothing (the order gets cancelled
    # unless the window ends first).
    assert all(payments[order] in (["failed", "succeeded"], ["failed"]) for order in failed_first)
    assert all(payments[order] == ["failed"] for order in cancelled_unpaid)
    assert all(statuses in (["succeeded"], ["failed", "succeeded"], ["failed"]) for statuses in payments.values())


def test_funnel_rates_are_plausible(valid_events):
    sessions = _sessions(valid_events)
    types_per_session = [{event["event_type"] for event in events} for events in sessions.values()]
    carted = sum("add_to_cart" in types for types in types_per_session) / len(sessions)
    ordered = sum("order_placed" in types for types in types_per_session) / len(sessions)
    assert 0.2 < carted < 0.45
    assert 0.05 < ordered < 0.2
    views = Counter(event["event_type"] for event in valid_events)["page_view"]
    assert 3 < views / len(sessions) < 8


def test_page_views_carry_what_their_page_shows(valid_events):
    page_types = Counter()
    for event in valid_events:
        if event["event_type"] != "page_view":
            continue
        page_types[event["page_type"]] += 1
        assert event["page_url"].startswith("/")
        if event["page_type"] == "product":
            assert event["product_id"] in event["page_url"] and event["product_category"]
        elif event["page_type"] == "category":
            assert event["page_url"] == f"/c/{event['product_category']}" and "product_id" not in event
        else:
            assert "product_id" not in event and "product_category" not in event
        assert event.get("referrer", "https://").startswith("https://")
    assert set(page_types) == {"home", "category", "product", "search", "cart", "checkout"}


def test_prices_are_plausible_per_category_and_currency(valid_events):
    ranges = {name: (low, high) for name, low, high, _ in CATEGORIES}
    currencies: Counter[str] = Counter()
    for event in valid_events:
        if event["event_type"] == "add_to_cart":
            currencies[event["currency"]] += 1
            assert 1 <= event["quantity"] <= 3
            if event["currency"] == "EUR":
                low, high = ranges[event["product_category"]]
                assert low - 1 <= event["unit_price"] <= high + 1
                assert round(event["unit_price"] % 1, 2) in (0.49, 0.99)
    total = sum(currencies.values())
    assert (currencies["EUR"] + currencies["USD"]) / total > 0.7
    assert 3 <= len(currencies) <= 10
    assert currencies.most_common(1)[0][0] in ("EUR", "USD")
