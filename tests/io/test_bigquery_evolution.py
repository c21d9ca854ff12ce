"""Additive schema evolution of the BigQuery tables, and the writes that wait for it.

No BigQuery emulator runs here and Beam's BigQuery IO has no endpoint override (see
NOTES), so ``evolve_table`` is run against a fake client: a stand-in for
``bigquery.Client`` that holds real ``bigquery.Table`` objects, answers with BigQuery's
legacy type names as the API does, and records the patches it is sent.
"""

from __future__ import annotations

import copy

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from beam_ecommerce.io.bigquery.sinks import IncompatibleTable, evolve_table
from beam_ecommerce.schemas import RAW_EVENTS, Column
from tests.cloud_pipeline import bigquery_batch_pipeline, bigquery_streaming_pipeline

SPEC = "proj:shop.raw_events"
_LEGACY = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}


class FakeClient:
    """Holds tables by ``project.dataset.table``; ``update_table`` replaces one and is recorded."""

    def __init__(self, *tables: bigquery.Table) -> None:
        self.tables = {f"{t.project}.{t.dataset_id}.{t.table_id}": t for t in tables}
        self.updates: list[tuple[list[str], list[str]]] = []

    def get_table(self, ref: str) -> bigquery.Table:
        if ref not in self.tables:
            raise NotFound(f"Not found: Table {ref}")
        return copy.deepcopy(self.tables[ref])

    def update_table(self, table: bigquery.Table, fields: list[str]) -> bigquery.Table:
        self.updates.append(([f.name for f in table.schema], fields))
        self.tables[f"{table.project}.{table.dataset_id}.{table.table_id}"] = table
        return table


def _as_the_api_says(column: Column) -> dict:
    spec = column.bigquery()
    spec["type"] = _LEGACY.get(spec["type"], spec["type"])
    if column.fields:
        spec["fields"] = [_as_the_api_says(f) for f in column.fields]
    return spec


def _table(columns) -> bigquery.Table:
    return bigquery.Table(
        "proj.shop.raw_events", [bigquery.SchemaField.from_api_repr(_as_the_api_says(c)) for c in columns]
    )


V1_COLUMNS = [c for c in RAW_EVENTS.columns if c.name != "experiment_variant"]


def test_a_table_made_by_the_v1_contract_gains_the_new_column_as_nullable():
    client = FakeClient(_table(V1_COLUMNS))
    assert evolve_table(client, SPEC, RAW_EVENTS) == ["experiment_variant"]
    ((names, fields),) = client.updates
    assert fields == ["schema"]
    assert names == [c.name for c in V1_COLUMNS] + ["experiment_variant"], "appended, the others untouched"
    added = client.tables["proj.shop.raw_events"].schema[-1]
    assert (added.name, added.field_type, added.mode) == ("experiment_variant", "STRING", "NULLABLE")
    assert evolve_table(client, SPEC, RAW_EVENTS) == [] and len(client.updates) == 1, "then it is up to date"


def test_a_missing_table_is_left_to_the_first_write():
    client = FakeClient()
    assert evolve_table(client, SPEC, RAW_EVENTS) == []
    assert client.updates == []


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        (
            [Column("quantity", "STRING") if c.name == "quantity" else c for c in RAW_EVENTS.columns],
            "quantity is STRING, not INT64",
        ),
        ([c for c in RAW_EVENTS.columns if c.name != "run_id"], "cannot add REQUIRED column run_id"),
    ],
    ids=["retyped", "required added"],
)
def test_a_change_that_is_not_additive_is_refused_and_nothing_is_patched(columns, problem):
    client = FakeClient(_table(columns))
    with pytest.raises(IncompatibleTable, match="does not match the event contract") as refused:
        evolve_table(client, SPEC, RAW_EVENTS)
    assert problem in str(refused.value)
    assert client.updates == []


@pytest.mark.parametrize(
    ("build", "waits"),
    [
        (bigquery_batch_pipeline, ("LoadRawEvents/WaitForTables", "LoadDeadLetters/WaitForTables")),
        (bigquery_streaming_pipeline, ("WaitForTables", "WaitForDeadLetterTable")),
    ],
)
def test_the_cloud_pipelines_write_only_after_the_tables_are_evolved(tmp_path, build, waits):
    pipeline = build(tmp_path)
    nodes = {}

    def walk(node):
        nodes[node.full_label] = node
        for part in node.parts:
            walk(part)

    walk(pipeline._root_transform())
    (evolved,) = nodes["EvolveTables"].outputs.values()
    for wait in waits:
        assert [side.pvalue for side in nodes[wait].side_inputs] == [evolved], wait
