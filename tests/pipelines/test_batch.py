"""The batch pipeline on the DirectRunner into a real DuckDB file."""

import csv
import gzip

import duckdb
import orjson
import pytest

from beam_ecommerce.pipelines import batch
from beam_ecommerce.schemas import csv_columns
from tests.samples import EVENT_TYPES, sample_event


def _write_inputs(folder):
    events = [sample_event(EVENT_TYPES[i % 5], f"evt-{i:08d}") for i in range(40)]
    lines = [orjson.dumps(e) for e in events[:30]] + [orjson.dumps(events[3]), b"{broken", b"[]"]
    (folder / "part-1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with gzip.open(folder / "part-2.csv.gz", "wt", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(csv_columns())
        for event in events[30:] + [events[0]]:
            cells = [event.get(c) for c in csv_columns()]
            writer.writerow(
                ["" if v is None else orjson.dumps(v).decode() if isinstance(v, list) else v for v in cells]
            )
        writer.writerow(["only", "three", "cells"])
    # 30 + 1 duplicate + 2 bad JSON lines; 10 + 1 duplicate + 1 bad CSV row
    return {"records": 45, "valid": 40, "duplicates": 2, "dead_letters": 3}


def _args(tmp_path):
    return [
        f"--input={tmp_path}/in/part-*",
        f"--duckdb_path={tmp_path}/wh/w.duckdb",
        f"--dead_letter_dir={tmp_path}/wh/dead_letter",
        "--batch_size=7",
        "--pii_hash_key=test-key-0123456789",
    ]


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "in").mkdir()
    return _write_inputs(tmp_path / "in")


def test_a_run_reconciles_and_lands_every_record_once(tmp_path, inputs):
    summary = batch.run(_args(tmp_path))
    assert summary.reconciles
    assert (summary.records_in, summary.rows_loaded, summary.duplicates, summary.dead_letters) == (
        inputs["records"],
        inputs["valid"],
        inputs["duplicates"],
        inputs["dead_letters"],
    )
    assert summary.dead_letters_by_reason == {
        "parse.invalid_json": 1,
        "parse.not_an_object": 1,
        "parse.csv_column_count": 1,
    }
    con = duckdb.connect(f"{tmp_path}/wh/w.duckdb", read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM raw_events").fetchone() == (40, 40)
    assert con.execute("SELECT count(*) FROM dead_letter").fetchone() == (3,)
    assert not list((tmp_path / "wh" / "staging").glob("run_id=*")), "staged rows are removed after the load"


def test_rerunning_the_same_input_adds_nothing(tmp_path, inputs):
    batch.run(_args(tmp_path))
    con = duckdb.connect(f"{tmp_path}/wh/w.duckdb", read_only=True)
    before = con.execute("SELECT * FROM raw_events ORDER BY event_id").fetchall()
    dead_before = con.execute("SELECT dead_letter_id FROM dead_letter ORDER BY 1").fetchall()
    con.close()
    again = batch.run(_args(tmp_path))
    assert again.reconciles
    assert (again.rows_loaded, again.duplicates) == (0, inputs["valid"] + inputs["duplicates"])
    con = duckdb.connect(f"{tmp_path}/wh/w.duckdb", read_only=True)
    assert con.execute("SELECT * FROM raw_events ORDER BY event_id").fetchall() == before
    assert con.execute("SELECT dead_letter_id FROM dead_letter ORDER BY 1").fetchall() == dead_before


def test_options_without_input_are_refused():
    with pytest.raises(batch.OptionsError, match="--input is required"):
        batch.build_pipeline(batch.PipelineOptions([]))


def test_bigquery_sink_needs_a_dataset(tmp_path):
    with pytest.raises(batch.OptionsError, match="--bigquery_dataset"):
        batch.build_pipeline(batch.PipelineOptions([f"--input={tmp_path}/x", "--sink=bigquery"]))
