"""The batch path into BigQuery: load jobs into a per-run staging table, then one MERGE.

No BigQuery runs here and Beam's load-job path has no endpoint override, so: the MERGE
that ``merge_sql`` writes is executed on DuckDB (which speaks this subset of GoogleSQL:
MERGE INTO, QUALIFY, DATE/TIMESTAMP literals) to prove that a rerun adds nothing and that
only the touched partitions are matched; its BigQuery text is checked for literal
partition bounds (what makes BigQuery prune); the pipeline graph is checked for
FILE_LOADS with Avro into the staging tables; and ``MergeStaged``'s order of calls is
checked against a recording stand-in of the BigQuery client (the client itself is real
code talking to a service that cannot run here).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from types import SimpleNamespace

import apache_beam as beam
import duckdb
import fastavro
import orjson
import pytest
from apache_beam.io.gcp.bigquery import WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import AvroRowWriter, FileFormat
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st

from beam_ecommerce.io.bigquery import load as bigquery_load
from beam_ecommerce.io.bigquery.load import MergeStaged, MergeTarget, ToAvroValues, day_ranges, merge_sql
from beam_ecommerce.records import RawRecord
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from tests.cloud_pipeline import bigquery_batch_pipeline, bigquery_streaming_pipeline
from tests.samples import sample_event

DAY = dt.date(2026, 11, 3)


def _duckdb_name(spec: str) -> str:
    return f'"{spec}"'


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("raw_events", "staging"):
        con.execute(RAW_EVENTS.duckdb_ddl().replace('"raw_events"', f'"{name}"', 1))
    return con


def _stage(con, *rows: tuple[str, dt.date, str]) -> None:
    for event_id, day, source in rows:
        occurred = dt.datetime.combine(day, dt.time(12), dt.UTC)
        con.execute(
            "insert into staging (event_id, event_type, schema_version, occurred_at, user_id, session_id, "
            "event_date, ingested_at, source, pipeline_version, run_id) "
            "values (?, 'page_view', 1, ?, 'u', 's', ?, ?, ?, 'v', 'r')",
            [event_id, occurred, day, occurred, source],
        )


def _merge(con, days) -> None:
    con.execute(merge_sql("raw_events", "staging", RAW_EVENTS, "event_id", days, quote=_duckdb_name))


def test_a_rerun_of_the_same_rows_adds_nothing() -> None:
    con = _warehouse()
    _stage(con, ("e1", DAY, "f:1"), ("e2", DAY, "f:2"), ("e2", DAY, "f:0"), ("e3", DAY + dt.timedelta(days=1), "f:3"))
    days = {DAY, DAY + dt.timedelta(days=1)}
    _merge(con, days)
    first = con.execute("select event_id, source from raw_events order by event_id").fetchall()
    # A retried load staged e2 twice: the copy with the lowest source wins, as in DeduplicateEvents.
    assert first == [("e1", "f:1"), ("e2", "f:0"), ("e3", "f:3")]
    _merge(con, days)
    assert con.execute("select event_id, source from raw_events order by event_id").fetchall() == first


def test_only_keys_in_the_touched_partitions_are_matched() -> None:
    con = _warehouse()
    _stage(con, ("e1", DAY, "f:1"))
    _merge(con, {DAY})
    con.execute("delete from staging")
    _stage(con, ("e1", DAY, "f:1"), ("e4", DAY, "f:4"))
    # Telling the MERGE that only the next day was touched makes it blind to DAY's e1.
    _merge(con, {DAY + dt.timedelta(days=1)})
    assert con.execute("select count(*) from raw_events where event_id = 'e1'").fetchone() == (2,)
    # And nothing outside the touched partitions is ever inserted twice by a correct run.
    con.execute("delete from raw_events where source = 'f:1' and run_id = 'r' and event_date = ?", [DAY])
    _merge(con, {DAY})
    _merge(con, {DAY})
    assert con.execute("select count(*) from raw_events").fetchone() == (2,)


def test_the_merge_bounds_the_partition_column_with_literals_only() -> None:
    days = [DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=6)]
    sql = merge_sql("p:d.raw_events", "p:d.raw_events__run_r", RAW_EVENTS, "event_id", days)
    on = sql[sql.index("\nON ") : sql.index("WHEN NOT MATCHED")]
    assert "select" not in on.lower(), "a subquery in the ON clause would not prune"
    assert on.count("target.event_date >= DATE '") == 2
    assert "target.event_date >= DATE '2026-11-03' AND target.event_date < DATE '2026-11-05'" in on
    assert "target.event_date >= DATE '2026-11-09' AND target.event_date < DATE '2026-11-10'" in on
    assert sql.startswith("MERGE INTO `p.d.raw_events` AS target")
    dead = merge_sql("p:d.dead_letter", "p:d.dead_letter__run_r", DEAD_LETTER, "dead_letter_id", [DAY])
    assert "target.timestamp >= TIMESTAMP '2026-11-03' AND target.timestamp < TIMESTAMP '2026-11-04'" in dead
    assert "WHEN MATCHED" not in sql and "DELETE" not in sql.upper()


@given(st.sets(st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)), max_size=40))
def test_day_ranges_cover_exactly_the_touched_days(days) -> None:
    ranges = day_ranges(days)
    covered = {start + dt.timedelta(days=i) for start, end in ranges for i in range((end - start).days)}
    assert covered == days
    assert all(earlier[1] < later[0] for earlier, later in zip(ranges, ranges[1:], strict=False)), "maximal ranges"


def _writes(pipeline) -> dict[str, WriteToBigQuery]:
    found = {}

    def walk(node):
        if isinstance(node.transform, WriteToBigQuery):
            found[str(node.transform.table_reference.tableId)] = node.transform
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return found


def test_the_batch_pipeline_loads_avro_files_into_per_run_staging_tables(tmp_path) -> None:
    pipeline = bigquery_batch_pipeline(tmp_path)
    run_id = re.sub(r"\W", "_", pipeline.options.get_all_options()["run_id"])
    writes = _writes(pipeline)
    assert set(writes) == {f"raw_events__run_{run_id}", f"dead_letter__run_{run_id}"}
    for table in (RAW_EVENTS, DEAD_LETTER):
        write = writes[f"{table.name}__run_{run_id}"]
        assert write.method == WriteToBigQuery.Method.FILE_LOADS
        assert write._temp_file_format == FileFormat.AVRO
        assert write.schema == table.bigquery_schema()
    labels = _labels(pipeline)
    for step in ("LoadRawEvents/Merge", "LoadDeadLetters/Merge", "LoadRawEvents/CreateStagingTable"):
        assert any(label.endswith(step) for label in labels), step


def _labels(pipeline) -> set[str]:
    labels = set()

    def walk(node):
        labels.add(node.full_label)
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return labels


def test_the_stream_keeps_streaming_inserts() -> None:
    writes = _writes(bigquery_streaming_pipeline())
    assert set(writes) == {"raw_events", "dead_letter", "live_metrics"}
    assert {w.method for w in writes.values()} == {WriteToBigQuery.Method.STREAMING_INSERTS}


class RecordingClient:
    """Stands in for ``google.cloud.bigquery.Client``: records the calls, in order."""

    calls: list[tuple] = []

    def __init__(self, project=None) -> None:
        self.project = project

    def get_job(self, job_id, project=None, location=None):
        return SimpleNamespace(result=lambda: RecordingClient.calls.append(("wait", job_id)))

    def query(self, sql):
        RecordingClient.calls.append(("query", sql))
        return SimpleNamespace(result=lambda: None, num_dml_affected_rows=3)

    def delete_table(self, table, not_found_ok=False):
        RecordingClient.calls.append(("drop", table, not_found_ok))


@pytest.mark.parametrize(("days", "inserted"), [({DAY}, 3), (set(), 0)])
def test_the_merge_waits_for_every_load_and_copy_job_then_drops_the_staging_table(monkeypatch, days, inserted):
    monkeypatch.setattr(bigquery_load.bigquery, "Client", RecordingClient)
    RecordingClient.calls = []
    target = MergeTarget(RAW_EVENTS, "event_id", "p:d.raw_events", "run-1")
    job = lambda name: ("p:d.t", SimpleNamespace(jobId=name, projectId="p", location="EU"))  # noqa: E731
    out = list(MergeStaged("p", target).process(None, days, [job("load-1"), job("load-2")], [job("copy-1")]))
    assert out == [inserted]
    kinds = [call[0] for call in RecordingClient.calls]
    assert kinds == ["wait", "wait", "wait", *(["query"] if days else []), "drop"]
    assert RecordingClient.calls[-1] == ("drop", "p.d.raw_events__run_run_1", True)


def _avro_round_trip(row: dict, table) -> dict:
    """``row`` as LoadAndMerge hands it to Beam's own Avro writer for load jobs, read back."""
    buffer = io.BytesIO()
    writer = AvroRowWriter(buffer, table.bigquery_schema())
    writer.write(ToAvroValues(table)(row))
    writer.flush()
    (back,) = list(fastavro.reader(io.BytesIO(buffer.getvalue())))
    return back


