"""Dead-letter replay: filters, a fix function, dry runs, and no record loaded twice by a second replay.

Every replay is a Beam pipeline through the same ``ProcessEvents`` into a real DuckDB file.
"""

from __future__ import annotations

import csv
import io
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from beam_ecommerce.cli import main
from beam_ecommerce.io.dead_letter_files import dead_letter_prefix
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.pipelines import batch, replay
from beam_ecommerce.pipelines.reports import read_run_report
from beam_ecommerce.records import RawRecord
from beam_ecommerce.records.replay_attempt import FAILED_AGAIN, LOADED
from beam_ecommerce.schemas import csv_columns
from beam_ecommerce.transforms import RunContext, dead_letter_row
from tests.reliability.support import KEY, content, counts
from tests.samples import EVENT_TYPES, sample_event

FIX_MODULE = "tests.reliability.fixes"
FIX = f"{FIX_MODULE}:repair"


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


@pytest.mark.e2e
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
    (fix_failure,) = con.execute("SELECT error_message FROM replay_attempts WHERE stage = 'replay_fix'").fetchone()
    assert fix_failure.startswith("JSONDecodeError")
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


# A fix module of the user's own, in the working directory (imported as `--fix fixes_of_mine:...`).
_FIXES_OF_MINE = '''
import orjson


def bump_version(payload):
    """Each attempt a new, still unknown schema version: the payload changes and still fails."""
    event = orjson.loads(payload)  # a broken line raises: a replay_fix dead letter
    event["schema_version"] += 1
    return orjson.dumps(event)


def repair_one(payload):
    """Repairs evt-future-0 only; the others as ``bump_version``."""
    event = orjson.loads(payload)
    event["schema_version"] = 1 if event["event_id"] == "evt-future-0" else event["schema_version"] + 1
    return orjson.dumps(event)
'''


def _attempts(warehouse: Path) -> dict[str, list[tuple]]:
    """Each dead letter's replay attempts, oldest first: ``(outcome, stage, error_type)``."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        found: dict[str, list[tuple]] = {}
        for dead_letter_id, *attempt in con.execute(
            "SELECT dead_letter_id, outcome, stage, error_type FROM replay_attempts ORDER BY attempted_at"
        ).fetchall():
            found.setdefault(dead_letter_id, []).append(tuple(attempt))
        return found
    finally:
        con.close()


@pytest.mark.e2e
def test_failed_replays_keep_one_dead_letter_per_source_record_and_record_each_attempt(tmp_path, monkeypatch):
    """4 replays of 40 dead letters whose fix changes the payload and still fails (30 at validate, 10 at the fix
    itself) leave the same 40 dead letters, with 4 attempts each; repairing one loads it exactly once."""
    (tmp_path / "in").mkdir()
    future = [orjson.dumps(sample_event("payment", f"evt-future-{i}") | {"schema_version": 7}) for i in range(30)]
    broken = [b'{"event_id": "evt-broken-%d"' % i for i in range(10)]
    (tmp_path / "in" / "events.jsonl").write_bytes(b"\n".join(future + broken) + b"\n")
    warehouse = tmp_path / "wh" / "w.duckdb"
    assert batch.run([f"--input={tmp_path}/in/events.jsonl", *_options(tmp_path)]).dead_letters == 40
    dead_letters_before = content(warehouse, "dead_letter")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "fixes_of_mine.py").write_text(_FIXES_OF_MINE)

    for location in ("table", str(tmp_path / "wh" / "dead_letter")) * 2:
        failed = replay.run(_options(tmp_path, f"--dead_letters={location}", "--fix=fixes_of_mine:bump_version"))
        assert failed.reconciles and (failed.summary.records_in, failed.summary.dead_letters) == (40, 40)
        assert failed.attempts == 40
    assert content(warehouse, "dead_letter") == dead_letters_before, "the first dead letter, original payload"
    attempts = _attempts(warehouse)
    assert {row[0] for row in dead_letters_before} == set(attempts)
    assert Counter(tuple(each) for each in attempts.values()) == {
        ((FAILED_AGAIN, "validate", "unknown_schema_version"),) * 4: 30,
        ((FAILED_AGAIN, "replay_fix", "unexpected_error"),) * 4: 10,
    }
    # The folder now holds the replays' files too (same ids, this attempt's stage): it picks as the table does.
    for location in ("table", str(tmp_path / "wh" / "dead_letter")):
        picked = replay.run(_options(tmp_path, f"--dead_letters={location}", "--stage=replay_fix"), dry_run=True)
        assert picked.summary.records_in == 0

    repaired = replay.run(_options(tmp_path, "--dead_letters=table", "--fix=fixes_of_mine:repair_one"))
    assert (repaired.summary.rows_loaded, repaired.summary.dead_letters, repaired.marked) == (1, 39, 1)
    again = replay.run(_options(tmp_path, "--dead_letters=table", "--fix=fixes_of_mine:repair_one"))
    assert (again.already_replayed, again.summary.records_in, again.summary.rows_loaded) == (1, 39, 0)
    assert counts(warehouse) == {"raw_events": 1, "event_ids": 1, "dead_letter": 40}
    repaired_attempts = _attempts(warehouse)[_dead_letter_id(warehouse, "evt-future-0")]
    assert repaired_attempts == [(FAILED_AGAIN, "validate", "unknown_schema_version")] * 4 + [(LOADED, None, None)]


def _dead_letter_id(warehouse: Path, event_id: str) -> str:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (found,) = con.execute("SELECT dead_letter_id FROM dead_letter WHERE event_id = ?", [event_id]).fetchall()
        return found[0]
    finally:
        con.close()


@pytest.mark.e2e
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


@pytest.mark.e2e
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
        (["--dead_letters", "table", "--fix", f"{FIX_MODULE}:nothing"], f"'{FIX_MODULE}' has no function 'nothing'"),
        (["--dead_letters", "table", "--since", "yesterday"], "--since must be an ISO 8601 time"),
        (["--dead_letters", "table", "--sink", "bigquery"], "--dead_letters=table reads the local DuckDB dead_letter"),
    ],
)
def test_replay_user_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    code = main(["replay", *argv, f"--duckdb_path={tmp_path / 'absent.duckdb'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err


# A module of the user's that re-exports code runners of the standard library and of an installed package.
_SHELL_FIXES = "import subprocess\nfrom os import system as run_payload\nfrom jsonschema import validate\n"


@pytest.fixture(scope="module")
def shell_dead_letter(tmp_path_factory) -> Path:
    """A folder with a warehouse whose one dead letter's payload is a shell command, and ``shell_fixes.py``."""
    folder = tmp_path_factory.mktemp("shell")
    raw = RawRecord(f"touch {folder / 'canary'}".encode(), f"{folder}/in/events.jsonl:1")
    row = dead_letter_row(raw, RunContext("run-1", "test"), "parse", "invalid_json", "not JSON")
    files = Path(dead_letter_prefix(str(folder / "wh" / "dead_letter"), "run-1") + "-00000-of-00001.jsonl")
    files.parent.mkdir(parents=True)
    files.write_bytes(orjson.dumps(row) + b"\n")
    DuckDBWarehouse(str(folder / "wh" / "w.duckdb")).load("run-1", [], [str(files)])
    (folder / "shell_fixes.py").write_text(_SHELL_FIXES)
    return folder


