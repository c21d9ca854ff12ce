"""``replay --sink=bigquery``: dead-letter files through the batch pipeline's load jobs and MERGE.

No BigQuery runs here and Beam's BigQuery IO has no endpoint override (see
``test_bigquery_load``), so no replay loads BigQuery in these tests. What is real: the
replay pipeline's graph, built as a launch builds it (FILE_LOADS with Avro into per-run
staging tables, the MERGEs, no streaming inserts, the attempts written after the MERGEs);
the dead-letter MERGE run on DuckDB against a kept id dated another day; the attempt files
(the books of a replay into BigQuery) written and read back by Beam on local files; a dry
run into BigQuery, run end to end on the DirectRunner, which reads those books and writes
nothing; and the launch checks, through the command line.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import apache_beam as beam
import duckdb
import orjson
import pytest
from apache_beam.io.gcp.bigquery import WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import FileFormat
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_ecommerce.cli import main
from beam_ecommerce.io.bigquery.load import LoadAndMerge, merge_sql
from beam_ecommerce.io.dead_letter_files import dead_letter_prefix
from beam_ecommerce.io.dead_letter_reader import dead_letter_files
from beam_ecommerce.io.replay_books import FileBooks
from beam_ecommerce.pipelines import replay
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.replay_attempt import FAILED_AGAIN, LOADED
from beam_ecommerce.schemas import DEAD_LETTER
from beam_ecommerce.transforms import RunContext, dead_letter_row
from tests.cloud_pipeline import KEY
from tests.samples import sample_event

SECRET = "projects/p/secrets/pii/versions/1"


def _dead_letter_files(folder: Path) -> list[dict]:
    """Two late events (they pass now) and one of an unknown schema version (it fails again), as a stream wrote them."""
    context = RunContext("stream-run", "test")
    events = [sample_event("page_view", f"evt-late-{i}") for i in range(2)]
    events.append(sample_event("payment", "evt-future") | {"schema_version": 7})
    rows = [
        dead_letter_row(
            RawRecord(orjson.dumps(event), f"projects/p/subscriptions/s#{i}"), context, "late", "late", "too late"
        )
        for i, event in enumerate(events)
    ]
    shard = Path(dead_letter_prefix(str(folder), context.run_id) + "-00000-of-00001.jsonl")
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"\n".join(orjson.dumps(row) for row in rows) + b"\n")
    return rows


def _bigquery_options(tmp_path: Path, *extra: str) -> list[str]:
    return [
        f"--dead_letters={tmp_path / 'dead_letter'}",
        "--sink=bigquery",
        "--bigquery_dataset=proj:shop",
        f"--dead_letter_dir={tmp_path / 'dead_letter'}",
        f"--duckdb_path={tmp_path / 'w.duckdb'}",
        "--project=proj",
        "--temp_location=gs://bucket/tmp",
        f"--pii_hash_key={KEY}",
        *extra,
    ]


def _nodes(pipeline: beam.Pipeline) -> list:
    found = []

    def walk(node) -> None:
        found.append(node)
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    return found


def test_a_replay_into_bigquery_loads_files_into_staging_tables_and_merges_then_records_its_attempts(tmp_path):
    _dead_letter_files(tmp_path / "dead_letter")
    pipeline, context = replay.build_pipeline(PipelineOptions(_bigquery_options(tmp_path)))
    nodes = _nodes(pipeline)
    run_id = re.sub(r"\W", "_", context.run_id)

    writes = {
        str(n.transform.table_reference.tableId): n.transform for n in nodes if isinstance(n.transform, WriteToBigQuery)
    }
    assert set(writes) == {f"raw_events__run_{run_id}", f"dead_letter__run_{run_id}"}, "only the staging tables"
    for write in writes.values():
        assert write.method == WriteToBigQuery.Method.FILE_LOADS, "no streaming inserts"
        assert write._temp_file_format == FileFormat.AVRO
    merges = {n.transform.target.table.name: n.transform.target for n in nodes if isinstance(n.transform, LoadAndMerge)}
    assert {name: (t.key, t.prune) for name, t in merges.items()} == {
        "raw_events": ("event_id", True),
        "dead_letter": ("dead_letter_id", False),  # a kept id's first copy may sit in any day's partition
    }
    labels = {n.full_label: n for n in nodes}
    assert {"Select/ReplayedIds/ReadAttempts", "KeepIdentity", "RecordAttempts/Record/Write"} <= set(labels)
    # The attempts wait for both MERGEs: the sink's output is their side input.
    (waits_for,) = labels["RecordAttempts/Record/ToJson"].side_inputs
    assert waits_for.pvalue.producer.full_label.endswith("MergedRows")
    assert not (tmp_path / "w.duckdb").exists(), "a replay into BigQuery creates no local warehouse"


def _dead_letter_table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in ("dead_letter", "staging"):
        con.execute(DEAD_LETTER.duckdb_ddl().replace('"dead_letter"', f'"{name}"', 1))
    return con


def _insert(con, table: str, dead_letter_id: str, day: dt.date, stage: str) -> None:
    con.execute(
        f'insert into "{table}" (dead_letter_id, timestamp, payloadBytes, errorMessage, stage, error_type, source, '
        "pipeline_version, run_id) values (?, ?, 'x', 'm', ?, 'e', 'src', 'v', 'r')",
        [dead_letter_id, dt.datetime.combine(day, dt.time(12), dt.UTC), stage],
    )


def test_a_dead_letter_that_fails_again_on_a_later_day_adds_no_row(tmp_path):
    """The MERGE BigQuerySink runs for dead letters (``prune=False``), on DuckDB: the kept id is matched in every
    partition; bounded to the partitions the replay touched, it would have inserted a second row."""
    first_failed, replayed_on = dt.date(2026, 11, 3), dt.date(2026, 11, 20)
    con = _dead_letter_table()
    _insert(con, "dead_letter", "dl-1", first_failed, "validate")
    _insert(con, "staging", "dl-1", replayed_on, "validate")  # the replay's copy: same id, today's timestamp
    quote = lambda spec: f'"{spec}"'  # noqa: E731
    con.execute(merge_sql("dead_letter", "staging", DEAD_LETTER, "dead_letter_id", None, quote=quote))
    rows = con.execute("select dead_letter_id, timestamp::date from dead_letter").fetchall()
    assert rows == [("dl-1", first_failed)], "one row per source record, the first"
    con.execute(merge_sql("dead_letter", "staging", DEAD_LETTER, "dead_letter_id", [replayed_on], quote=quote))
    assert con.execute("select count(*) from dead_letter").fetchone() == (2,), "what pruning alone would do"


_ATTEMPTS = [
    ("dl-1", LOADED, "evt-1", None, None, None),
    ("dl-2", FAILED_AGAIN, None, "validate", "unknown_schema_version", "version 7"),
]


def _read_replayed(directory: Path, expected: frozenset[str]) -> None:
    with TestPipeline() as pipeline:
        assert_that(pipeline | FileBooks(str(directory), "next").replayed(), equal_to([expected]))


def _record(directory: Path, run_id: str) -> None:
    with TestPipeline() as pipeline:
        loads = pipeline | "Loads" >> beam.Create([2, 1])
        pipeline | "Attempts" >> beam.Create(_ATTEMPTS) | FileBooks(str(directory), run_id).record(loads)


def test_file_books_mark_what_loaded_once_and_are_no_dead_letters(tmp_path):
    """A replay into BigQuery keeps its attempts in one JSONL file beside its dead-letter files, written by Beam."""
    directory = tmp_path / "dead_letter"
    _read_replayed(directory, frozenset())  # before the first replay: no files, nothing replayed
    _record(directory, "replay-1")
    _record(directory, "replay-1")  # a rerun of the same replay rewrites its one file
    (attempts,) = (directory / "run_id=replay-1").iterdir()
    assert attempts.name == "replay_attempts-00000-of-00001.jsonl"
    lines = [orjson.loads(line) for line in attempts.read_bytes().splitlines()]
    assert sorted((a["dead_letter_id"], a["outcome"], a["stage"], a["replay_run_id"]) for a in lines) == [
        ("dl-1", LOADED, None, "replay-1"),
        ("dl-2", FAILED_AGAIN, "validate", "replay-1"),
    ]
    assert all(dt.datetime.fromisoformat(a["attempted_at"]).tzinfo for a in lines)
    _read_replayed(directory, frozenset({"dl-1"}))
    assert not list(directory.glob(dead_letter_files(str(directory)).removeprefix(f"{directory}/"))), (
        "a replay reading the folder does not take its attempts for dead letters"
    )


def test_a_dry_run_into_bigquery_leaves_out_what_the_books_mark_and_writes_nothing(tmp_path):
    rows = _dead_letter_files(tmp_path / "dead_letter")
    marks = tmp_path / "dead_letter" / "run_id=replay-0" / "replay_attempts-00000-of-00001.jsonl"
    marks.parent.mkdir()
    loaded = orjson.dumps({"dead_letter_id": rows[2]["dead_letter_id"], "outcome": LOADED})
    # Only the loaded line marks: one that failed again, a line torn by hand, one without an id mark nothing.
    failed = orjson.dumps({"dead_letter_id": rows[0]["dead_letter_id"], "outcome": FAILED_AGAIN})
    marks.write_bytes(b"\n".join([loaded, failed, b'{"dead_letter_id": "x', b'{"outcome": "loaded"}']) + b"\n")
    before = sorted(p for p in tmp_path.rglob("*"))

    outcome = replay.run(_bigquery_options(tmp_path), dry_run=True)
    assert (outcome.already_replayed, outcome.summary.records_in) == (1, 2)
    # The future event's dead letter is marked (a fix loaded it once): the two late events are left, and pass.
    assert (outcome.summary.rows_loaded, outcome.summary.dead_letters) == (2, 0)
    assert sorted(p for p in tmp_path.rglob("*")) == before, "a dry run writes nothing"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bigquery-dataset", ""], "--sink=bigquery needs --bigquery_dataset=PROJECT:DATASET"),
        (["--runner", "DataflowRunner"], "--runner=DataflowRunner reads --dead_letters on its workers: give a gs://"),
        (
            ["--runner", "DataflowRunner", "--dead-letters", "gs://b/dead_letter", "--pii-hash-key", ""],
            "--runner=DataflowRunner needs --pii_hash_key_secret=",
        ),
        (
            [
                *("--runner", "DataflowRunner", "--dead-letters", "gs://b/dead_letter"),
                *("--pii-hash-key", "", "--pii-hash-key-secret", SECRET),
            ],
            "--runner=DataflowRunner needs --dead_letter_dir=gs://BUCKET/PREFIX",
        ),
    ],
)
def test_replay_into_bigquery_launch_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    _dead_letter_files(tmp_path / "dead_letter")
    options = [
        f"--dead-letters={tmp_path / 'dead_letter'}",
        "--sink=bigquery",
        "--bigquery-dataset=proj:shop",
        f"--pii-hash-key={KEY}",
    ]
    code = main(["replay", *options, *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err
