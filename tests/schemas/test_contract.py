import duckdb
import fastjsonschema
import pytest
from jsonschema import Draft7Validator

from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS, csv_columns, event_types, json_schema, validator
from tests.samples import EVENT_TYPES, sample_event


def test_contract_knows_every_shop_event_type():
    assert set(event_types()) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_composed_schema_is_valid_draft7_and_accepts_the_sample(event_type):
    schema = json_schema(event_type, 1)
    Draft7Validator.check_schema(schema)
    Draft7Validator(schema).validate(sample_event(event_type))
    validator(event_type, 1)(sample_event(event_type))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_requires_the_envelope(event_type):
    required = set(json_schema(event_type, 1)["required"])
    assert {"event_id", "event_type", "schema_version", "occurred_at", "user_id", "session_id"} <= required


def test_unknown_fields_are_rejected_not_dropped():
    event = sample_event("payment") | {"coupon": "X"}
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validator("payment", 1)(event)


def test_event_type_is_pinned_to_its_schema():
    event = sample_event("payment") | {"event_type": "page_view"}
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validator("payment", 1)(event)


def test_timestamps_must_be_utc():
    event = sample_event("page_view") | {"occurred_at": "2026-11-03T10:15:30+02:00"}
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validator("page_view", 1)(event)


def test_raw_events_holds_every_field_but_clear_pii():
    columns = set(RAW_EVENTS.column_names)
    fields = set(csv_columns())
    assert fields - {"email", "ip_address"} <= columns
    assert not {"email", "ip_address"} & columns
    assert {"email_hash", "ip_address_hash", "event_date", "revenue", "ingested_at", "source"} <= columns


def test_partitioning_and_clustering_name_real_columns():
    for table in (RAW_EVENTS, DEAD_LETTER):
        assert table.partition_field in table.column_names
        assert set(table.cluster_fields) <= set(table.column_names)


def test_dead_letter_keeps_googles_template_columns():
    google = {"timestamp", "payloadString", "payloadBytes", "attributes", "errorMessage", "stacktrace"}
    assert google <= set(DEAD_LETTER.column_names)


@pytest.mark.parametrize("table", [RAW_EVENTS, DEAD_LETTER], ids=lambda t: t.name)
def test_the_three_renderings_agree(table, tmp_path):
    bigquery_names = [f["name"] for f in table.bigquery_schema()["fields"]]
    assert bigquery_names == list(table.column_names) == table.arrow_schema().names
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute(table.duckdb_ddl())
    described = con.execute(f"DESCRIBE {table.name}").fetchall()
    assert [row[0] for row in described] == list(table.column_names)
    required = {c.name for c in table.columns if c.mode == "REQUIRED"}
    assert {row[0] for row in described if row[2] == "NO"} == required
