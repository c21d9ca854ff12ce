"""The shapes of the shop's valid events, and standalone ones that belong to no session."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from beam_ecommerce.generator.pools import Pools, Product, User

Event = dict[str, Any]

# The event types the simulation makes (standalone_event makes any of them).
EVENT_TYPES = ("page_view", "add_to_cart", "order_placed", "payment", "order_status_changed")
# An event id is this many random bytes in hex.
ID_BYTES = 16


def envelope(user: User, session_id: str, device: str, ip_address: str) -> Event:
    """The envelope every event of one session carries, with the per-event fields
    (``event_id``, ``event_type``, ``occurred_at``) still to fill in."""
    return {
        "event_id": "",
        "event_type": "",
        "schema_version": 1,
        "occurred_at": "",
        "user_id": user.user_id,
        "session_id": session_id,
        "country": user.country,
        "signup_channel": user.signup_channel,
        "device": device,
        "email": user.email,
        "ip_address": ip_address,
    }


def order_lines(cart: Sequence[tuple[Product, int]], currency: str) -> list[Event]:
    """The ``items`` of an order for cart lines ``(product, quantity)``."""
    return [
        {
            "product_id": product.product_id,
            "product_category": product.category,
            "unit_price": product.prices[currency],
            "quantity": quantity,
        }
        for product, quantity in cart
    ]


def order_total(items: list[Event]) -> float:
    """What an order costs: the sum of its lines, to the cent."""
    return round(sum(item["unit_price"] * item["quantity"] for item in items), 2)


def standalone_event(pools: Pools, rng: random.Random, event_type: str, occurred_at: str) -> Event:
    """A valid event of ``event_type`` at ``occurred_at``, drawn from ``rng``.

    It belongs to no session of the stream and is never emitted by it: malformed
    records are built from such events so that the valid funnels stay consistent.
    """
    user = pools.users.items[rng.randrange(len(pools.users.items))]
    event = envelope(user, rng.randbytes(8).hex(), user.device, user.home_ip)
    event["event_id"] = rng.randbytes(ID_BYTES).hex()
    event["event_type"] = event_type
    event["occurred_at"] = occurred_at
    products = pools.products.items
    product = products[rng.randrange(len(products))]
    currency = user.currency
    order_id = f"o{rng.randbytes(8).hex()}"
    if event_type == "page_view":
        event.update(
            page_url=product.page_url,
            page_type="product",
            product_id=product.product_id,
            product_category=product.category,
        )
    elif event_type == "add_to_cart":
        event.update(
            product_id=product.product_id,
            product_category=product.category,
            unit_price=product.prices[currency],
            quantity=1 + rng.randrange(3),
            currency=currency,
        )
    elif event_type == "order_placed":
        cart = [(p, 1 + rng.randrange(3)) for p in rng.sample(products, min(len(products), 1 + rng.randrange(3)))]
        event.update(order_id=order_id, items=order_lines(cart, currency), currency=currency, status="created")
    elif event_type == "payment":
        event.update(
            order_id=order_id,
            payment_id=f"pay{rng.randbytes(8).hex()}",
            amount=product.prices[currency],
            currency=currency,
            payment_method="card",
            payment_status="succeeded",
        )
    elif event_type == "order_status_changed":
        event.update(order_id=order_id, status="paid", previous_status="created")
    else:
        raise ValueError(f"unknown event type {event_type!r}")
    return event
