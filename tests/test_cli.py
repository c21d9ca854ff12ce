"""The command line as a user meets it: help, one-line errors, and the demo end to end."""

import argparse
import fnmatch
import gc
import json
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from beam_ecommerce import cli
from beam_ecommerce.cli import build_parser, main
from beam_ecommerce.cli.generate import generate_destination
from beam_ecommerce.collector import COLLECTOR_THRESHOLDS
from beam_ecommerce.flags import BothSpellings, beam_style
from beam_ecommerce.io.pubsub_emulator import emulator_missing_reason
from tests.conftest import DEMO_EVENTS

COMMANDS = ["generate", "batch", "stream", "replay", "demo", "dashboard", "dbt"]


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
        (["generate", "--output", "x", "--gcs-upload", "--gcs-bucket", "b"], "give one destination, not --output and"),
        (["generate", "--pubsub-topic", "projects/p/topics/t", "--output", "x"], "give one destination"),
        (["generate", "--gcs-upload"], "--gcs-upload needs --gcs-bucket"),
        (["generate", "--date", "yesterday"], "invalid fromisoformat value"),
    ],
)
def test_user_errors_are_one_line_with_a_non_zero_exit(argv, message, capsys, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)  # with it, generate has a default destination
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


def test_generate_starts_without_beam_duckdb_or_dbt(tmp_path):
    """The CLI package and a whole ``generate`` run import none of them (each costs the start-up a second or more)."""
    script = (
        "import sys; from beam_ecommerce.cli import main;"
        f"code = main(['generate', '-q', '--num-events', '50', '--output', {str(tmp_path)!r}]);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'duckdb', 'dbt'}), code)"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "[] 0"
    assert (tmp_path / "_manifest.json").exists()


def test_the_collector_thresholds_are_raised_before_the_command_line_imports_beam(monkeypatch):
    """The parser's import of Beam is what ran full collections at CPython's default thresholds."""
    thresholds_when_parsing = []

    def parse(argv):
        thresholds_when_parsing.append(gc.get_threshold())
        raise SystemExit(0)

    monkeypatch.setattr(cli, "parse_command_line", parse)
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with pytest.raises(SystemExit):
            main(["batch", "--help"])
    finally:
        gc.set_threshold(*saved)
    assert thresholds_when_parsing == [COLLECTOR_THRESHOLDS]


def test_an_input_that_matches_no_file_is_the_batch_pipelines_error(tmp_path):
    """The check lives with the pipeline's options, so every caller of ``batch.run`` gets it, not only the CLI."""
    from beam_ecommerce.pipelines import batch

    with pytest.raises(batch.OptionsError, match="no input files match"):
        batch.run([f"--input={tmp_path}/*.jsonl", f"--duckdb_path={tmp_path}/w.duckdb"])
    assert not (tmp_path / "w.duckdb").exists()


@pytest.mark.e2e
def test_demo_reconciles_with_the_generators_own_counts(demo_run):
    """The README's demo command, as a user runs it, on a small count (the session's shared run)."""
    assert demo_run.exit_code == 0, demo_run.err
    assert "reconciliation OK" in demo_run.out
    steps = [line for line in demo_run.out.splitlines() if line[:1].isdigit() and line[1:4] == "/3 "]
    assert [step[:4] for step in steps] == ["1/3 ", "2/3 ", "3/3 "]
    assert f"generating {DEMO_EVENTS:,} events" in steps[0] and "dbt build" in steps[2]
    manifest = json.loads((demo_run.workdir / "landing" / "_manifest.json").read_text())
    assert manifest["duplicates"] > 0 and sum(manifest["invalid"].values()) > 0, "nothing to reconcile"
    con = duckdb.connect(str(demo_run.warehouse), read_only=True)
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
def test_running_the_demo_twice_starts_from_scratch(demo_run, tmp_path):
    """A second run, through ``demo.run`` itself, in a copy of the shared demo's workdir (the first run):
    what it returns is what the warehouse holds, and nothing of the first run is left in it."""
    from beam_ecommerce import demo
    from beam_ecommerce.generator import GeneratorConfig

    assert demo_run.exit_code == 0, demo_run.err
    shutil.copytree(demo_run.workdir, tmp_path, dirs_exist_ok=True)
    announced = []
    settings = demo.DemoSettings(
        workdir=str(tmp_path), events=GeneratorConfig(num_events=2000), progress=False, stream_events=None
    )
    result = demo.run(settings, announce=announced.append)
    assert result.ok and result.dbt_error is None and result.stream is None
    assert announced == result.steps and [step[:4] for step in announced] == ["1/3 ", "2/3 ", "3/3 "]
    con = duckdb.connect(result.paths.warehouse, read_only=True)
    manifest = json.loads((tmp_path / "landing" / "_manifest.json").read_text())
    assert manifest["records"] == result.manifest.records == 2000 != DEMO_EVENTS
    assert con.execute("SELECT count(*) FROM raw_events").fetchone()[0] == manifest["valid_events"]
    assert result.events_by_type == manifest["events_by_type"]
    assert con.execute("SELECT count(*) FROM pipeline_runs").fetchone()[0] == 1


@pytest.mark.e2e
@pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason()))
def test_the_demo_streaming_leg_lands_every_published_message_once(tmp_path, capsys):
    """The demo's third leg on the real Pub/Sub emulator."""
    argv = ["demo", "-q", "--num-events", "2000", "--stream-events", "300", "--workdir", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "stream reconciliation OK" in out
    assert "3/4 streaming 300 events" in out and "4/4 dbt build" in out
    assert "live vs batch:" in out and " 0 differ" in out
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


# --- one flag style: both spellings of every option ------------------------------------

_SAMPLE_VALUES = ("1", "2", "0.5", "2026-11-29", "projects/p/topics/t")


def _sample_value(action: argparse.Action) -> str | None:
    """A value the option accepts and that differs from its default (None for a flag that takes none)."""
    if action.nargs == 0:
        return None
    candidates = [str(choice) for choice in action.choices or ()] or list(_SAMPLE_VALUES)
    for text in candidates:
        try:
            value = (action.type or str)(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            continue
        if value != action.default:
            return text
    raise AssertionError(f"no sample value for {action.option_strings}")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def _long_options() -> list[tuple[str, argparse.Action]]:
    return [
        (command, action)
        for command, subparser in _subcommands(build_parser()).items()
        for action in subparser._actions
        if any(name.startswith("--") and len({*name[2:]} & {"-", "_"}) for name in action.option_strings)
    ]


@pytest.mark.parametrize(
    ("command", "action"), _long_options(), ids=lambda x: x if isinstance(x, str) else x.option_strings[0]
)
def test_every_option_of_every_command_takes_both_spellings(command, action):
    """Every long option with a word break parses the same value from --a-b and --a_b."""
    dashed = next(name for name in action.option_strings if name.startswith("--") and "_" not in name)
    underscored = dashed.replace("-", "_").replace("__", "--", 1)
    assert underscored in action.option_strings
    value = _sample_value(action)
    parsed = []
    for spelling in (dashed, underscored):
        argv = [command, spelling] if value is None else [command, f"{spelling}={value}"]
        args, extra = build_parser(command).parse_known_args(argv)
        assert extra == [], f"{spelling} was not recognised"
        parsed.append(getattr(args, action.dest))
    assert parsed[0] == parsed[1] != action.default


def test_every_command_is_covered_by_the_spelling_test():
    commands_with_options = {command for command, _ in _long_options()}
    assert commands_with_options == set(_subcommands(build_parser())) - {"frobnicate"}


def test_help_shows_the_dashed_spelling_only(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    out = capsys.readouterr().out
    assert "--duckdb-path DUCKDB_PATH" in out and "--dead-letter-dir" in out
    assert "--duckdb_path" not in out and "--dead_letter_dir" not in out


def test_options_passed_on_to_beam_take_either_spelling():
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions

    args = beam_style(["--temp-location=gs://a-b/t", "--staging-location", "gs://a-b/s", "--runner", "Direct-Runner"])
    assert args == ["--temp_location=gs://a-b/t", "--staging_location", "gs://a-b/s", "--runner", "Direct-Runner"]
    cloud = PipelineOptions(args).view_as(GoogleCloudOptions)
    assert (cloud.temp_location, cloud.staging_location) == ("gs://a-b/t", "gs://a-b/s")


def test_a_pipeline_options_class_registers_both_spellings_through_the_wrapper():
    """BothSpellings on Beam's own parser: plain and templated (ValueProvider) options."""
    from apache_beam.options.pipeline_options import PipelineOptions

    class SampleOptions(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser = BothSpellings(parser)
            parser.add_argument("--sample_rate", type=float, default=1.0)
            parser.add_value_provider_argument("--output_table", default="t")

    for argv in (["--sample-rate=0.5", "--output-table=x"], ["--sample_rate=0.5", "--output_table=x"]):
        options = PipelineOptions(argv).view_as(SampleOptions)
        assert options.sample_rate == 0.5
        assert options.output_table.get() == "x"


# --- the generator's destinations: the platform's topic and the DAG's landing folder ------

DAY = date(2026, 11, 28)


def _destination(argv: list[str], environ: dict[str, str]):
    args = build_parser("generate").parse_args(["generate", "--date", DAY.isoformat(), *argv])
    return generate_destination(args, environ)


def _dag_plan():
    """The Airflow DAG's own plan module, importable without Airflow (it is plain Python)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "airflow_dags"))
    try:
        from beam_ecommerce_dags.plan import launch_body
        from beam_ecommerce_dags.settings import Settings
    finally:
        sys.path.pop(0)
    return Settings, launch_body


def test_with_a_project_and_no_destination_the_generator_publishes_to_the_platforms_topic():
    destination = _destination(["--num-events", "1000"], {"GOOGLE_CLOUD_PROJECT": "shop-prod"})
    assert destination.topic == "projects/shop-prod/topics/beam-ecommerce-events"
    assert destination.output is None


def test_without_a_project_or_a_destination_it_writes_the_default_folder():
    destination = _destination(["--num-events", "1000"], {})
    assert (destination.topic, destination.output, destination.file_format) == (None, "data/landing", "jsonl")


@pytest.mark.parametrize(
    ("argv", "environ", "bucket"),
    [
        (["--gcs-upload", "--gcs-bucket", "shop-landing"], {}, "shop-landing"),
        (["--gcs-upload", "--gcs-bucket", "gs://shop-landing/"], {}, "shop-landing"),
        (["--gcs-bucket", "shop-landing"], {"GOOGLE_CLOUD_PROJECT": "shop-prod"}, "shop-landing"),
        (["--gcs-upload"], {"GOOGLE_CLOUD_PROJECT": "shop-prod"}, "shop-prod-beam-ecommerce-landing"),
    ],
)
def test_an_upload_writes_csv_files_where_the_batch_dag_reads_that_day(argv, environ, bucket):
    """The DAG's input pattern for the day, from its own code, matches the files the upload writes."""
    from beam_ecommerce.generator.writer import data_file_name

    destination = _destination(argv, environ)
    assert destination.output == f"gs://{bucket}/landing/dt={DAY}"
    assert destination.file_format == "csv"
    settings, launch_body = _dag_plan()
    dag_input = launch_body(
        settings(project_id="shop-prod", landing_bucket=bucket), datetime(2026, 11, 28, tzinfo=UTC), "manual__1"
    )["launchParameter"]["parameters"]["input"]
    written = f"{destination.output}/{data_file_name(0, destination.file_format, compress=False)}"
    assert fnmatch.fnmatchcase(written, dag_input), (written, dag_input)
    assert settings(project_id="shop-prod").landing_bucket == "shop-prod-beam-ecommerce-landing"


@pytest.mark.e2e
@pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason()))
def test_the_image_command_with_a_project_publishes_every_record_to_the_platforms_topic(monkeypatch, capsys):
    """`docker run -e GOOGLE_CLOUD_PROJECT=P ecommerce-generator --num-events 300`, on the real Pub/Sub emulator."""
    from google.cloud import pubsub_v1

    from beam_ecommerce.io.pubsub_emulator import create_topic_and_subscription, pubsub_emulator

    project = "shop-image-test"
    with pubsub_emulator(project):
        topic, subscription = create_topic_and_subscription(project, "beam-ecommerce-events", "check")
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
        assert main(["generate", "-q", "--num-events", "300"]) == 0
        assert f"to {topic} (GOOGLE_CLOUD_PROJECT={project}" in capsys.readouterr().err
        subscriber = pubsub_v1.SubscriberClient()
        received = 0
        while True:
            # Long polls while messages are due; once all are in, one pull that returns at once (the emulator
            # honours return_immediately) shows nothing more arrived, instead of a 30 s poll that ends empty.
            response = subscriber.pull(
                subscription=subscription, max_messages=1000, timeout=30, return_immediately=received >= 300
            )
            if not response.received_messages:
                break
            received += len(response.received_messages)
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
    assert received == 300


SEED_IMAGE_COMMANDS = [
    "docker run --rm -e GOOGLE_CLOUD_PROJECT=P ecommerce-generator --num-events 1000",
    "docker run --rm ecommerce-generator --gcs-upload --gcs-bucket B --num-events 5000",
]


def _command_destination(words: list[str], environ: dict[str, str]):
    args = build_parser("generate").parse_args(["generate", "--date", DAY.isoformat(), *words])
    return generate_destination(args, environ), args.num_events


def test_readme_shows_the_seeds_image_commands_each_with_its_command_line_equivalent():
    """Each `docker run` line of the README is followed by a `beam-ecommerce generate` line doing the same."""
    lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    docker = [i for i, line in enumerate(lines) if line.startswith("docker run --rm")]
    assert [lines[i] for i in docker] == SEED_IMAGE_COMMANDS
    for i in docker:
        image_words = shlex.split(lines[i])[3:]
        image_env = {}
        while image_words[0] == "-e":
            name, _, value = image_words[1].partition("=")
            image_env[name] = value
            image_words = image_words[2:]
        assert image_words.pop(0) == "ecommerce-generator"
        local_words = shlex.split(lines[i + 1])
        local_env = dict(word.split("=", 1) for word in local_words if "=" in word and not word.startswith("-"))
        local_words = [word for word in local_words if word.startswith("-") or "=" not in word]
        assert local_words[:2] == ["beam-ecommerce", "generate"]
        assert _command_destination(image_words, image_env) == _command_destination(local_words[2:], local_env)


@pytest.fixture
def gcs_emulator(monkeypatch):
    """gcp-storage-emulator (PyPI), in memory, in its own process group; yields its URL."""
    import os
    import signal
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gcp-storage-emulator"),
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
            "--in-memory",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # up to 60 s for the emulator to answer
            try:
                urllib.request.urlopen(f"{url}/storage/v1/b?project=p", timeout=1)
                break
            except OSError:
                if emulator.poll() is not None:
                    pytest.fail("gcp-storage-emulator exited at start")
                time.sleep(0.1)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url
    finally:
        os.killpg(emulator.pid, signal.SIGTERM)
        emulator.wait(timeout=30)


@pytest.mark.e2e
def test_the_image_upload_command_writes_csv_files_where_the_dag_reads_the_day(gcs_emulator, monkeypatch, capsys):
    """`docker run ... --gcs-upload --gcs-bucket B --num-events 500`, against a local GCS stand-in (no real bucket).

    There are no Google credentials here: Beam's lookup of them is answered "anonymous" up front
    (its private per-process cache), instead of four retries with back-off (about 20 s).
    """
    from apache_beam.internal.gcp import auth
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)

    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    client = storage.Client(project="p", credentials=AnonymousCredentials())
    client.create_bucket("shop-landing")
    argv = [
        "generate",
        "-q",
        "--gcs-upload",
        "--gcs-bucket",
        "shop-landing",
        "--num-events",
        "500",
        "--date",
        "2026-11-28",
    ]
    assert main(argv) == 0
    names = sorted(blob.name for blob in client.list_blobs("shop-landing"))
    day = "landing/dt=2026-11-28"
    # The product catalogue rides along; the DAG reads only events-* files.
    assert names == [f"{day}/_manifest.json", f"{day}/_products.csv", f"{day}/events-00000.csv"]
    manifest = json.loads(client.bucket("shop-landing").blob(names[0]).download_as_bytes())
    assert manifest["records"] == 500
    header = client.bucket("shop-landing").blob(names[2]).download_as_bytes().split(b"\n", 1)[0]
    assert b"event_id" in header
    assert "wrote 500 records" in capsys.readouterr().out
