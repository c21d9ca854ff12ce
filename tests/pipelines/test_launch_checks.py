"""What a pipeline refuses at launch, before any worker starts: dead letters a worker's disk
would lose, a PII key anyone could guess or the public one off this machine; and where a
local run puts its dead letters by default."""

from __future__ import annotations

import os

import orjson
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_ecommerce.pipelines import batch, streaming
from beam_ecommerce.pipelines.options import OptionsError, RunOptions, pii_key
from beam_ecommerce.transforms.pii import DEV_KEY_WARNING, LOCAL_DEV_KEY, PII_KEY_ENV
from tests.samples import sample_event

KEY = "launch-check-key-0123456789"
SECRET = "projects/p/secrets/pii/versions/1"
DATAFLOW = ["--runner=DataflowRunner", "--project=proj", "--region=europe-west1", "--temp_location=gs://b/tmp"]
CLOUD_SINK = ["--sink=bigquery", "--bigquery_dataset=proj:shop"]


def batch_argv(tmp_path, *extra: str) -> list[str]:
    (tmp_path / "e.jsonl").write_text("{}\n")
    return [f"--input={tmp_path}/e.jsonl", *extra]


STREAM_ARGV = ["--input_subscription=projects/p/subscriptions/s"]

BUILDERS = pytest.mark.parametrize("pipeline", ["batch", "streaming"])


def build(pipeline: str, tmp_path, *extra: str):
    if pipeline == "batch":
        return batch.build_pipeline(PipelineOptions(batch_argv(tmp_path, *extra)))
    return streaming.build_pipeline(PipelineOptions([*STREAM_ARGV, *extra]))


@BUILDERS
@pytest.mark.parametrize("where", [None, "warehouse/dead_letter", "/mnt/dead_letter"])
def test_a_remote_runner_refuses_dead_letters_off_cloud_storage(pipeline, where, tmp_path) -> None:
    given = [] if where is None else [f"--dead_letter_dir={where}"]
    with pytest.raises(OptionsError, match=r"--runner=DataflowRunner needs --dead_letter_dir=gs://"):
        build(pipeline, tmp_path, *DATAFLOW, *CLOUD_SINK, f"--pii_hash_key_secret={SECRET}", *given)


def test_a_remote_runner_refuses_to_start_without_a_key_or_secret(monkeypatch) -> None:
    monkeypatch.delenv(PII_KEY_ENV, raising=False)
    with pytest.raises(OptionsError, match=r"needs --pii_hash_key_secret.*development key is for local runs only"):
        pii_key(PipelineOptions(DATAFLOW).view_as(RunOptions))
    chosen = pii_key(PipelineOptions([*DATAFLOW, f"--pii_hash_key_secret={SECRET}"]).view_as(RunOptions))
    assert chosen._version_name == SECRET
    assert pii_key(PipelineOptions([*DATAFLOW, f"--pii_hash_key={KEY}"]).view_as(RunOptions)) == KEY


@BUILDERS
def test_a_remote_runner_refuses_the_local_warehouse(pipeline, tmp_path) -> None:
    with pytest.raises(OptionsError, match="needs --sink=bigquery"):
        build(pipeline, tmp_path, *DATAFLOW, "--dead_letter_dir=gs://b/dl", f"--pii_hash_key_secret={SECRET}")


@pytest.mark.parametrize("key", ["k", "0123456789abcde", "é" * 7])
def test_keys_shorter_than_16_bytes_are_refused(key, monkeypatch) -> None:
    with pytest.raises(OptionsError, match="at least 16 bytes"):
        pii_key(PipelineOptions([f"--pii_hash_key={key}"]).view_as(RunOptions))
    monkeypatch.setenv(PII_KEY_ENV, key)
    with pytest.raises(OptionsError, match="at least 16 bytes"):
        pii_key(PipelineOptions([]).view_as(RunOptions))


def test_a_16_byte_key_is_accepted() -> None:
    assert pii_key(PipelineOptions(["--pii_hash_key=0123456789abcdef"]).view_as(RunOptions)) == ("0123456789abcdef")


def test_the_public_key_is_announced_on_stderr_whatever_the_log_level(capfd, monkeypatch) -> None:
    monkeypatch.delenv(PII_KEY_ENV, raising=False)
    assert pii_key(PipelineOptions([]).view_as(RunOptions)) == LOCAL_DEV_KEY
    captured = capfd.readouterr()
    assert captured.err.splitlines() == [DEV_KEY_WARNING]
    assert "public development key" in DEV_KEY_WARNING and captured.out == ""
    pii_key(PipelineOptions([f"--pii_hash_key={KEY}"]).view_as(RunOptions))
    assert capfd.readouterr().err == "", "a real key is not announced"


def test_local_dead_letters_default_to_beside_the_warehouse_not_the_working_directory(tmp_path, monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "e.jsonl").write_bytes(orjson.dumps(sample_event("page_view")) + b"\n{broken\n")
    warehouse = tmp_path / "wh" / "w.duckdb"
    summary = batch.run([f"--input={tmp_path}/in/e.jsonl", f"--duckdb_path={warehouse}", f"--pii_hash_key={KEY}"])
    assert (summary.rows_loaded, summary.dead_letters) == (1, 1)
    written = [
        os.path.join(root, name) for root, _, names in os.walk(tmp_path / "wh" / "dead_letter") for name in names
    ]
    assert any(f"run_id={summary.run_id}" in path for path in written), written
    assert list(elsewhere.iterdir()) == [], "nothing lands where the user stands"
