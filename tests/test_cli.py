"""The command line as a user meets it: help, one-line errors, and the demo end to end."""

import json
import subprocess
import sys

import duckdb
import pytest

from beam_ecommerce.cli import main
from beam_ecommerce.io.pubsub_emulator import emulator_missing_reason

COMMANDS = ["generate", "batch", "stream", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert command in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["batch"], "--input is required"),
        (["batch", "--input", "/no/such/dir/*.jsonl"], "no input files match"),
        (["generate", "--num-events", "0"], "must be positive"),
        (["generate", "--invalid-rate", "1.5"], "must be in [0, 1)"),
        (["demo", "--frobnicate"], "unrecognized arguments"),
        (["stream"], "give exactly one of --input_subscription or --input_topic"),
        (["generate", "--pubsub-topic", "events"], "must look like projects/PROJECT/topics/TOPIC"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_line_with_a_non_zero_exit(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_file_that_is_not_a_warehouse_is_refused_before_running(tmp_path, capsys):
    (tmp_path / "e.jsonl").write_text("{}\n")
    (tmp_path / "w.duckdb").write_text("not a database")
    code = main(["batch", f"--input={tmp_path}/e.jsonl", f"--duckdb_path={tmp_path}/w.duckdb"])
    assert code == 2
    assert "cannot open warehouse" in capsys.readouterr().err


def test_generate_writes_files_and_a_manifest(tmp_path, capsys):
    assert main(["generate", "-q", "--num-events", "500", "--output", str(tmp_path), "--format", "csv", "--gzip"]) == 0
    manifest = json.loads((tmp_path / "_manifest.json").read_text())
    assert manifest["records"] == 500
    assert list(tmp_path.glob("events-*.csv.gz"))
    assert "wrote 500 records" in capsys.readouterr().out


def test_generate_refuses_to_mix_data_sets_unless_told(tmp_path, capsys):
    assert main(["generate", "-q", "--num-events", "300", "--output", str(tmp_path)]) == 0
    assert main(["generate", "-q", "--num-events", "300", "--output", str(tmp_path), "--seed", "9"]) == 2
    assert "already holds 1 event files" in capsys.readouterr().err
    assert main(["generate", "-q", "--num-events", "200", "--output", str(tmp_path), "--overwrite"]) == 0
    assert json.loads((tmp_path / "_manifest.json").read_text())["records"] == 200


@pytest.mark.e2e
def test_demo_reconciles_with_the_generators_own_counts(tmp_path):
    """The README's demo command, as a user runs it, on a small count."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_ecommerce.cli",
            "demo",
            "-q",
            "--no-stream",
            "--num-events",
            "20000",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "reconciliation OK" in run.stdout
    manifest = json.loads((tmp_path / "landing" / "_manifest.json").read_text())
    con = duckdb.connect(str(tmp_path / "warehouse" / "ecommerce.duckdb"), read_only=True)
    loaded = dict(con.execute("SELECT event_type, count(*) FROM raw_events GROUP BY 1").fetchall())
    assert loaded == manifest["events_by_type"]
    assert con.execute("SELECT count(DISTINCT event_id) FROM raw_events").fetchone()[0] == manifest["valid_events"]
    assert con.execute("SELECT count(*) FROM dead_letter").fetchone()[0] == sum(manifest["invalid"].values())
    runs = con.execute("SELECT rows_offered, rows_loaded, duplicates, dead_letters FROM pipeline_runs").fetchall()
    assert runs == [
        (
            manifest["valid_events"] + manifest["duplicates"],
            manifest["valid_events"],
            manifest["duplicates"],
            sum(manifest["invalid"].values()),
        )
    ]


@pytest.mark.e2e
def test_running_the_demo_twice_starts_from_scratch(tmp_path):
    argv = ["demo", "-q", "--no-stream", "--num-events", "3000", "--workdir", str(tmp_path)]
    assert main(argv) == 0
    assert main(argv[:4] + ["2000"] + argv[5:]) == 0
    con = duckdb.connect(str(tmp_path / "warehouse" / "ecommerce.duckdb"), read_only=True)
    manifest = json.loads((tmp_path / "landing" / "_manifest.json").read_text())
    assert con.execute("SELECT count(*) FROM raw_events").fetchone()[0] == manifest["valid_events"]
    assert con.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0] == 1


@pytest.mark.e2e
@pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason()))
def test_the_demo_streaming_leg_lands_every_published_message_once(tmp_path, capsys):
    """The demo's third leg on the real Pub/Sub emulator."""
    argv = ["demo", "-q", "--num-events", "2000", "--stream-events", "300", "--workdir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "stream reconciliation OK" in out
    con = duckdb.connect(str(tmp_path / "warehouse" / "ecommerce.duckdb"), read_only=True)
    runs = con.execute("SELECT count(DISTINCT run_id) FROM pipeline_runs").fetchone()[0]
    assert runs == 2, "the batch run and the stream run share the warehouse"


def test_a_missing_local_extra_is_one_line_not_a_traceback(monkeypatch, capsys, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_plotly(name, *args, **kwargs):
        if name.startswith("plotly"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_plotly)
    for module in [m for m in sys.modules if m.startswith(("plotly", "beam_ecommerce.dashboard"))]:
        monkeypatch.delitem(sys.modules, module)
    assert main(["dashboard", "--duckdb_path", str(tmp_path / "w.duckdb"), "--snapshot", str(tmp_path / "s.html")]) == 2
    assert "pip install 'beam-ecommerce[local]'" in capsys.readouterr().err
