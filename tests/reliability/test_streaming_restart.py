"""The stream stopped and started again on Google's Pub/Sub emulator, into one real DuckDB file.

What is published while the stream is down waits in the subscription and lands after the
restart; re-sends across the restart are absorbed by the load's ``event_id`` anti join
(the new run's dedupe state starts empty); every published message is accounted for
once, by the two runs' books together: rows loaded + dead letters + duplicates absorbed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from beam_ecommerce.generator import GeneratorConfig, generate_events
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, emulator_missing_reason, pubsub_emulator
from beam_ecommerce.pipelines import streaming
from tests.waits import wait_until_accounted

PROJECT = "beam-ecommerce-restart"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason())),
]


@contextmanager
def _stream(subscription: str, warehouse: DuckDBWarehouse, run_id: str) -> Iterator[None]:
    """Runs the stream in a thread; leaving the block stops it the way Ctrl-C does (drain, then cancel)."""
    stop = threading.Event()
    argv = [
        f"--input_subscription={subscription}",
        f"--duckdb_path={warehouse.path}",
        f"--run_id={run_id}",
        "--pii_hash_key=test-key-0123456789",
        "--allowed_lateness_seconds=315360000",  # the generator's events are in the past
        "--dedupe_horizon_seconds=315360000",
    ]
    thread = threading.Thread(target=streaming.run, args=(argv,), kwargs={"stop": stop})
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the stream did not stop"


def test_a_stream_stopped_and_restarted_loses_no_message_and_absorbs_re_sends(tmp_path):
    from google.cloud import pubsub_v1

    records = list(generate_events(GeneratorConfig(num_events=600, seed=21, invalid_rate=0.05, duplicate_rate=0.05)))
    before, after = records[:300], records[300:]
    resent = [record for record in before if record.kind == "valid"][:30]
    valid_ids = {record.event["event_id"] for record in records if record.kind == "valid"}
    malformed = sum(record.kind not in ("valid", "duplicate") for record in records)
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.prepare()  # so that its books can be read before the stream has started
    with pubsub_emulator(PROJECT):
        topic, subscription = create_topic_and_subscription(PROJECT, "events", "events-stream")
        publisher = pubsub_v1.PublisherClient()

        def publish(batch) -> None:
            for future in [publisher.publish(topic, record.payload) for record in batch]:
                future.result()

        with _stream(subscription, warehouse, "before-restart"):
            publish(before)
            assert wait_until_accounted(warehouse, "before-restart", len(before)) == len(before)
        publish(after + resent)  # while the stream is down: the subscription keeps them
        with _stream(subscription, warehouse, "after-restart"):
            # Every message in the books: nothing more arrives, and one counted twice fails the totals below.
            expected = len(after) + len(resent)
            assert wait_until_accounted(warehouse, "after-restart", expected) == expected

    first, second = warehouse.run_totals("before-restart"), warehouse.run_totals("after-restart")
    assert first.accounted + second.accounted == len(records) + len(resent), "every message once"
    con = warehouse.connect()
    try:
        rows, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM raw_events").fetchone()
        ids = {event_id for (event_id,) in con.execute("SELECT event_id FROM raw_events").fetchall()}
        dead = con.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
    finally:
        con.close()
    assert rows == distinct and ids == valid_ids
    assert dead == malformed
    resends_in_data = sum(record.kind == "duplicate" for record in records)
    assert first.duplicates + second.duplicates == resends_in_data + len(resent), "re-sends absorbed, none loaded"
