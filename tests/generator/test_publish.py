from collections import OrderedDict
from datetime import UTC, datetime

import orjson

from beam_ecommerce.generator import GeneratorConfig, generate_events
from beam_ecommerce.generator.publish import live_payload, message_attributes


def test_live_events_happen_now_and_resends_repeat_the_first_bytes():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    sent: OrderedDict[str, bytes] = OrderedDict()
    records = list(generate_events(GeneratorConfig(num_events=400, seed=1, duplicate_rate=0.05)))
    payloads = [live_payload(r, now, sent) for r in records]
    first_by_id = {}
    for record, payload in zip(records, payloads, strict=True):
        if record.kind == "valid":
            assert orjson.loads(payload)["occurred_at"] == "2026-11-26T12:00:00.000000Z"
            first_by_id[record.event["event_id"]] = payload
        elif record.kind == "duplicate":
            assert payload == first_by_id[record.event["event_id"]]
        elif record.event is None:
            assert payload == record.payload, "byte-level malformations go out as generated"


def test_attributes_name_type_version_and_id_when_the_record_has_them():
    record = next(r for r in generate_events(GeneratorConfig(num_events=10, seed=2)) if r.kind == "valid")
    assert message_attributes(record) == {
        "event_type": record.event["event_type"],
        "schema_version": "1",
        "event_id": record.event["event_id"],
    }
