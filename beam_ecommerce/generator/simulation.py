"""The shop's valid events: browsing sessions, carts, orders, payments and order lifecycles.

Events come out in time order. Sessions start along a daily traffic curve at a pace
that is re-planned at every session start, so that the requested number of events
fills the whole window; an order's later status changes wait in the same time-ordered
queue as the sessions' events. Events that would fall after the window are never made.

This is the generator's hot path: it samples with plain ``random()`` draws and table
look-ups (the shoppers' odds and tables, in ``behaviour``) rather than ``random.choices`` or
``datetime`` objects.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import defaultdict
from math import log
from operator import itemgetter

from beam_ecommerce.generator.behaviour import (
    ADD_TO_CART_DELAY,
    BROWSE_PAGES,
    CART_VIEW_DELAY,
    CHECKOUT_DELAY,
    CONFIRMATION_DELAY,
    LANDING_PAGES,
    MAX_CART_LINES,
    ORDER_DELAY,
    P_ADD_VIEWED_PRODUCT,
    P_CANCEL_PAID,
    P_CART_SESSION,
    P_FULL_REFUND,
    P_HOME_IP,
    P_ORDER_GIVEN_CART,
    P_PAYMENT_FAILS,
    P_PREFERRED_DEVICE,
    P_REFUND,
    P_RETRY_AFTER_FAILURE,
    P_SAME_CATEGORY,
    P_SWITCH_METHOD_ON_RETRY,
    P_VIEW_ABANDONED_CART,
    PAGE_DWELL,
    PAGE_VIEWS,
    PAYMENT_DELAY,
    PAYMENT_METHODS,
    QUANTILES,
    QUANTITIES,
    REFERRERS,
    RETRY_DELAY,
    SITE,
)
from beam_ecommerce.generator.clock import DAY, HOUR, MINUTE, Clock
from beam_ecommerce.generator.events import ID_BYTES, Event, envelope, order_lines, order_total, standalone_event
from beam_ecommerce.generator.pools import Pools, Product

# Events per session before the first sessions have been seen; only steers the start pace.
PRIOR_EVENTS_PER_SESSION = 6.0

# Event ids are made this many at a time. A session's browsing takes ids from the pool
# without checking, so it must hold more than one session can use (its id, one per
# page view and one per add to cart: at most 63).
ID_BATCH = 4096

_at = itemgetter(0)


class _Order:
    """A placed order whose status changes are still to come."""

    __slots__ = ("order_id", "envelope", "currency", "total", "unit_prices", "status", "next_status", "refund")

    def __init__(self, order_id: str, envelope: Event, currency: str, total: float, unit_prices: list[float]) -> None:
        self.order_id = order_id
        self.envelope = envelope
        self.currency = currency
        self.total = total
        self.unit_prices = unit_prices
        self.status = "created"
        self.next_status = ""
        self.refund = 0.0


class ShopSimulation:
    """An endless, time-ordered stream of valid events, paced to yield ``target`` events in the window.

    Events wait in per-minute buckets; a minute's bucket is sorted when the stream
    reaches it, after every session starting in that minute has queued its events, and
    its events get their ``occurred_at`` then, the minute's text made once for all of them.
    """

    def __init__(self, pools: Pools, clock: Clock, seed: int, target: int) -> None:
        self._pools = pools
        self._clock = clock
        self._rng = random.Random(seed)
        self._target = target
        self._buckets: defaultdict[int, list[tuple[int, Event | _Order]]] = defaultdict(list)
        self._minute = clock.start // MINUTE - 1
        self._ready: list[Event] = []
        self._ready_at = 0
        self._ids: list[str] = []
        self._made = 0
        self._sessions = 0
        self._traffic = 0.0
        self._next_session = clock.start
        self._plan_next_session()
        self.latest = clock.format(clock.start)
        """``occurred_at`` of the latest event taken (the window start before the first)."""

    def take(self, count: int) -> list[Event]:
        """The next ``count`` valid events, in time order."""
        taken: list[Event] = []
        while True:
            piece = self._ready[self._ready_at : self._ready_at + count - len(taken)]
            self._ready_at += len(piece)
            taken += piece
            if len(taken) == count:
                break
            self._open_next_minute()
        if taken:
            self.latest = taken[-1]["occurred_at"]
        return taken

    def _open_next_minute(self) -> None:
        buckets = self._buckets
        minute = self._minute + 1
        if not buckets:
            minute = max(minute, self._next_session // MINUTE)
        if minute * MINUTE >= self._clock.end:
            raise RuntimeError("the window ended before the target number of events")
        self._minute = minute
        minute_end = (minute + 1) * MINUTE
        # Once the queued events suffice for the target no more sessions are needed: this
        # also ends the ever denser sessions the pacing plans just before the window's end.
        while self._made < self._target and self._next_session < minute_end:
            self._session(self._next_session)
            self._sessions += 1
            self._plan_next_session()
        bucket = buckets.pop(minute, [])
        bucket.sort(key=_at)
        ready = [item if type(item) is dict else self._advance(item, ts) for ts, item in bucket]  # type: ignore[arg-type]
        for event, occurred_at in zip(ready, self._clock.format_minute(minute, map(_at, bucket)), strict=True):
            event["occurred_at"] = occurred_at
        self._ready = ready
        self._ready_at = 0

    def _plan_next_session(self) -> None:
        # Spread the sessions still needed evenly over the traffic still to come; the next
        # start is always strictly before the end of the window, so the stream never runs dry.
        events_per_session = self._made / self._sessions if self._sessions else PRIOR_EVENTS_PER_SESSION
        sessions = max(1.0, (self._target - self._made) / max(events_per_session, 1.0))
        draw = -log(1.0 - self._rng.random())
        self._traffic += (self._clock.total_traffic - self._traffic) * draw / (sessions + draw)
        self._next_session = max(self._next_session, self._clock.at_traffic(self._traffic))

    def _refill_ids(self) -> None:
        if len(self._ids) < ID_BATCH:
            self._ids += self._rng.randbytes(ID_BATCH * ID_BYTES).hex(" ", ID_BYTES).split()

    def _event(self, event_type: str, envelope: Event) -> Event:
        """A new event of ``event_type`` in ``envelope``; its ``occurred_at`` is set when its minute is opened."""
        self._refill_ids()
        event = envelope.copy()
        event["event_id"] = self._ids.pop()
        event["event_type"] = event_type
        return event

    def _push(self, ts: int, event: Event) -> None:
        self._buckets[ts // MINUTE].append((ts, event))
        self._made += 1

    def _schedule(self, order: _Order, status: str, ts: int) -> None:
        if ts < self._clock.end:
            order.next_status = status
            self._buckets[ts // MINUTE].append((ts, order))
            self._made += 1

    def _session(self, ts: int) -> None:
        uniform = self._rng.random
        pools = self._pools
        end = self._clock.end
        self._refill_ids()
        next_id = self._ids.pop
        buckets = self._buckets
        # The catalogue is sampled inline: this is the most frequent draw.
        catalogue, popularity, total_popularity = pools.products.items, pools.products.cumulative, pools.products.total
        by_category = pools.products_by_category
        search_terms = pools.search_terms

        user = pools.users.pick(uniform())
        device = user.device if uniform() < P_PREFERRED_DEVICE else pools.devices.pick(uniform())
        ip_address = user.home_ip if uniform() < P_HOME_IP else pools.ips[int(uniform() * len(pools.ips))]
        # Events are copies of it with their own fields set: cheaper than building them.
        session = envelope(user, next_id()[:16], device, ip_address)
        currency = user.currency
        carting = uniform() < P_CART_SESSION
        ordering = carting and uniform() < P_ORDER_GIVEN_CART
        views = PAGE_VIEWS[int(uniform() * QUANTILES)]

        referrer = REFERRERS[int(uniform() * 100)]
        page_type = LANDING_PAGES[int(uniform() * 100)]
        category: str | None = None
        product: Product | None = None
        cart: dict[str, tuple[Product, int]] = {}
        url = "/"
        queued = 0
        for view in range(views):
            if view:
                ts += PAGE_DWELL[int(uniform() * QUANTILES)]
                if ts >= end:
                    break
                page_type = BROWSE_PAGES[int(uniform() * 100)]
            if carting and not cart and view == views - 1:
                page_type = "product"
            event = session.copy()
            event["event_id"] = next_id()
            event["event_type"] = "page_view"
            if page_type == "product":
                if category is not None and uniform() < P_SAME_CATEGORY:
                    product = by_category[category].pick(uniform())
                else:
                    product = catalogue[bisect(popularity, uniform() * total_popularity)]
                category = product.category
                url = product.page_url
                event["page_url"] = url
                event["page_type"] = page_type
                event["product_id"] = product.product_id
                event["product_category"] = category
            elif page_type == "category":
                category = pools.categories.pick(uniform())
                url = f"/c/{category}"
                event["page_url"] = url
                event["page_type"] = page_type
                event["product_category"] = category
            else:
                category = None
                url = f"/search?q={search_terms[int(uniform() * len(search_terms))]}" if page_type == "search" else "/"
                event["page_url"] = url
                event["page_type"] = page_type
            if referrer is not None:
                event["referrer"] = referrer
            buckets[ts // MINUTE].append((ts, event))
            queued += 1
            referrer = SITE + url

            if (
                carting
                and page_type == "product"
                and product is not None
                and len(cart) < MAX_CART_LINES
                and (uniform() < P_ADD_VIEWED_PRODUCT or (not cart and view == views - 1))
            ):
                ts += ADD_TO_CART_DELAY[int(uniform() * QUANTILES)]
                if ts >= end:
                    break
                quantity = QUANTITIES[int(uniform() * 100)]
                event = session.copy()
                event["event_id"] = next_id()
                event["event_type"] = "add_to_cart"
                event["product_id"] = product.product_id
                event["product_category"] = product.category
                event["unit_price"] = product.prices[currency]
                event["quantity"] = quantity
                event["currency"] = currency
                buckets[ts // MINUTE].append((ts, event))
                queued += 1
                previous = cart.get(product.product_id)
                cart[product.product_id] = (product, quantity + (previous[1] if previous else 0))
        self._made += queued

        if ts >= end:
            return

        if ordering:
            self._checkout(ts, session, currency, SITE + url, list(cart.values()))
        elif cart and uniform() < P_VIEW_ABANDONED_CART:
            ts += PAGE_DWELL[int(uniform() * QUANTILES)]
            if ts < end:
                self._push(ts, self._page_view(session, "/cart", "cart", SITE + url))

    def _page_view(self, session: Event, url: str, page_type: str, referrer: str) -> Event:
        event = self._event("page_view", session)
        event["page_url"] = url
        event["page_type"] = page_type
        event["referrer"] = referrer
        return event

    def _checkout(self, ts: int, session: Event, currency: str, referrer: str, cart: list[tuple[Product, int]]) -> None:
        uniform = self._rng.random
        end = self._clock.end
        ts += CART_VIEW_DELAY[int(uniform() * QUANTILES)]
        if ts >= end:
            return
        self._push(ts, self._page_view(session, "/cart", "cart", referrer))
        ts += CHECKOUT_DELAY[int(uniform() * QUANTILES)]
        if ts >= end:
            return
        self._push(ts, self._page_view(session, "/checkout", "checkout", SITE + "/cart"))

        ts += ORDER_DELAY[int(uniform() * QUANTILES)]
        if ts >= end:
            return
        items = order_lines(cart, currency)
        order = _Order(
            f"o{self._rng.randbytes(8).hex()}", session, currency, order_total(items), [i["unit_price"] for i in items]
        )
        event = self._event("order_placed", session)
        event["order_id"] = order.order_id
        event["items"] = items
        event["currency"] = currency
        event["status"] = "created"
        self._push(ts, event)

        ts += PAYMENT_DELAY[int(uniform() * QUANTILES)]
        if ts >= end:
            return
        method = PAYMENT_METHODS[int(uniform() * 100)]
        if uniform() < P_PAYMENT_FAILS:
            self._push(ts, self._payment(order, method, "failed"))
            if uniform() >= P_RETRY_AFTER_FAILURE:
                self._schedule(order, "cancelled", ts + 30 * MINUTE + int(uniform() * HOUR))
                return
            ts += RETRY_DELAY[int(uniform() * QUANTILES)]
            if ts >= end:
                return
            if uniform() < P_SWITCH_METHOD_ON_RETRY:
                method = PAYMENT_METHODS[int(uniform() * 100)]
        self._push(ts, self._payment(order, method, "succeeded"))
        self._schedule(order, "paid", ts + CONFIRMATION_DELAY[int(uniform() * QUANTILES)])

    def _payment(self, order: _Order, method: str, status: str) -> Event:
        event = self._event("payment", order.envelope)
        event["order_id"] = order.order_id
        event["payment_id"] = f"pay{self._rng.randbytes(8).hex()}"
        event["amount"] = order.total
        event["currency"] = order.currency
        event["payment_method"] = method
        event["payment_status"] = status
        return event

    def _advance(self, order: _Order, ts: int) -> Event:
        """The status change ``order`` was waiting for at ``ts``; schedules the one after it."""
        status = order.next_status
        event = self._event("order_status_changed", order.envelope)
        event["order_id"] = order.order_id
        event["status"] = status
        event["previous_status"] = order.status
        if status == "refunded":
            event["amount"] = order.refund
            event["currency"] = order.currency
        order.status = status

        uniform = self._rng.random
        if status == "paid":
            if uniform() < P_CANCEL_PAID:
                self._schedule(order, "cancelled", ts + HOUR + int(uniform() * 11 * HOUR))
            else:
                self._schedule(order, "shipped", ts + 6 * HOUR + int(uniform() * 42 * HOUR))
        elif status == "shipped":
            self._schedule(order, "delivered", ts + DAY + int(uniform() * 3 * DAY))
        elif status == "delivered" and uniform() < P_REFUND:
            if uniform() < P_FULL_REFUND:
                order.refund = order.total
            else:
                order.refund = order.unit_prices[int(uniform() * len(order.unit_prices))]
            self._schedule(order, "refunded", ts + DAY + int(uniform() * 9 * DAY))
        return event

    def fresh_event(self, rng: random.Random, event_type: str) -> Event:
        """A standalone valid event of ``event_type`` at the current time, drawn from ``rng``."""
        return standalone_event(self._pools, rng, event_type, self.latest)
