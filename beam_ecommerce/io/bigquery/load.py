"""Batch rows into BigQuery at load-job cost, idempotently: load a per-run staging table, then MERGE.

``WriteToBigQuery`` with ``FILE_LOADS`` writes the run's rows as Avro files and loads them
into ``<table>__run_<run_id>`` (load jobs are free; streaming inserts are billed per GB).
One ``MERGE`` then inserts into the partitioned, clustered table only the rows whose key
it does not hold yet, reading only the target partitions the run touches: a rerun, a
retried job or a replay of the same records adds nothing. The staging table is created
with an expiry, so a run that dies before its MERGE leaves nothing behind for long, and
is dropped after the MERGE.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import FileFormat
from google.cloud import bigquery

from beam_ecommerce.records import Row
from beam_ecommerce.schemas.tables import Table

# A staging table outlives a run that fails before its MERGE by at most this long.
STAGING_EXPIRY = dt.timedelta(days=2)


@dataclass(frozen=True)
class MergeTarget:
    """One table's load: its contract, the key a row is unique on, and where it is staged."""

    table: Table
    key: str
    spec: str  # PROJECT:DATASET.TABLE (or DATASET.TABLE), as WriteToBigQuery takes it
    run_id: str
    # False: the key is matched in every partition. A dead letter's id is its source record's
    # (a rerun on a later day, or a replay that fails it again, makes a copy dated today while
    # the first sits in its own day's partition); the MERGE then reads the key column of the
    # whole table, which for dead_letter is small.
    prune: bool = True

    @property
    def staging_spec(self) -> str:
        """The run's own staging table, beside the target: ``<table>__run_<run_id>``."""
        return f"{self.spec}__run_{re.sub(r'[^A-Za-z0-9_]', '_', self.run_id)}"


def sql_name(spec: str) -> str:
    """``PROJECT:DATASET.TABLE`` as a quoted GoogleSQL table name."""
    return f"`{spec.replace(':', '.')}`"


def day_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """The touched days as half-open ranges of consecutive days: ``[first, last + 1 day)``."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + dt.timedelta(days=1))
        else:
            ranges.append((day, day + dt.timedelta(days=1)))
    return ranges


def partition_filter(column: str, column_type: str, days: Iterable[dt.date]) -> str:
    """A predicate on the partitioning column with literal bounds only, so BigQuery prunes the
    partitions the run does not touch (a subquery or a join would not prune)."""
    literal = "DATE" if column_type == "DATE" else "TIMESTAMP"
    bounds = [
        f"({column} >= {literal} '{first.isoformat()}' AND {column} < {literal} '{end.isoformat()}')"
        for first, end in day_ranges(days)
    ]
    return " OR ".join(bounds) if bounds else "FALSE"


def merge_sql(target: str, staging: str, table: Table, key: str, days: Iterable[dt.date] | None, quote=sql_name) -> str:
    """The MERGE that inserts the staged rows whose ``key`` the target lacks in the touched partitions
    (in the whole table if ``days`` is None).

    Staged copies of one key (a retried load) are reduced to the one with the lowest
    ``source``, the copy ``DeduplicateEvents`` keeps. ``quote`` turns a table spec into
    the dialect's quoted name (GoogleSQL's backticks by default).
    """
    columns = table.column_names
    touched = "TRUE"
    if days is not None:
        partition_column = next(c for c in table.columns if c.name == table.partition_field)
        touched = partition_filter(f"target.{table.partition_field}", partition_column.type, days)
    return f"""MERGE INTO {quote(target)} AS target
