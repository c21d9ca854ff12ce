"""The product catalogue of a generated data set: id, name, category and list price.

``write_files`` writes it as ``_products.csv`` beside the events (the underscore keeps
it out of ``events-*`` input patterns, as ``_manifest.json``). The catalogue of the
default configuration is also the dbt seed ``products`` (``dbt/seeds/products.csv``; a
test keeps the two equal), from which the ``dim_products`` mart names products.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from beam_ecommerce.generator.config import GeneratorConfig
from beam_ecommerce.generator.pools import Product, build_pools

CATALOGUE_NAME = "_products.csv"
CATALOGUE_COLUMNS = ("product_id", "product_name", "product_category", "list_price_eur")


def catalogue_csv(config: GeneratorConfig) -> bytes:
    """The catalogue ``config``'s events are drawn from, as CSV with a header; prices in EUR."""
    return products_csv(build_pools(config.seed, config.num_users, config.num_products).products.items)


def products_csv(products: Iterable[Product]) -> bytes:
    """The catalogue of ``products`` (the pools a run already built), as :func:`catalogue_csv` writes it."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CATALOGUE_COLUMNS)
    for product in sorted(products, key=lambda p: p.product_id):
        writer.writerow((product.product_id, product.name, product.category, f"{product.prices['EUR']:.2f}"))
    return text.getvalue().encode()
