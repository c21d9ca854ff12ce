"""Publishing the generated records to Pub/Sub at a steady rate, as a live shop would."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from beam_ecommerce.generator.config import GeneratedRecord, GeneratorConfig
from beam_ecommerce.generator.record_stream import generate_events

# Re-sends repeat one of the last few hundred records; keep a margin.
_RECENT = 10_000
_ATTRIBUTES = ("event_type", "schema_version", "event_id")


def live_payload(record: GeneratedRecord, now: datetime, sent: OrderedDict[str, bytes]) -> bytes:
    """The record as sent now: ``occurred_at`` moved to ``now``; a re-send repeats the bytes sent first."""
    event = record.event
    if not isinstance(event, dict) or not isinstance(event.get("event_id"), str):
        return record.payload
    event_id = event["event_id"]
    if event_id in sent:
        return sent[event_id]
    payload = orjson.dumps(event | {"occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    sent[event_id] = payload
    if len(sent) > _RECENT:
        sent.popitem(last=False)
    return payload


def message_attributes(record: GeneratedRecord) -> dict[str, str]:
    """Event type, schema version and event id as message attributes, where the record has them."""
    event = record.event if isinstance(record.event, dict) else {}
    return {name: str(event[name]) for name in _ATTRIBUTES if isinstance(event.get(name), str | int)}


def publish_events(
    config: GeneratorConfig,
    topic: str,
    rate: float | None = None,
    *,
    on_sent: Callable[[int, float], Any] | None = None,
) -> Counter[str]:
    """Publishes every record of ``config`` to ``topic`` (``projects/P/topics/T``), ``rate`` per second.

    Valid events and their re-sends carry the current time as ``occurred_at``; malformed
    records go out as generated. ``on_sent(index, monotonic_time)`` is called as each
    record is handed to the client. Returns the count of records per kind.
    """
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.005)
    )
    kinds: Counter[str] = Counter()
    sent: OrderedDict[str, bytes] = OrderedDict()
    pending = []
    started = time.monotonic()
    for index, record in enumerate(generate_events(config)):
        if rate:
            ahead = started + index / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        payload = live_payload(record, datetime.now(UTC), sent)
        pending.append(publisher.publish(topic, payload, **message_attributes(record)))
        if on_sent:
            on_sent(index, time.monotonic())
        kinds[record.kind] += 1
        if len(pending) >= 5_000:
            for future in pending:
                future.result()
            pending.clear()
    for future in pending:
        future.result()
    return kinds