USING (
    SELECT * FROM {quote(staging)}
    WHERE TRUE
    QUALIFY ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY source) = 1
) AS source
ON target.{key} = source.{key} AND ({touched})
WHEN NOT MATCHED THEN
    INSERT ({", ".join(columns)})
    VALUES ({", ".join(f"source.{name}" for name in columns)})"""


# Dead-letter rows are built in the insert API's JSON form (ISO timestamps, base64 bytes);
# Avro load files take the values themselves.
_FROM_JSON: dict[str, Callable[[str], Any]] = {
    "TIMESTAMP": dt.datetime.fromisoformat,
    "DATE": dt.date.fromisoformat,
    "BYTES": base64.b64decode,
}


class ToAvroValues:
    """A row with its TIMESTAMP, DATE and BYTES columns as Python values, as Avro load files need."""

    def __init__(self, table: Table) -> None:
        self.converters = [(c.name, _FROM_JSON[c.type]) for c in table.columns if c.type in _FROM_JSON]

    def __call__(self, row: Row) -> Row:
        converted = [(name, convert(row[name])) for name, convert in self.converters if isinstance(row.get(name), str)]
        return {**row, **dict(converted)} if converted else row


def partition_day(row: Row, table: Table) -> dt.date:
    """The day of the partition ``row`` lands in."""
    value = row[table.partition_field]
    return value.date() if isinstance(value, dt.datetime) else value


def table_resource(spec: str, table: Table, expires: dt.datetime | None = None) -> bigquery.Table:
    """``table`` as the BigQuery table ``spec``: partitioned by day and clustered as the contract says."""
    created = bigquery.Table(
        spec.replace(":", "."), schema=[bigquery.SchemaField.from_api_repr(c.bigquery()) for c in table.columns]
    )
    created.time_partitioning = bigquery.TimePartitioning(type_="DAY", field=table.partition_field)
    created.clustering_fields = list(table.cluster_fields) or None
    created.expires = expires
    return created


class CreateStagingTable(beam.DoFn):
    """Runs once before the load: creates the target if it is missing and the run's staging table,
    with an expiry; yields the staging table's spec (the load waits for it)."""

    def __init__(self, project: str | None, target: MergeTarget) -> None:
        self.project = project
        self.target = target

    def process(self, _: None) -> Iterator[str]:
        client = bigquery.Client(project=self.project)
        client.create_table(table_resource(self.target.spec, self.target.table), exists_ok=True)
        expires = dt.datetime.now(dt.UTC) + STAGING_EXPIRY
        staging = table_resource(self.target.staging_spec, self.target.table, expires)
        client.create_table(staging, exists_ok=True)
        yield self.target.staging_spec


class MergeStaged(beam.DoFn):
    """Once the load jobs are done, MERGEs the staging table into the target and drops it."""

    def __init__(self, project: str | None, target: MergeTarget) -> None:
        self.project = project
        self.target = target

    def process(self, _: None, days: set[dt.date], load_jobs: list[Any], copy_jobs: list[Any]) -> Iterator[int]:
        client = bigquery.Client(project=self.project)
        # WriteToBigQuery hands out its jobs as soon as it starts them: wait for each.
        for _destination, job in [*load_jobs, *copy_jobs]:
            client.get_job(job.jobId, project=job.projectId, location=job.location).result()
        inserted = 0
        if days:
            target = self.target
            sql = merge_sql(target.spec, target.staging_spec, target.table, target.key, days if target.prune else None)
            merge = client.query(sql)
            merge.result()
            inserted = merge.num_dml_affected_rows or 0
        client.delete_table(self.target.staging_spec.replace(":", "."), not_found_ok=True)
        yield inserted


def _staging_write(target: MergeTarget) -> WriteToBigQuery:
    return WriteToBigQuery(
        table=target.staging_spec,
        schema=target.table.bigquery_schema(),
        method=WriteToBigQuery.Method.FILE_LOADS,
        temp_file_format=FileFormat.AVRO,
        # CreateStagingTable made it (with its expiry); a retried load appends and the MERGE dedupes.
        create_disposition=BigQueryDisposition.CREATE_NEVER,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
    )


def _after(row: Row, _ready: list[Any]) -> Row:
    """Passes ``row`` on; the side input holds it back until what it names is ready."""
    return row


class LoadAndMerge(beam.PTransform):
    """Rows -> Avro files -> load jobs into the run's staging table -> one MERGE into ``target``.

    Outputs the number of rows the MERGE inserted (one element). ``ready`` is a side input
    the rows wait for first (the tables brought up to the contract).
    """

    def __init__(self, project: str | None, target: MergeTarget, ready: beam.pvalue.AsSideInput) -> None:
        super().__init__()
        self.project = project
        self.target = target
        self.ready = ready

    def expand(self, rows):
        once = rows.pipeline | "Once" >> beam.Create([None])
        staged = beam.pvalue.AsList(
            once | "CreateStagingTable" >> beam.ParDo(CreateStagingTable(self.project, self.target))
        )
        table = self.target.table
        rows = rows | "ToAvroValues" >> beam.Map(ToAvroValues(table))
        loaded = (
            rows
            | "WaitForTables" >> beam.Map(_after, self.ready)
            | "WaitForStaging" >> beam.Map(_after, staged)
            | "LoadIntoStaging" >> _staging_write(self.target)
        )
        # A set per bundle, merged: no shuffle per row.
        days = rows | "PartitionDays" >> beam.Map(partition_day, table) | "TouchedDays" >> beam.combiners.ToSet()
        return once | "Merge" >> beam.ParDo(
            MergeStaged(self.project, self.target),
            beam.pvalue.AsSingleton(days),
            beam.pvalue.AsList(loaded.destination_load_jobid_pairs),
            beam.pvalue.AsList(loaded.destination_copy_jobid_pairs),
        )
