"""How the simulated shoppers behave: the odds of their choices and the draw tables of their
quantities, pages and delays.

Draws are table look-ups on one ``random()`` each (``table[int(random() * len(table))]``
in effect), cheaper on the generator's hot path than ``random.choices`` or ``expovariate``.
"""

from __future__ import annotations

from math import log
from typing import Any

from beam_ecommerce.generator.clock import MINUTE, SECOND

SITE = "https://shop.example.com"

P_CART_SESSION = 0.32
P_ORDER_GIVEN_CART = 0.33
P_ADD_VIEWED_PRODUCT = 0.5
P_VIEW_ABANDONED_CART = 0.4
P_SAME_CATEGORY = 0.7
P_PREFERRED_DEVICE = 0.8
P_HOME_IP = 0.7
P_PAYMENT_FAILS = 0.12
P_RETRY_AFTER_FAILURE = 0.75
P_SWITCH_METHOD_ON_RETRY = 0.3
P_CANCEL_PAID = 0.04
P_REFUND = 0.05
P_FULL_REFUND = 0.6
MAX_CART_LINES = 5


def percent_table(weights: dict[Any, int]) -> tuple[Any, ...]:
    """A 100-slot look-up table: ``table[int(random() * 100)]`` draws by the integer percentages."""
    if sum(weights.values()) != 100:
        raise ValueError(f"weights must sum to 100: {weights}")
    return tuple(item for item, weight in weights.items() for _ in range(weight))


LANDING_PAGES = percent_table({"home": 40, "product": 30, "category": 20, "search": 10})
BROWSE_PAGES = percent_table({"product": 55, "category": 22, "search": 15, "home": 8})
REFERRERS = percent_table(
    {
        None: 35,
        "https://www.google.com/": 33,
        "https://www.bing.com/": 4,
        "https://www.facebook.com/": 8,
        "https://www.instagram.com/": 6,
        "https://newsletter.shop.example.com/weekly": 8,
        "https://www.pricerunner.com/": 6,
    }
)
QUANTITIES = percent_table({1: 75, 2: 18, 3: 7})
PAYMENT_METHODS = percent_table({"card": 62, "paypal": 25, "bank_transfer": 7, "gift_card": 6})


QUANTILES = 1024


def exponential_table(minimum: int, mean: float) -> tuple[int, ...]:
    """``minimum`` plus an exponential part with ``mean``, at evenly spaced quantiles:
    ``table[int(random() * QUANTILES)]`` draws one."""
    return tuple(minimum + int(-log(1.0 - (i + 0.5) / QUANTILES) * mean) for i in range(QUANTILES))


# Page views of a visit (at most 31).
PAGE_VIEWS = exponential_table(1, 4.0)
# Microseconds between the steps of a visit.
PAGE_DWELL = exponential_table(4 * SECOND, 40 * SECOND)
ADD_TO_CART_DELAY = exponential_table(3 * SECOND, 15 * SECOND)
CART_VIEW_DELAY = exponential_table(4 * SECOND, 30 * SECOND)
CHECKOUT_DELAY = exponential_table(5 * SECOND, 30 * SECOND)
ORDER_DELAY = exponential_table(20 * SECOND, MINUTE)
PAYMENT_DELAY = exponential_table(2 * SECOND, 10 * SECOND)
RETRY_DELAY = exponential_table(20 * SECOND, MINUTE)
CONFIRMATION_DELAY = exponential_table(SECOND, 2 * SECOND)
