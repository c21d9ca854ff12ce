"""Dead letters keep what it takes to replay a record, and no clear PII outside its payload."""

from __future__ import annotations

import pytest

from beam_ecommerce.records import CSV, RawRecord
from beam_ecommerce.records.dead_letter import original_record
from beam_ecommerce.transforms import RunContext, dead_letter_row
from beam_ecommerce.transforms.dead_letter import RecordError
from beam_ecommerce.transforms.parse import parse_csv

CONTEXT = RunContext("r", "v")


@pytest.mark.parametrize(
    "record",
    [
        RawRecord(b'{"a": 1}', "gs://b/f.jsonl:3"),
        RawRecord(b"\xff\x00", "projects/p/subscriptions/s#9", attributes=(("event_type", "payment"), ("kind", "x"))),
        RawRecord(b'e1,"a\nb"', "f.csv:2", CSV, (), ("event_id", "page_url")),
        RawRecord(b"e1", "f.csv:4", CSV, (), None),
    ],
    ids=["json", "pubsub", "csv", "csv without header"],
)
def test_a_dead_letter_gives_back_the_record_it_was_made_from(record):
    assert original_record(dead_letter_row(record, CONTEXT, "validate", "schema_type", "bad")) == record


def test_messages_and_ids_lose_email_and_ip_addresses_the_payload_keeps_them():
    record = RawRecord(b"Jane.Doe@example.com,203.0.113.7", "f.csv:2")
    row = dead_letter_row(
        record,
        CONTEXT,
        "validate",
        "unknown_event_type",
        "unknown event_type 'Jane.Doe@example.com' from 203.0.113.7 at 2026-11-03T10:15:30.250000Z",
        event={"event_id": "10.0.0.1", "event_type": "x@y.io"},
    )
    assert row["errorMessage"] == "unknown event_type '<redacted>' from <redacted> at 2026-11-03T10:15:30.250000Z"
    assert (row["event_id"], row["event_type"]) == ("<redacted>", "<redacted>")
    assert original_record(row).payload == record.payload


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", "1e400"])
def test_a_csv_number_that_is_not_finite_is_a_type_error(cell):
    with pytest.raises(RecordError) as rejected:
        parse_csv(f"pay-1,{cell}".encode(), ("payment_id", "amount"))
    assert rejected.value.error_type == "csv_type_error"
