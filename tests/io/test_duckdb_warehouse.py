from datetime import UTC

import duckdb
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_ecommerce.io.duckdb.sinks import row_key_line, rows_to_jsonl
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseError
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.dead_letter import RunContext, dead_letter_row
from beam_ecommerce.schemas.decoders import contract_decoder
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


def _key_lines(tmp_path, name: str, *batches: list[dict]) -> list[str]:
    """A file of key lines, one per batch, as the batch pipeline stages them beside its rows."""
    path = tmp_path / f"{name}.keys.jsonl"
    path.write_bytes(b"".join(row_key_line(batch) for batch in batches))
    return [str(path)]


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
    st.integers(1, 8),
    st.booleans(),
)
@example(staged=[(1, 5), (1, 3), (2, 1), (3, 4)], present={2}, batch=2, key_lines=False)  # later copies, no tie
@example(staged=[(1, 5), (1, 3), (2, 1), (3, 4)], present={2}, batch=3, key_lines=True)
@example(staged=[(1, 5), (1, 5), (1, 7), (2, 1)], present=set(), batch=4, key_lines=True)  # a tie: the temporary table
def test_the_load_keeps_per_new_event_id_the_row_with_the_least_source(
    tmp_path_factory, staged, present, batch, key_lines
):
    """The reference is written here in Python: per new event_id, the staged row with the least source.

    Two staged copies may share their event_id and source (the same record staged twice): one is kept.
    The rows' keys are read from the rows, or from key lines of batches of ``batch`` rows.
    """
    tmp_path = tmp_path_factory.mktemp("lean")
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    before = [_row(f"evt-{key:03d}", "old:0") for key in sorted(present)]
    warehouse.load("r0", *_stage(tmp_path, "before", before, []))
    rows = [_row(f"evt-{key:03d}", f"f:{line:03d}") for key, line in staged]
    batches = [rows[start : start + batch] for start in range(0, len(rows), batch)]
    keys = _key_lines(tmp_path, "now", *batches) if key_lines else ()

    report = warehouse.load("r1", *_stage(tmp_path, "now", rows, []), row_key_lines=keys)

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


@pytest.mark.parametrize(
    ("keyed", "why"),
    [
        (["e1"], "a row without its key: it would land without its copies being looked for"),
        (["e1", "e2", "e3"], "a key without its row: it would be booked as a duplicate absorbed"),
    ],
)
def test_key_lines_that_disagree_with_their_rows_load_nothing(tmp_path, keyed, why):
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.prepare()
    rows = [_row("e1", "f:1"), _row("e2", "f:2")]
    keys = _key_lines(tmp_path, "keys", [_row(event_id, f"f:{n}") for n, event_id in enumerate(keyed, 1)])
    with pytest.raises(WarehouseError, match="the staged rows and their keys disagree"):
        warehouse.load("r1", *_stage(tmp_path, "rows", rows, [b"x"]), row_key_lines=keys)
    con = duckdb.connect(warehouse.path, read_only=True)
    assert con.execute("SELECT (SELECT count(*) FROM raw_events), (SELECT count(*) FROM dead_letter)").fetchone() == (
        0,
        0,
    ), why


def test_a_row_larger_than_the_parallel_reads_loads_from_key_lines(tmp_path):
    """Key lines cannot tell that a row is too large for DuckDB's reads on every thread (over
    32 MiB with the 16 MiB ``maximum_object_size``): the insert fails on it, and the load starts
    its transaction again, reading the rows on one thread."""
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"), max_record_bytes=24 << 20)
    rows = [_row("e1", "f:1") | {"page_url": "/" + "p" * (40 << 20)}, _row("e2", "f:2"), _row("e1", "f:3")]
    keys = _key_lines(tmp_path, "keys", rows[:2], rows[2:])

    report = warehouse.load("r1", *_stage(tmp_path, "rows", rows, []), row_key_lines=keys)

    assert (report.rows_offered, report.rows_loaded, report.duplicates) == (3, 2, 1)
    con = duckdb.connect(warehouse.path, read_only=True)
    assert con.execute("SELECT event_id, source, length(page_url) FROM raw_events ORDER BY 1").fetchall() == [
        ("e1", "f:1", (40 << 20) + 1),
        ("e2", "f:2", len(_row("e2", "f:2")["page_url"])),
    ]


def test_a_key_line_is_the_same_for_dict_rows_and_typed_rows():
    events = [sample_event("page_view", "evt-00000001"), sample_event("order_placed", "evt-00000002")]
    structs = contract_decoder().decode_batch([orjson.dumps(event) for event in events])
    for struct, source in zip(structs, ["f:1", "f:2"], strict=True):
        struct.source = source
    dicts = [event | {"source": source} for event, source in zip(events, ["f:1", "f:2"], strict=True)]

    assert (
        row_key_line(structs)
        == row_key_line(dicts)
        == b'{"event_id":["evt-00000001","evt-00000002"],"source":["f:1","f:2"]}\n'
    )
