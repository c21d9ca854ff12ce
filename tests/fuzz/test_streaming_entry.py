"""Poison inputs through the streaming entry point: Pub/Sub-shaped records on a TestStream, then the core.

The records are what ``ReadEventMessages`` makes of messages (``<subscription>#<id>``
sources, message attributes), arriving in bundles with the watermark moving; the core
runs with the stream's lateness gate, so some valid events are late. For every message:
no crash, exactly one destination (a row or a dead letter), and a dead letter holds the
message's exact bytes and attributes.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.dead_letter import original_record
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from tests.fuzz.poison import json_payloads

CONTEXT = RunContext("fuzz-stream", "test")
LATENESS = timedelta(hours=1)
SUBSCRIPTION = "projects/p/subscriptions/s"
# Events occur up to two hours before this, so that about half of the valid ones are late.
NOW = datetime.now(UTC).replace(microsecond=0)

_attributes = st.dictionaries(
    st.sampled_from(["event_type", "schema_version", "event_id", "kind", "origin"]), st.text(max_size=12), max_size=3
).map(lambda attributes: tuple(sorted(attributes.items())))

messages = st.lists(st.tuples(json_payloads(NOW), _attributes), min_size=1, max_size=30)


def _observed(kind_and_element: tuple[str, dict]) -> tuple:
    kind, element = kind_and_element
    if kind == "row":
        return ("row", element["source"], None, None)
    record = original_record(element)
    return ("dead", element["source"], record.payload, record.attributes)


def _check(sent: dict[str, tuple[str, bytes, tuple]], observed: list[tuple]) -> None:
    where = Counter(source for _, source, *_ in observed)
    assert set(where) == set(sent), f"lost: {set(sent) - set(where)}; unknown: {set(where) - set(sent)}"
    assert all(n == 1 for n in where.values()), f"in two places: {[s for s, n in where.items() if n > 1]}"
    for kind, source, payload, attributes in observed:
        sent_kind, sent_payload, sent_attributes = sent[source]
        if kind == "dead":
            assert (payload, attributes) == (sent_payload, sent_attributes), f"{source}: not the message as sent"
        else:
            assert sent_kind != "junk", f"{source}: random bytes became a row"


@settings(
    max_examples=6,
    deadline=None,
    # Each example runs a streaming pipeline: shrinking would take minutes; the failing example is printed whole.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(messages, st.integers(1, 30))
def test_every_message_lands_once_with_its_bytes_and_attributes(drawn, cut):
    records = [
        RawRecord(payload, f"{SUBSCRIPTION}#{i}", attributes=attributes)
        for i, ((_, payload), attributes) in enumerate(drawn)
    ]
    sent = {f"{SUBSCRIPTION}#{i}": (kind, payload, attributes) for i, ((kind, payload), attributes) in enumerate(drawn)}
    stream = (
        TestStream()
        .advance_watermark_to((NOW - 3 * LATENESS).timestamp())
        .add_elements(records[:cut])
        .advance_processing_time(5)
        .advance_watermark_to((NOW - LATENESS).timestamp())
        .add_elements(records[cut:])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    pipeline = TestPipeline(options=options)
    processed = pipeline | stream | BatchRecords(7) | ProcessEvents(CONTEXT, "fuzz-key", allowed_lateness=LATENESS)
    rows = processed.rows | "Rows" >> beam.FlatMap(lambda batch: [("row", row) for row in batch])
    dead = processed.dead_letters | "Dead" >> beam.Map(lambda d: ("dead", d))
    observed = (rows, dead) | beam.Flatten() | beam.Map(_observed)
    assert_that(observed, lambda actual: _check(sent, actual))
    pipeline.run()