def test_the_pipelines_rows_and_dead_letters_encode_as_the_load_jobs_avro():
    """What the transform core emits, as FILE_LOADS with Avro would write it: no row may fail to encode."""
    event = sample_event("order_placed")
    records = [RawRecord(orjson.dumps(event), "gs://b/f.jsonl:1"), RawRecord(b"{broken", "gs://b/f.jsonl:2")]
    with TestPipeline() as pipeline:
        processed = (
            pipeline
            | beam.Create(records)
            | BatchRecords()
            | ProcessEvents(RunContext("r", "v"), "avro-test-key-0123456789")
        )
        rows = processed.rows | "Rows" >> beam.FlatMap(lambda batch: batch)
        encoded = rows | "EncodeRows" >> beam.Map(_avro_round_trip, RAW_EVENTS)
        assert_that(
            encoded | beam.Map(lambda r: (r["event_id"], r["event_date"], len(r["items"]))),
            equal_to([(event["event_id"], dt.date.fromisoformat(event["occurred_at"][:10]), len(event["items"]))]),
            label="RowsEncode",
        )
        dead = processed.dead_letters | "EncodeDeadLetters" >> beam.Map(_avro_round_trip, DEAD_LETTER)
        assert_that(
            dead | beam.Map(lambda r: (r["stage"], r["payloadBytes"])), equal_to([("parse", b"{broken")]), label="Dead"
        )
