"""Dead-letter replay: filters, a fix function, dry runs, and no record loaded twice by a second replay.

Every replay is a Beam pipeline through the same ``ProcessEvents`` into a real DuckDB file.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from beam_ecommerce.cli import main
from beam_ecommerce.io.dead_letter_files import dead_letter_prefix
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse
from beam_ecommerce.pipelines import batch, replay
from beam_ecommerce.records import RawRecord
from beam_ecommerce.reporting import read_run_report
from beam_ecommerce.schemas import csv_columns
from beam_ecommerce.transforms import RunContext, dead_letter_row
from tests.reliability.support import KEY, content, counts
from tests.samples import EVENT_TYPES, sample_event

FIX = "tests.reliability.fixes:repair"


def _inputs(folder: Path) -> None:
    """5 good records, 2 of an unknown schema version, 1 broken JSON line (JSONL) and 1 lower-case currency (CSV)."""
    folder.mkdir()
    good = [orjson.dumps(sample_event(EVENT_TYPES[i], f"evt-good-{i}")) for i in range(4)]
    future = [orjson.dumps(sample_event("payment", f"evt-future-{i}") | {"schema_version": 7}) for i in range(2)]
    (folder / "events.jsonl").write_bytes(b"\n".join([*good, *future, b'{"event_id": "evt-broken"']) + b"\n")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns())
    for event in (
        sample_event("add_to_cart", "evt-good-csv"),
        sample_event("add_to_cart", "evt-lower-eur") | {"currency": "eur"},
    ):
        writer.writerow(["" if event.get(c) is None else event[c] for c in csv_columns()])
    (folder / "events.csv").write_text(out.getvalue())


def _options(tmp_path: Path, *extra: str) -> list[str]:
    return [
        f"--duckdb_path={tmp_path / 'wh' / 'w.duckdb'}",
        f"--dead_letter_dir={tmp_path / 'wh' / 'dead_letter'}",
        f"--pii_hash_key={KEY}",
        *extra,
    ]


def _snapshot(tmp_path: Path) -> tuple:
    warehouse = tmp_path / "wh" / "w.duckdb"
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "wh").rglob("*") if p.is_file())
    return content(warehouse, "raw_events"), content(warehouse, "dead_letter"), files


def test_replay_loads_what_a_fix_repairs_once_and_a_dry_run_writes_nothing(tmp_path):
    _inputs(tmp_path / "in")
    first = batch.run([f"--input={tmp_path}/in/events.*", *_options(tmp_path)])
    assert (first.rows_loaded, first.dead_letters) == (5, 4)
    dead_letters = f"--dead_letters={tmp_path / 'wh' / 'dead_letter'}"

    (shard,) = (tmp_path / "wh" / "dead_letter").rglob("*.jsonl")
    with shard.open("ab") as out:
        out.write(b"a line that is no dead letter\n")

    before = _snapshot(tmp_path)
    dry = replay.run(_options(tmp_path, dead_letters, f"--fix={FIX}"), dry_run=True)
    assert (dry.summary.records_in, dry.summary.rows_loaded, dry.summary.dead_letters) == (4, 3, 1)
    assert dry.unreadable == 1
    assert dry.summary.dead_letters_by_reason == {"replay_fix.unexpected_error": 1}
    assert _snapshot(tmp_path) == before, "a dry run writes nothing"

    fixed = replay.run(_options(tmp_path, dead_letters, f"--fix={FIX}"))
    assert fixed.reconciles and (fixed.summary.records_in, fixed.summary.rows_loaded, fixed.marked) == (4, 3, 3)
    con = duckdb.connect(str(tmp_path / "wh" / "w.duckdb"), read_only=True)
    replayed = dict(
        con.execute(
            "SELECT event_id, source FROM raw_events WHERE event_id IN ('evt-lower-eur', 'evt-future-0')"
        ).fetchall()
    )
    assert replayed == {"evt-lower-eur": f"{tmp_path}/in/events.csv:3", "evt-future-0": f"{tmp_path}/in/events.jsonl:5"}
    assert con.execute("SELECT currency FROM raw_events WHERE event_id = 'evt-lower-eur'").fetchone() == ("EUR",)
    (fix_failure,) = con.execute("SELECT stacktrace FROM dead_letter WHERE stage = 'replay_fix'").fetchone()
    assert "JSONDecodeError" in fix_failure
    con.close()
    report = read_run_report(str(tmp_path / "wh" / "runs" / f"{fixed.summary.run_id}.json"))
    assert (report["kind"], report["rows_loaded"], report["lost"], report["details"]["marked_replayed"]) == (
        "replay",
        3,
        0,
        3,
    )

    again = replay.run(_options(tmp_path, dead_letters, f"--fix={FIX}"))
    assert again.already_replayed == 3
    assert (again.summary.rows_loaded, again.summary.duplicates, again.marked) == (0, 0, 0)
    assert counts(tmp_path / "wh" / "w.duckdb")["raw_events"] == 8

    # Without the marks (a replay that died after its load), the load's event_id dedupe still holds.
    con = duckdb.connect(str(tmp_path / "wh" / "w.duckdb"))
    con.execute("DROP TABLE replayed")
    con.close()
    unmarked = replay.run(_options(tmp_path, dead_letters, f"--fix={FIX}", "--reason=unknown_schema_version"))
    assert (unmarked.summary.records_in, unmarked.summary.rows_loaded, unmarked.summary.duplicates) == (2, 0, 2)
    found = counts(tmp_path / "wh" / "w.duckdb")
    assert found["raw_events"] == found["event_ids"] == 8


def test_late_dead_letters_replay_from_the_table_within_a_time_range(tmp_path):
    """A stream's late events (stage ``late``) load through the batch core; ``--since``/``--until`` pick them."""
    warehouse = DuckDBWarehouse(str(tmp_path / "wh" / "w.duckdb"))
    context = RunContext("stream-run", "test")
    late = [
        dead_letter_row(
            RawRecord(orjson.dumps(sample_event("page_view", f"evt-late-{i}")), f"projects/p/subscriptions/s#{i}"),
            context,
            "late",
            "beyond_allowed_lateness",
            "arrived 3:00:00 after it occurred (allowed 1:00:00)",
        )
        for i in range(3)
    ]
    files = Path(dead_letter_prefix(str(tmp_path / "streamed"), context.run_id) + "-00000-of-00001.jsonl")
    files.parent.mkdir(parents=True)
    files.write_bytes(b"\n".join(orjson.dumps(row) for row in late) + b"\n")
    warehouse.load(context.run_id, [], [str(files)])
    failed_at = datetime.fromisoformat(late[0]["timestamp"])

    earlier = replay.run(_options(tmp_path, "--dead_letters=table", f"--until={failed_at - timedelta(minutes=1)}"))
    assert earlier.summary.records_in == 0
    since = (failed_at - timedelta(minutes=1)).astimezone(UTC).replace(tzinfo=None).isoformat()  # naive means UTC
    replayed = replay.run(_options(tmp_path, "--dead_letters=table", "--stage=late,parse", f"--since={since}"))
    assert (replayed.summary.records_in, replayed.summary.rows_loaded, replayed.marked) == (3, 3, 3)
    assert counts(warehouse.path)["raw_events"] == 3