@pytest.mark.parametrize(
    ("fix", "message"),
    [
        ("os:system", "os:system is in Python's standard library; a fix function is a def in a module of your own"),
        ("posix:system", "posix:system is in Python's standard library"),
        ("subprocess:getoutput", "subprocess:getoutput is in Python's standard library"),
        ("builtins:eval", "builtins:eval is in Python's standard library"),
        ("shell_fixes:run_payload", "shell_fixes:run_payload (posix) is not a def; a fix function is a def in"),
        ("shell_fixes:subprocess", "shell_fixes:subprocess (module) is not a def; a fix function is a def in"),
        ("orjson:loads", "orjson:loads (orjson) is not a def"),
        ("shell_fixes:validate", "shell_fixes:validate is a def of jsonschema.validators, not of your own"),
        ("jsonschema:validate", "jsonschema:validate is a def of jsonschema.validators, not of your own"),
    ],
)
@pytest.mark.parametrize("dry_run", [["--dry-run"], []], ids=["dry-run", "replay"])
def test_a_fix_that_is_not_a_def_of_the_users_own_is_refused_before_any_payload_runs(
    shell_dead_letter, monkeypatch, capsys, fix, message, dry_run
):
    """A dead letter whose payload is a shell command: ``os:system`` and its kind never run it, dry run or not."""
    monkeypatch.chdir(shell_dead_letter)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = _snapshot(shell_dead_letter)

    code = main(["replay", "--dead_letters", "table", "--fix", fix, *dry_run, *_options(shell_dead_letter)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (shell_dead_letter / "canary").exists()
    assert _snapshot(shell_dead_letter) == before


def test_the_readme_fix_imports_from_the_working_directory_and_a_dry_run_runs_it_writing_nothing(
    tmp_path, monkeypatch, capsys
):
    """``--fix my_fixes:set_version`` as the README shows it, without PYTHONPATH; ``--help`` says what runs."""
    _inputs(tmp_path / "in")
    batch.run([f"--input={tmp_path}/in/events.*", *_options(tmp_path)])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))])
    (tmp_path / "my_fixes.py").write_text(
        "import json\n\ndef set_version(payload):\n    return json.dumps(json.loads(payload) | {'schema_version': 1})\n"
    )
    before = _snapshot(tmp_path)
    capsys.readouterr()
    argv = ["replay", "--dead_letters", "wh/dead_letter", "--reason", "unknown_schema_version"]
    assert main([*argv, "--fix", "my_fixes:set_version", "--dry-run", *_options(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing written: 2 dead letters selected" in out and "would pass now: 2;" in out
    assert _snapshot(tmp_path) == before

    with pytest.raises(SystemExit) as done:
        main(["replay", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "This RUNS CODE: the module is imported and the function called on every selected payload" in text
    assert "--dry-run run the same steps in this process, the --fix function included, and write nothing" in text
