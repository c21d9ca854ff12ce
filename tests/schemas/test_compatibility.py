"""Schema evolution of the contract: a new version may add fields; removing or retyping one is refused."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest

from beam_ecommerce.schemas import RAW_EVENTS, event_schemas
from beam_ecommerce.schemas.contract import IncompatibleSchemaChange, compose_contract


def _contract_files() -> dict[tuple[str, int], dict]:
    folder = resources.files("beam_ecommerce.schemas").joinpath("jsonschema")
    files = {}
    for entry in folder.iterdir():
        name, version, _ = entry.name.rsplit(".", 2)
        files[(name, int(version.removeprefix("v")))] = json.loads(entry.read_text("utf-8"))
    return files


def _with_order_placed_v2(change) -> dict:
    files = _contract_files()
    v2 = copy.deepcopy(files[("order_placed", 1)])
    change(v2)
    return files | {("order_placed", 2): v2}


def test_page_view_v2_adds_an_optional_field_and_the_warehouse_a_nullable_column():
    v1, v2 = event_schemas()[("page_view", 1)].schema, event_schemas()[("page_view", 2)].schema
    assert set(v2["properties"]) - set(v1["properties"]) == {"experiment_variant"}
    assert "experiment_variant" not in v2["required"]
    (column,) = [c for c in RAW_EVENTS.columns if c.name == "experiment_variant"]
    assert (column.type, column.mode) == ("STRING", "NULLABLE")


def test_a_version_that_adds_fields_composes():
    contract = compose_contract(
        _with_order_placed_v2(lambda v2: v2["properties"].update(coupon={"type": "string", "maxLength": 32}))
    )
    assert "coupon" in contract[("order_placed", 2)].schema["properties"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda v2: v2["properties"].pop("currency"), "removes field currency"),
        (
            lambda v2: v2["properties"].update(order_id={"type": "integer"}),
            "changes the type of order_id from string to integer",
        ),
        (
            lambda v2: v2["properties"]["items"]["items"]["properties"].update(quantity={"type": "string"}),
            "changes the type of items[].quantity from integer to string",
        ),
        (
            lambda v2: v2["properties"]["items"]["items"]["properties"].pop("unit_price"),
            "removes field items[].unit_price",
        ),
    ],
    ids=["removed", "retyped", "nested retyped", "nested removed"],
)
def test_a_version_that_removes_or_retypes_a_field_is_refused_with_a_clear_message(change, problem):
    with pytest.raises(IncompatibleSchemaChange) as refused:
        compose_contract(_with_order_placed_v2(change))
    message = str(refused.value)
    assert message.startswith("order_placed v2 is not backward compatible with v1: ")
    assert problem in message
