"""The BigQuery sink's streaming path, checked without BigQuery (the batch path: test_bigquery_load.py).

No BigQuery emulator runs on these machines and Beam's BigQuery IO has no endpoint
override, so these tests check what can be checked offline: the rows are in the JSON
form of the insert API and match the table schema, rejected rows become dead letters,
the stream's graph writes partitioned, clustered tables with a retry strategy that
cannot retry a bad row forever, and the batch's tables are created the same way.
"""

from datetime import UTC, date, datetime

import orjson
from apache_beam.io.gcp.bigquery import WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy

from beam_ecommerce.io.bigquery.load import table_resource
from beam_ecommerce.io.bigquery.sinks import rejected_row_to_dead_letter, to_bigquery_row
from beam_ecommerce.records.dead_letter import RunContext, original_payload
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS
from tests.cloud_pipeline import bigquery_streaming_pipeline

ROW = {
    "event_id": "e1",
    "occurred_at": datetime(2026, 11, 3, 10, 15, 30, 250000, tzinfo=UTC),
    "event_date": date(2026, 11, 3),
    "items": [{"product_id": "p", "product_category": "c", "unit_price": 1.5, "quantity": 2}],
    "source": "gs://b/f.jsonl:7",
}


def test_rows_are_insert_api_json():
    row = to_bigquery_row(ROW)
    assert row["occurred_at"] == "2026-11-03T10:15:30.250000+00:00"
    assert row["event_date"] == "2026-11-03"
    assert orjson.loads(orjson.dumps(row)) == row


def test_a_rejected_row_becomes_a_sink_dead_letter_with_the_reason():
    errors = [{"reason": "invalid", "message": "no such field: coupon"}]
    dead = rejected_row_to_dead_letter(("p:d.raw_events", to_bigquery_row(ROW), errors), RunContext("r", "v"))
    assert (dead["stage"], dead["error_type"], dead["source"], dead["event_id"]) == (
        "sink",
        "bigquery_rejected",
        "gs://b/f.jsonl:7",
        "e1",
    )
    assert "no such field" in dead["errorMessage"]
    assert orjson.loads(original_payload(dead)) == to_bigquery_row(ROW)
    assert set(dead) == set(DEAD_LETTER.column_names)


def _writes(pipeline) -> list[WriteToBigQuery]:
    found = []

    def walk(node):
        if isinstance(node.transform, WriteToBigQuery):
            found.append(node.transform)
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return found


def test_the_stream_writes_partitioned_clustered_tables_without_endless_retries():
    pipeline = bigquery_streaming_pipeline()
    writes = {str(w.table_reference.tableId): w for w in _writes(pipeline)}
    assert set(writes) == {"raw_events", "dead_letter", "live_metrics"}  # live_metrics: the speed layer's own sink
    for table in (RAW_EVENTS, DEAD_LETTER):
        write = writes[table.name]
        assert write.method == WriteToBigQuery.Method.STREAMING_INSERTS
        assert write.insert_retry_strategy == RetryStrategy.RETRY_ON_TRANSIENT_ERROR
        assert write.additional_bq_parameters["timePartitioning"] == {"type": "DAY", "field": table.partition_field}
        assert write.additional_bq_parameters["clustering"] == {"fields": list(table.cluster_fields)}
        assert write.schema == table.bigquery_schema()


def test_the_batch_creates_partitioned_clustered_targets_and_expiring_staging_tables():
    target = table_resource("p:d.raw_events", RAW_EVENTS)
    assert (target.time_partitioning.type_, target.time_partitioning.field) == ("DAY", "event_date")
    assert target.clustering_fields == list(RAW_EVENTS.cluster_fields) and target.expires is None
    expires = datetime(2026, 11, 5, tzinfo=UTC)
    staging = table_resource("p:d.dead_letter__run_r", DEAD_LETTER, expires)
    assert staging.time_partitioning.field == "timestamp" and staging.expires == expires
    assert [field.name for field in staging.schema] == list(DEAD_LETTER.column_names)
