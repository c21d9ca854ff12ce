"""Schema evolution end to end: page_view v1 and v2 in one run, into a warehouse the v1 contract made.

The table gains ``experiment_variant`` with ``ALTER TABLE ADD COLUMN`` (old rows keep
NULL), both versions load from JSONL and CSV, a v1 event cannot carry the v2 field, and
a warehouse whose column contradicts the contract is refused in one clear line.
"""

from __future__ import annotations

import csv
import dataclasses
import io

import duckdb
import orjson

from beam_ecommerce.cli import main
from beam_ecommerce.pipelines import batch
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS, Column, csv_columns
from tests.reliability.support import batch_args
from tests.samples import sample_event

V1_RAW_EVENTS = dataclasses.replace(
    RAW_EVENTS, columns=tuple(c for c in RAW_EVENTS.columns if c.name != "experiment_variant")
)


def _page_view(event_id: str, version: int, variant: str | None = None) -> dict:
    event = sample_event("page_view", event_id) | {"schema_version": version}
    return event if variant is None else event | {"experiment_variant": variant}


def _csv(events: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns())
    for event in events:
        writer.writerow(["" if event.get(c) is None else event[c] for c in csv_columns()])
    return out.getvalue().encode()


def _old_warehouse(path, table=V1_RAW_EVENTS) -> None:
    path.parent.mkdir(parents=True)
    con = duckdb.connect(str(path))
    con.execute(table.duckdb_ddl())
    con.execute(DEAD_LETTER.duckdb_ddl())
    con.close()


def test_v1_and_v2_events_load_together_and_the_old_table_gains_the_column(tmp_path):
    warehouse = tmp_path / "wh" / "w.duckdb"
    _old_warehouse(warehouse)
    (tmp_path / "in").mkdir()
    jsonl = [
        _page_view("evt-v1-json", 1),
        _page_view("evt-v2-json", 2, "B"),
        _page_view("evt-v1-with-v2-field", 1, "B"),
        sample_event("payment", "evt-payment"),
    ]
    (tmp_path / "in" / "events.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in jsonl) + b"\n")
    (tmp_path / "in" / "events.csv").write_bytes(_csv([_page_view("evt-v1-csv", 1), _page_view("evt-v2-csv", 2, "A")]))

    summary = batch.run(batch_args(f"{tmp_path}/in/events.*", warehouse))

    assert summary.reconciles and summary.dead_letters_by_reason == {"validate.schema_additionalProperties": 1}
    con = duckdb.connect(str(warehouse), read_only=True)
    columns = [name for (name,) in con.execute("SELECT name FROM pragma_table_info('raw_events')").fetchall()]
    assert columns == list(V1_RAW_EVENTS.column_names) + ["experiment_variant"], "added at the end, nothing else moved"
    assert dict(con.execute("SELECT event_id, experiment_variant FROM raw_events").fetchall()) == {
        "evt-v1-json": None,
        "evt-v2-json": "B",
        "evt-payment": None,
        "evt-v1-csv": None,
        "evt-v2-csv": "A",
    }
    assert con.execute("SELECT event_id, stage FROM dead_letter").fetchall() == [("evt-v1-with-v2-field", "validate")]


def test_a_warehouse_whose_column_contradicts_the_contract_is_refused_in_one_line(tmp_path, capsys):
    warehouse = tmp_path / "wh" / "w.duckdb"
    retyped = tuple(Column("quantity", "STRING") if c.name == "quantity" else c for c in RAW_EVENTS.columns)
    _old_warehouse(warehouse, dataclasses.replace(RAW_EVENTS, columns=retyped))
    (tmp_path / "e.jsonl").write_bytes(orjson.dumps(sample_event("add_to_cart")) + b"\n")

    code = main(["batch", *batch_args(f"{tmp_path}/e.jsonl", warehouse)])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "raw_events does not match the event contract: quantity is VARCHAR, not BIGINT" in err
