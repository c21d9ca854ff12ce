"""Reference data the generator samples from: users, products, IP addresses, search terms.

Faker is only used here, once per run and seeded, to build the pools; events are then
made by cheap sampling from them with ``random.Random``.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from faker import Faker

T = TypeVar("T")

# (ISO 3166-1 alpha-2, currency, share of users): an EU-based shop with a large US market,
# so EUR and USD dominate.
COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("DE", "EUR", 20.0),
    ("US", "USD", 18.0),
    ("FR", "EUR", 12.0),
    ("GB", "GBP", 8.0),
    ("NL", "EUR", 6.0),
    ("ES", "EUR", 6.0),
    ("IT", "EUR", 6.0),
    ("PL", "PLN", 4.0),
    ("BE", "EUR", 3.0),
    ("AT", "EUR", 3.0),
    ("SE", "SEK", 2.5),
    ("CA", "CAD", 2.0),
    ("CH", "CHF", 2.0),
    ("IE", "EUR", 1.5),
    ("PT", "EUR", 1.5),
    ("FI", "EUR", 1.0),
)
# Users from anywhere else pay in USD; together they are this share of all users.
OTHER_COUNTRIES = 12
OTHER_COUNTRIES_SHARE = 2.5

# Units of each currency per EUR: product prices are set in EUR and converted once.
EXCHANGE_RATES: dict[str, float] = {
    "EUR": 1.0,
    "USD": 1.08,
    "GBP": 0.85,
    "PLN": 4.3,
    "SEK": 11.4,
    "CAD": 1.47,
    "CHF": 0.95,
}

# (name, min EUR price, max EUR price, share of the catalogue)
CATEGORIES: tuple[tuple[str, float, float, float], ...] = (
    ("electronics", 19.0, 500.0, 16.0),
    ("fashion", 9.0, 180.0, 20.0),
    ("home_kitchen", 6.0, 300.0, 14.0),
    ("books", 5.0, 40.0, 12.0),
    ("sports_outdoors", 9.0, 350.0, 10.0),
    ("beauty", 4.0, 70.0, 9.0),
    ("toys_games", 5.0, 120.0, 8.0),
    ("garden", 6.0, 250.0, 6.0),
    ("grocery", 2.0, 30.0, 5.0),
)

# What each category sells, for product names ("Bright Season Kettle"): picked by product
# number, so that naming draws nothing from the random generator and the events stay the same.
CATEGORY_NOUNS: dict[str, tuple[str, ...]] = {
    "electronics": ("Headphones", "Charger", "Speaker", "Monitor", "Keyboard", "Camera"),
    "fashion": ("Jacket", "Sneakers", "Scarf", "Dress", "Jeans", "Hat"),
    "home_kitchen": ("Kettle", "Frying Pan", "Lamp", "Blender", "Mug Set", "Cushion"),
    "books": ("Novel", "Cookbook", "Atlas", "Field Guide", "Anthology", "Memoir"),
    "sports_outdoors": ("Tent", "Yoga Mat", "Backpack", "Bike Light", "Water Bottle", "Racket"),
    "beauty": ("Serum", "Lipstick", "Shampoo", "Face Cream", "Perfume", "Nail Polish"),
    "toys_games": ("Puzzle", "Board Game", "Robot Kit", "Plush Bear", "Kite", "Card Game"),
    "garden": ("Hose", "Planter", "Pruner", "Seed Kit", "Bird Feeder", "Watering Can"),
    "grocery": ("Coffee", "Olive Oil", "Tea", "Honey", "Pasta", "Chocolate"),
}

SIGNUP_CHANNELS: tuple[tuple[str, float], ...] = (
    ("organic", 30.0),
    ("paid_search", 20.0),
    ("direct", 15.0),
    ("social", 15.0),
    ("email", 10.0),
    ("referral", 10.0),
)

DEVICES: tuple[tuple[str, float], ...] = (("mobile", 55.0), ("desktop", 38.0), ("tablet", 7.0))

_NAME_POOL = 200
_DOMAIN_POOL = 12
_WORD_POOL = 600
_NETWORK_POOL = 256
_MAX_IP_POOL = 4096


@dataclass(frozen=True, slots=True)
class User:
    """A shop user and the attributes every one of their events carries."""

    user_id: str
    country: str
    currency: str
    signup_channel: str
    email: str
    home_ip: str
    device: str


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue product with its price in every currency."""

    product_id: str
    category: str
    page_url: str
    prices: dict[str, float]
    name: str = ""


