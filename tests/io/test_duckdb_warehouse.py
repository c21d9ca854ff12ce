from datetime import UTC

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.duckdb.sinks import rows_to_jsonl
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseError
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.dead_letter import RunContext, dead_letter_row
from tests.samples import sample_event


def _row(event_id: str, source: str) -> dict:
    from datetime import date, datetime

    event = sample_event("page_view", event_id)
    del event["email"], event["ip_address"]
    return event | {
        "occurred_at": datetime(2026, 11, 3, 10, tzinfo=UTC),
        "event_date": date(2026, 11, 3),
        "ingested_at": datetime(2026, 11, 4, tzinfo=UTC),
        "source": source,
        "pipeline_version": "t",
        "run_id": "r",
    }


def _stage(tmp_path, name: str, rows: list[dict], dead_letters: list[bytes]) -> tuple[list[str], list[str]]:
    staged_rows = tmp_path / f"{name}.rows.jsonl"
    staged_rows.write_bytes(rows_to_jsonl(rows))
    jsonl = tmp_path / f"{name}.jsonl"
    context = RunContext("r", "t")
    jsonl.write_bytes(
        b"".join(
            orjson.dumps(dead_letter_row(RawRecord(p, f"f:{i}"), context, "parse", "invalid_json", "bad")) + b"\n"
            for i, p in enumerate(dead_letters)
        )
    )
    return [str(staged_rows)], [str(jsonl)]


def test_load_keeps_one_row_per_event_id_and_is_idempotent(tmp_path):
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    rows = [_row("e1", "f:2"), _row("e1", "f:1"), _row("e2", "f:3")]
    staged = _stage(tmp_path, "one", rows, [b"x", b"\xff\x00"])
    first = warehouse.load("r1", *staged)
    assert (first.rows_offered, first.rows_loaded, first.duplicates) == (3, 2, 1)
    assert (first.dead_letters, first.dead_letters_loaded) == (2, 2)
    second = warehouse.load("r2", *staged)
    assert (second.rows_loaded, second.duplicates, second.dead_letters_loaded) == (0, 3, 0)
    con = duckdb.connect(warehouse.path, read_only=True)
    assert con.execute("SELECT event_id, source FROM raw_events ORDER BY 1").fetchall() == [
        ("e1", "f:1"),
        ("e2", "f:3"),
    ]
    assert sorted(p for (p,) in con.execute("SELECT payloadBytes FROM dead_letter").fetchall()) == [b"x", b"\xff\x00"]
    assert con.execute("SELECT count(*) FROM pipeline_runs").fetchone() == (2,)


def test_a_failed_load_writes_nothing(tmp_path):
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    good = _stage(tmp_path, "good", [_row("e1", "f:1")], [])
    warehouse.load("r1", *good)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b'{"event_id": "e9", "occurred_at": "not a time"}\n')
    with pytest.raises(WarehouseError, match="nothing was written"):
        warehouse.load("r2", [str(tmp_path / "good.rows.jsonl"), str(broken)], [])
    con = duckdb.connect(warehouse.path, read_only=True)
    assert con.execute("SELECT count(*) FROM raw_events").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM pipeline_runs").fetchone() == (1,)


def test_missing_warehouse_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse at"):
        DuckDBWarehouse(str(tmp_path / "absent.duckdb")).connect(read_only=True)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "w.duckdb"
    path.write_text("hello")
    with pytest.raises(WarehouseError, match="cannot open warehouse"):
        DuckDBWarehouse(str(path)).connect()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 40)), max_size=40),
    st.sets(st.integers(0, 12), max_size=6),
)
@example(staged=[(1, 5), (1, 3), (2, 1), (3, 4)], present={2})  # later copies, no tie: read straight from the files
@example(staged=[(1, 5), (1, 5), (1, 7), (2, 1)], present=set())  # a tie on the least source: the temporary table
def test_the_load_keeps_per_new_event_id_the_row_with_the_least_source(tmp_path_factory, staged, present):
    """The reference is written here in Python: per new event_id, the staged row with the least source.

    Two staged copies may share their event_id and source (the same record staged twice): one is kept.
    """
    tmp_path = tmp_path_factory.mktemp("lean")
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    before = [_row(f"evt-{key:03d}", "old:0") for key in sorted(present)]
    warehouse.load("r0", *_stage(tmp_path, "before", before, []))
    rows = [_row(f"evt-{key:03d}", f"f:{line:03d}") for key, line in staged]

    report = warehouse.load("r1", *_stage(tmp_path, "now", rows, []))

    firsts: dict[str, str] = {}
    for row in rows:
        if int(row["event_id"][4:]) not in present:
            firsts[row["event_id"]] = min(firsts.get(row["event_id"], row["source"]), row["source"])
    expected = sorted(firsts.items()) + [(row["event_id"], "old:0") for row in before]
    con = duckdb.connect(warehouse.path, read_only=True)
    try:
        assert sorted(con.execute("SELECT event_id, source FROM raw_events").fetchall()) == sorted(expected)
    finally:
        con.close()
    assert (report.rows_offered, report.rows_loaded, report.duplicates) == (
        len(rows),
        len(firsts),
        len(rows) - len(firsts),
    )
