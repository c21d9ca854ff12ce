"""Observability and PII: the per-run JSON report, metrics per stage and reason, no clear PII past the core.

One batch run over generated JSONL and CSV (malformed records and re-sends included)
is checked three ways: its report against the warehouse, its Beam metrics per stage and
reason against the dead-letter table, and every column of ``raw_events`` and every
derived column of ``dead_letter`` (all but the original payload, which keeps PII by
design) against patterns of e-mail addresses and IPv4 addresses.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from beam_ecommerce.generator import GeneratorConfig, write_files
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.pipelines import batch
from beam_ecommerce.pipelines.reports import read_run_report
from beam_ecommerce.pipelines.streaming import write_stream_report
from beam_ecommerce.records import RawRecord
from beam_ecommerce.schemas import csv_columns
from beam_ecommerce.transforms import RunContext, dead_letter_row
from tests.conftest import DEMO_EVENTS
from tests.reliability.support import batch_args
from tests.samples import sample_event

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
IPV4 = re.compile(r"(?<![\w.])(\d{1,3}\.){3}\d{1,3}(?![\w.])")
# The dead letter keeps the original record, PII included (README: restrict who reads it).
ORIGINAL_PAYLOAD = {"payloadString", "payloadBytes"}


def _leaky_records(folder: Path) -> int:
    """Records whose dead letters would quote PII in their derived columns: an e-mail where a number
    belongs, an IP address as event id, an e-mail as event type. Returns how many it wrote."""
    folder.mkdir()
    csv_event = sample_event("add_to_cart", "evt-leaky-csv")
    cells = ["" if csv_event.get(c) is None else str(csv_event[c]) for c in csv_columns()]
    cells[csv_columns().index("quantity")] = csv_event["email"]
    (folder / "events-leaky.csv").write_text(",".join(csv_columns()) + "\n" + ",".join(cells) + "\n")
    json_events = [
        sample_event("page_view", "evt-leaky-ip") | {"event_id": "203.0.113.7"},
        sample_event("page_view", "evt-leaky-type") | {"event_type": "Jane.Doe@example.com"},
    ]
    (folder / "events-leaky.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in json_events) + b"\n")
    return 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("observability")
    config = {"num_events": 1500, "invalid_rate": 0.06, "duplicate_rate": 0.03}
    manifests = [
        write_files(GeneratorConfig(seed=seed, **config), str(folder / fmt), fmt)
        for seed, fmt in ((11, "jsonl"), (12, "csv"))
    ]
    leaky = _leaky_records(folder / "leaky")
    pattern = f"{folder}/*/events-*"
    warehouse = folder / "wh" / "w.duckdb"
    summary = batch.run(batch_args(pattern, warehouse))
    return summary, manifests, leaky, pattern, warehouse


def test_the_run_report_next_to_the_warehouse_says_what_the_run_did(run):
    summary, manifests, leaky, pattern, warehouse = run
    report = read_run_report(str(warehouse.parent / "runs" / f"{summary.run_id}.json"))
    con = duckdb.connect(str(warehouse), read_only=True)
    by_reason = dict(con.execute("SELECT stage || '.' || error_type, count(*) FROM dead_letter GROUP BY 1").fetchall())
    loaded = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    assert report["kind"] == "batch" and report["inputs"] == [pattern] and report["run_id"] == summary.run_id
    assert report["records_in"] == sum(m.records for m in manifests) + leaky
    assert report["rows_loaded"] == loaded == sum(m.valid_events for m in manifests)
    assert report["duplicates"] == sum(m.duplicates for m in manifests)
    assert report["dead_letters_by_reason"] == by_reason
    assert report["dead_letters"] == sum(by_reason.values()) == sum(sum(m.invalid.values()) for m in manifests) + leaky
    assert (report["lost"], report["late"], report["reconciles"]) == (0, 0, True)
    assert report["started_at"] <= report["finished_at"]


def test_beam_metrics_count_dead_letters_per_stage_and_reason(run):
    summary, _, _, _, warehouse = run
    con = duckdb.connect(str(warehouse), read_only=True)
    by_reason = dict(con.execute("SELECT stage || '.' || error_type, count(*) FROM dead_letter GROUP BY 1").fetchall())
    assert summary.dead_letters_by_reason == by_reason
    assert {reason.split(".")[0] for reason in by_reason} == {"parse", "validate"}
    assert len(by_reason) >= 10, "the generator's malformations come out as distinct reasons"


def _text_columns(con: duckdb.DuckDBPyConnection, table: str, leave_out: set[str]) -> list[str]:
    names = [name for (name,) in con.execute(f"SELECT name FROM pragma_table_info('{table}')").fetchall()]
    return [name for name in names if name not in leave_out]


def test_no_clear_email_or_ip_address_past_the_core(run):
    summary, _, _, _, warehouse = run
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM dead_letter WHERE regexp_matches(\"payloadString\", '@')").fetchone()[0]
    found = []
    for table, leave_out in (("raw_events", set()), ("dead_letter", ORIGINAL_PAYLOAD)):
        for column in _text_columns(con, table, leave_out):
            for (value,) in con.execute(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{table}"').fetchall():
                if value is not None and (EMAIL.search(value) or IPV4.search(value)):
                    found.append((table, column, value[:120]))
    report = (warehouse.parent / "runs" / f"{summary.run_id}.json").read_text()
    assert not found, f"clear PII: {found[:5]}"
    assert not EMAIL.search(report) and not IPV4.search(json.dumps(json.loads(report)["inputs"]))
    hashes = con.execute("SELECT DISTINCT email_hash FROM raw_events WHERE email_hash IS NOT NULL").fetchall()
    assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for (h,) in hashes)


def test_a_stream_run_report_comes_from_the_warehouse_books_and_counts_late_events(tmp_path):
    """A local stream's metrics end with it: its report comes from its books (its reader's count, its loads)."""
    warehouse = DuckDBWarehouse(str(tmp_path / "wh" / "w.duckdb"))
    context = RunContext("stream-run", "test")
    reasons = [("late", "beyond_allowed_lateness"), ("late", "beyond_allowed_lateness"), ("parse", "invalid_json")]
    staged = tmp_path / "dead-letters.jsonl"
    staged.write_bytes(
        b"\n".join(
            orjson.dumps(dead_letter_row(RawRecord(b"x%d" % i, f"sub#{i}"), context, stage, reason, "m"))
            for i, (stage, reason) in enumerate(reasons)
        )
        + b"\n"
    )
    warehouse.load(context.run_id, [], [str(staged)], absorbed_before=4)
    warehouse.record_deliveries(context.run_id, pulled=7, released=0)  # what the stream's reader counted
    started_at = datetime.now(UTC)
    argv = ["--input_subscription=projects/p/subscriptions/s", f"--duckdb_path={warehouse.path}"]

    report = read_run_report(write_stream_report(argv, context.run_id, started_at))

    assert report["kind"] == "stream" and report["inputs"] == ["projects/p/subscriptions/s"]
    assert (report["records_in"], report["dead_letters"], report["duplicates"], report["late"]) == (7, 3, 4, 2)
    assert report["dead_letters_by_reason"] == {"late.beyond_allowed_lateness": 2, "parse.invalid_json": 1}
    assert report["lost"] == 0 and report["reconciles"]


@pytest.mark.e2e
def test_the_demo_prints_its_run_report(demo_run):
    assert demo_run.exit_code == 0, demo_run.out
    (path,) = re.findall(r"run report:\s+(\S+\.json)", demo_run.out)
    report = read_run_report(path)
    assert Path(path).parent == demo_run.workdir / "warehouse" / "runs"
    assert (report["records_in"], report["lost"]) == (DEMO_EVENTS, 0)
    assert json.dumps(report, indent=2, sort_keys=True) in demo_run.out