class Weighted(Generic[T]):
    """Items with weights, sampled in O(log n) from one uniform draw."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = tuple(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, uniform: float) -> T:
        """The item at ``uniform`` (a draw from ``[0, 1)``) of the weight distribution."""
        return self.items[bisect(self.cumulative, uniform * self.total)]


@dataclass(frozen=True)
class Pools:
    """Everything events are sampled from, built once per run."""

    users: Weighted[User]
    products: Weighted[Product]
    products_by_category: dict[str, Weighted[Product]]
    categories: Weighted[str]
    devices: Weighted[str]
    ips: tuple[str, ...]
    search_terms: tuple[str, ...]


def _charm_price(amount: float) -> float:
    """Shop prices end in .99 (or .49 below 5)."""
    if amount < 5:
        return round(math.floor(amount) + 0.49, 2)
    return round(math.floor(amount) + 0.99, 2)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def build_pools(seed: int, num_users: int, num_products: int) -> Pools:
    """Build the pools of one run from its seed."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(f"pools:{seed}")

    first_names = [name for name in (_slug(fake.first_name()).replace("-", "") for _ in range(_NAME_POOL)) if name]
    last_names = [name for name in (_slug(fake.last_name()).replace("-", "") for _ in range(_NAME_POOL)) if name]
    domains = [fake.free_email_domain() for _ in range(_DOMAIN_POOL)]
    words = list(dict.fromkeys(word for word in (_slug(fake.word()) for _ in range(_WORD_POOL)) if word))
    # Hosts in a few hundred public /24 networks: Faker is slow at making public addresses.
    networks = [fake.ipv4_public().rsplit(".", 1)[0] for _ in range(_NETWORK_POOL)]
    ips = tuple(
        f"{rng.choice(networks)}.{rng.randrange(1, 255)}" for _ in range(min(_MAX_IP_POOL, max(256, num_users)))
    )
    others: list[str] = []
    known = {code for code, _, _ in COUNTRIES}
    while len(others) < OTHER_COUNTRIES:
        code = fake.country_code()
        if code not in known:
            known.add(code)
            others.append(code)

    countries = Weighted(
        [(code, currency) for code, currency, _ in COUNTRIES] + [(code, "USD") for code in others],
        [share for _, _, share in COUNTRIES] + [OTHER_COUNTRIES_SHARE / OTHER_COUNTRIES] * OTHER_COUNTRIES,
    )
    channels = Weighted([name for name, _ in SIGNUP_CHANNELS], [w for _, w in SIGNUP_CHANNELS])
    devices = Weighted([name for name, _ in DEVICES], [w for _, w in DEVICES])

    users: list[User] = []
    for index in range(num_users):
        country, currency = countries.pick(rng.random())
        local = f"{rng.choice(first_names)}.{rng.choice(last_names)}"
        if rng.random() < 0.5:
            local += str(rng.randrange(1, 100))
        users.append(
            User(
                user_id=f"u{index:07d}",
                country=country,
                currency=currency,
                signup_channel=channels.pick(rng.random()),
                email=f"{local}@{rng.choice(domains)}",
                home_ip=rng.choice(ips),
                device=devices.pick(rng.random()),
            )
        )
    # Activity is heavy-tailed: a few users come back far more often than most.
    user_weights = [rng.lognormvariate(0.0, 1.0) for _ in users]

    category_pick = Weighted(CATEGORIES, [share for *_, share in CATEGORIES])
    products: list[Product] = []
    for index in range(num_products):
        name, low, high, _ = category_pick.pick(rng.random())
        base = math.exp(rng.uniform(math.log(low), math.log(high)))
        product_id = f"p{index:06d}"
        slug_words = rng.sample(words, 3)
        nouns = CATEGORY_NOUNS[name]
        products.append(
            Product(
                product_id=product_id,
                category=name,
                page_url=f"/p/{'-'.join(slug_words)}-{product_id}",
                prices={currency: _charm_price(base * rate) for currency, rate in EXCHANGE_RATES.items()},
                name=f"{slug_words[0].title()} {slug_words[1].title()} {nouns[index % len(nouns)]}",
            )
        )
    # Popularity follows a Zipf-like law over a shuffled catalogue.
    ranks = list(range(num_products))
    rng.shuffle(ranks)
    popularity = [1.0 / (rank + 1) ** 0.9 for rank in ranks]

    by_category: dict[str, Weighted[Product]] = {}
    for name, *_ in CATEGORIES:
        members = [(p, w) for p, w in zip(products, popularity, strict=True) if p.category == name]
        if members:
            by_category[name] = Weighted([p for p, _ in members], [w for _, w in members])
    category_traffic: dict[str, float] = {}
    for product, weight in zip(products, popularity, strict=True):
        category_traffic[product.category] = category_traffic.get(product.category, 0.0) + weight

    return Pools(
        users=Weighted(users, user_weights),
        products=Weighted(products, popularity),
        products_by_category=by_category,
        categories=Weighted(list(category_traffic), list(category_traffic.values())),
        devices=devices,
        ips=ips,
        search_terms=tuple(words),
    )
