"""Hand-written valid events, one per type: the fixtures the tests build on."""

from __future__ import annotations

import copy
from typing import Any

_ENVELOPE = {
    "occurred_at": "2026-11-03T10:15:30.250000Z",
    "user_id": "user-0001",
    "session_id": "sess-0001",
    "country": "DE",
    "signup_channel": "organic",
    "device": "mobile",
    "email": "Jane.Doe@example.com",
    "ip_address": "203.0.113.7",
}

_BODIES: dict[str, dict[str, Any]] = {
    "page_view": {
        "page_url": "/p/espresso-machine",
        "page_type": "product",
        "referrer": None,
        "product_id": "prod-0042",
        "product_category": "kitchen",
    },
    "add_to_cart": {
        "product_id": "prod-0042",
        "product_category": "kitchen",
        "unit_price": 249.9,
        "quantity": 1,
        "currency": "EUR",
    },
    "order_placed": {
        "order_id": "order-0001",
        "currency": "EUR",
        "status": "created",
        "items": [
            {"product_id": "prod-0042", "product_category": "kitchen", "unit_price": 249.9, "quantity": 1},
            {"product_id": "prod-0007", "product_category": "books", "unit_price": 12.5, "quantity": 3},
        ],
    },
    "payment": {
        "order_id": "order-0001",
        "payment_id": "pay-0001",
        "amount": 287.4,
        "currency": "EUR",
        "payment_method": "card",
        "payment_status": "succeeded",
    },
    "order_status_changed": {
        "order_id": "order-0001",
        "status": "refunded",
        "previous_status": "delivered",
        "amount": 287.4,
        "currency": "EUR",
    },
}

EVENT_TYPES = tuple(_BODIES)


def sample_event(event_type: str, event_id: str = "evt-00000001") -> dict[str, Any]:
    """A valid event of ``event_type`` (a fresh copy)."""
    return {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        **copy.deepcopy(_ENVELOPE),
        **copy.deepcopy(_BODIES[event_type]),
    }
