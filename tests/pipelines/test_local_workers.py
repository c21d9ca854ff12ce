"""``--local_workers``: how many DirectRunner processes the batch command uses."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from beam_ecommerce.pipelines import batch
from beam_ecommerce.pipelines.options import OptionsError, check_input_files
from tests.pipelines.test_batch import _args, _write_inputs


def _workers(tmp_path, *args: str) -> tuple[int, str]:
    (tmp_path / "events.jsonl").write_bytes(b"{}\n" * 10)
    argv = [f"--input={tmp_path}/events.jsonl", *args]
    options = PipelineOptions(argv)
    batch._use_local_cores(options, argv, check_input_files(f"{tmp_path}/events.jsonl"))
    direct = options.view_as(DirectOptions)
    return direct.direct_num_workers, direct.direct_running_mode


def test_auto_keeps_one_process_for_a_small_input(tmp_path):
    assert _workers(tmp_path) == (1, "in_memory")


def test_auto_uses_every_core_for_a_large_input(tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "LOCAL_PARALLEL_BYTES", 10)
    monkeypatch.setattr(batch.os, "cpu_count", lambda: 2)
    assert _workers(tmp_path) == (2, "multi_processing")


def test_a_number_is_taken_as_given_and_beams_own_options_win(tmp_path):
    assert _workers(tmp_path, "--local_workers=3") == (3, "multi_processing")
    assert _workers(tmp_path, "--local_workers=3", "--direct_num_workers=1") == (1, "in_memory")
    assert _workers(tmp_path, "--local_workers=3", "--runner=DataflowRunner") == (1, "in_memory")


def test_anything_else_is_an_options_error(tmp_path):
    with pytest.raises(OptionsError, match="--local_workers"):
        _workers(tmp_path, "--local_workers=many")


def test_the_workers_reach_the_pipeline_that_runs(tmp_path, monkeypatch):
    """The pipeline copies its options when built: ``--local_workers`` must be applied before, or it does nothing."""
    (tmp_path / "in").mkdir()
    inputs = _write_inputs(tmp_path / "in")
    built = []

    def build(options):
        pipeline, context, sink = build_batch(options)
        built.append(pipeline.options.view_as(DirectOptions))
        return pipeline, context, sink

    build_batch = batch._build
    monkeypatch.setattr(batch, "_build", build)
    summary = batch.run([*_args(tmp_path), "--local_workers=2"])
    assert (built[0].direct_num_workers, built[0].direct_running_mode) == (2, "multi_processing")
    assert summary.reconciles
    assert (summary.records_in, summary.rows_loaded, summary.dead_letters) == (
        inputs["records"],
        inputs["valid"],
        inputs["dead_letters"],
    )