def test_the_replay_command_prints_its_reconciliation(tmp_path, capsys):
    _inputs(tmp_path / "in")
    batch.run([f"--input={tmp_path}/in/events.*", *_options(tmp_path)])
    capsys.readouterr()
    code = main(["replay", "--dead_letters", "table", "--reason", "schema_pattern", "--fix", FIX, *_options(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 dead letters selected" in out and "marked replayed: 1" in out
    assert "reconciliation OK: 1 records in = 1 loaded + 0 dead letters + 0 duplicates absorbed" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "--dead_letters is required"),
        (["--dead_letters", "/no/such/folder"], "no dead-letter files match '/no/such/folder/run_id=*/dead_letter*"),
        (["--dead_letters", "table"], "no warehouse at"),
        (["--dead_letters", "table", "--fix", "json"], "a fix function is named module:function"),
        (["--dead_letters", "table", "--fix", "no_such_module:f"], "cannot import the fix function's module"),
        (["--dead_letters", "table", "--fix", "json:no_such_function"], "has no function 'no_such_function'"),
        (["--dead_letters", "table", "--since", "yesterday"], "--since must be an ISO 8601 time"),
        (["--dead_letters", "table", "--sink", "bigquery"], "--sink=bigquery is not supported"),
    ],
)
def test_replay_user_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    code = main(["replay", *argv, f"--duckdb_path={tmp_path / 'absent.duckdb'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err
