"""The streaming pipeline against Google's real Pub/Sub emulator, into a real DuckDB file."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_ecommerce.generator import GeneratorConfig, generate_events
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, emulator_missing_reason, pubsub_emulator
from beam_ecommerce.pipelines import streaming
from tests.waits import wait_until_accounted

PROJECT = "beam-ecommerce-test"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason())),
]


def _counts(path: str) -> tuple[int, int]:
    # Read-write, as the stream's writer in this same process opens it (DuckDB refuses a mix).
    con = DuckDBWarehouse(path).connect()
    try:
        return con.execute("SELECT (SELECT count(*) FROM raw_events), (SELECT count(*) FROM dead_letter)").fetchone()
    finally:
        con.close()


def test_published_events_land_exactly_once_and_bad_ones_in_the_dead_letter(tmp_path):
    from google.cloud import pubsub_v1

    records = list(generate_events(GeneratorConfig(num_events=600, seed=3, invalid_rate=0.05, duplicate_rate=0.05)))
    valid = sum(r.kind == "valid" for r in records)
    malformed = sum(r.kind not in ("valid", "duplicate") for r in records)
    assert valid and malformed and any(r.kind == "duplicate" for r in records)
    with pubsub_emulator(PROJECT):
        topic, subscription = create_topic_and_subscription(PROJECT, "events", "events-stream")
        dead_letter_topic, dead_letter_subscription = create_topic_and_subscription(PROJECT, "dead-letters", "dlq")
        publisher = pubsub_v1.PublisherClient()
        for record in records:
            publisher.publish(topic, record.payload, kind=record.kind)
        warehouse = str(tmp_path / "w.duckdb")
        DuckDBWarehouse(warehouse).prepare()  # so that its books can be read before the first load
        pipeline, context = streaming.build_pipeline(
            PipelineOptions(
                [
                    f"--input_subscription={subscription}",
                    f"--duckdb_path={warehouse}",
                    "--pii_hash_key=test-key-0123456789",
                    f"--dead_letter_topic={dead_letter_topic}",
                    "--allowed_lateness_seconds=315360000",  # the generator's events are in the past
                    "--dedupe_horizon_seconds=315360000",
                ]
            )
        )
        result = pipeline.run()
        try:
            # Once the books account for every published message, nothing more can arrive.
            assert wait_until_accounted(DuckDBWarehouse(warehouse), context.run_id, len(records)) == len(records)
            assert _counts(warehouse) == (valid, malformed)
        finally:
            result.cancel()
        published = _pull_all(dead_letter_subscription)
        assert sorted(m.data for m in published) == sorted(
            r.payload for r in records if r.kind not in ("valid", "duplicate")
        )
        assert all(m.attributes["stage"] and m.attributes["error_type"] for m in published)


def _pull_all(subscription: str) -> list:
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    messages = []
    while response := subscriber.pull(subscription=subscription, max_messages=1000, timeout=10).received_messages:
        messages += [received.message for received in response]
        subscriber.acknowledge(subscription=subscription, ack_ids=[received.ack_id for received in response])
    return messages
