"""The product catalogue the generator writes beside its events, and the dbt seed made from it."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from pathlib import Path

import orjson

from beam_ecommerce.generator import GeneratorConfig, generate_events, write_files
from beam_ecommerce.generator.catalogue import CATALOGUE_COLUMNS, CATALOGUE_NAME, catalogue_csv
from beam_ecommerce.generator.pools import CATEGORIES

SEED = Path(__file__).resolve().parents[2] / "dbt" / "seeds" / "products.csv"
CONFIG = GeneratorConfig(num_events=3_000, seed=9, num_products=60)


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_the_catalogue_lists_every_product_the_events_sell_with_its_category_and_price():
    products = {row["product_id"]: row for row in _rows(catalogue_csv(CONFIG))}
    assert len(products) == CONFIG.num_products
    assert {row["product_category"] for row in products.values()} <= {name for name, *_ in CATEGORIES}
    assert all(row["product_name"] and row["product_name"] != row["product_id"] for row in products.values())
    seen = Counter()
    for record in generate_events(CONFIG):
        event = orjson.loads(record.payload) if record.kind == "valid" else None
        for line in (event or {}).get("items") or ():
            catalogued = products[line["product_id"]]
            assert line["product_category"] == catalogued["product_category"]
            if event["currency"] == "EUR":
                assert line["unit_price"] == float(catalogued["list_price_eur"])
            seen[line["product_id"]] += 1
    assert seen, "the events should have sold something"


def test_naming_products_leaves_the_events_as_they_were():
    """Names draw nothing from the random generator: the events' bytes are those from before names existed."""
    digest = hashlib.sha256()
    for record in generate_events(GeneratorConfig(num_events=2_000, seed=9, num_products=60)):
        digest.update(record.payload + b"\n")
    assert digest.hexdigest() == "fcbd0a2b27f86117ead0a663081e97ec79aa4542d01cbdb18964535c48ca1642"


def test_write_files_puts_the_catalogue_beside_the_events(tmp_path):
    write_files(CONFIG, str(tmp_path))
    written = (tmp_path / CATALOGUE_NAME).read_bytes()
    assert written == catalogue_csv(CONFIG)
    assert tuple(_rows(written)[0]) == CATALOGUE_COLUMNS


def test_the_dbt_seed_is_the_default_data_sets_catalogue():
    """`beam-ecommerce demo` generates with the default seed: the seed names its products."""
    assert SEED.read_bytes() == catalogue_csv(GeneratorConfig())
