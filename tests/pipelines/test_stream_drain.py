"""Stopping the local stream drains it, as Dataflow's drain does: every window closes with its final pane.

On Google's real Pub/Sub emulator, into a real DuckDB file, through the demo's own
streaming leg (a live publisher, then ``stop``): the reader stops pulling, its watermark
goes to the end of time, every open window fires its on-time pane and the pipeline
finishes on its own. ``live_metrics`` then holds only closed windows, and after ``dbt
build`` the marts agree with every one of them.
"""

from __future__ import annotations

import duckdb
import pytest

from beam_ecommerce.dbt_project import build
from beam_ecommerce.demo import run_stream_leg
from beam_ecommerce.generator import GeneratorConfig
from beam_ecommerce.io.pubsub_emulator import emulator_missing_reason
from beam_ecommerce.live_vs_batch import compare_live_with_marts
from beam_ecommerce.pipelines import streaming
from beam_ecommerce.pipelines.reports import read_run_report

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(emulator_missing_reason() is not None, reason=str(emulator_missing_reason())),
]


@pytest.fixture
def patient_drain(monkeypatch):
    """A drain limit no slow machine reaches: the test is about what a drain writes, not how fast it is."""
    monkeypatch.setattr(streaming, "_DRAIN_LIMIT_SECONDS", 600.0)


def _panes(path: str, run_id: str) -> list[tuple[str, str, str]]:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(
            "SELECT window_start::VARCHAR, product_category || '/' || currency, pane_timing FROM live_metrics "
            "WHERE run_id = ? ORDER BY ALL",
            [run_id],
        ).fetchall()
    finally:
        con.close()


def test_a_stopped_stream_drains_every_window_to_its_final_pane_and_agrees_with_the_marts(tmp_path, patient_drain):
    warehouse = str(tmp_path / "w.duckdb")
    config = GeneratorConfig(num_events=400, seed=11, invalid_rate=0.05, duplicate_rate=0.05)

    leg = run_stream_leg(config, warehouse, rate=200.0)

    assert leg.reconciles, (leg.published, leg.landed)
    assert leg.drained
    panes = _panes(warehouse, leg.landed.run_id)
    assert panes, "the drained stream wrote no live_metrics row"
    assert [pane for pane in panes if pane[2] == "EARLY"] == []
    build(warehouse)
    agreement = compare_live_with_marts(warehouse)
    assert agreement.compared >= 1
    assert agreement.differing == 0, str(agreement)


def test_a_stream_that_does_not_drain_in_time_is_cancelled_and_says_so_with_nothing_lost(tmp_path, monkeypatch):
    """A drain limit of 0 s: the runner cannot have finished (its reader's last pull is still open), so
    the stop falls back to cancel + release, and the report says the run was cancelled, not drained."""
    monkeypatch.setattr(streaming, "_DRAIN_LIMIT_SECONDS", 0.0)
    config = GeneratorConfig(num_events=200, seed=12)

    leg = run_stream_leg(config, str(tmp_path / "w.duckdb"), rate=200.0)

    assert not leg.drained
    report = read_run_report(leg.report)
    assert report["details"]["drained"] is False
    assert report["lost"] == 0 and leg.reconciles, report
