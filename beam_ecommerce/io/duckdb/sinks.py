"""The Beam side of the local warehouse: a batch run's staged load and the stream's per-bundle load.

The pipeline stages a run's rows and dead letters as JSONL files (one ``msgspec`` call per
batch of rows, written by many workers at once; measured several times cheaper than building
Arrow tables row by row), and beside the rows one key line per batch; then one step gives
them all to ``DuckDBWarehouse.load``.
"""

from __future__ import annotations

import glob
import logging
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from operator import attrgetter, itemgetter
from typing import Any

import apache_beam as beam
import msgspec
import orjson
from apache_beam.io.filesystems import FileSystems

from beam_ecommerce import metrics
from beam_ecommerce.io.dead_letter_files import WriteDeadLetterFiles, dead_letter_prefix
from beam_ecommerce.io.duckdb.warehouse import (
    PENDING_BOOKS,
    ROW_KEY,
    ROW_ORDER,
    DuckDBWarehouse,
    LoadReport,
    WarehouseError,
    WarehouseLocked,
)
from beam_ecommerce.io.pubsub import message_id_of
from beam_ecommerce.io.pubsub_local import registered_deliveries
from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.records import Row

_LOGGER = logging.getLogger(__name__)


_JSON_LINES = msgspec.json.Encoder()
# The names the staged files of a batch run begin with: its rows, and their key lines.
ROW_FILES = "raw_events"
KEY_LINE_FILES = "raw_event_keys"


def rows_to_jsonl(rows: list[Row]) -> bytes:
    """A batch of rows as JSONL, every line ended by a newline.

    One msgspec call a batch: 0.8 µs a row, where an orjson call per row, joined, took 1.2
    (benchmarks/README.md, session 7). UTC timestamps come out as ``...Z``, which the load
    casts to TIMESTAMPTZ as it did orjson's ``+00:00``.
    """
    return _JSON_LINES.encode_lines(rows)


def row_key_line(rows: list[Any]) -> bytes:
    """A non-empty batch of rows' key line: its ``ROW_KEY`` and ``ROW_ORDER`` columns, as one JSON line.

    The load reads the rows' keys from the key lines, a tenth of the rows' bytes, instead
    of parsing every row's JSON twice (at 10M rows 1.3 s against 3.3 s); a line costs 0.13
    µs a row.
    """
    column = itemgetter if type(rows[0]) is dict else attrgetter
    return _JSON_LINES.encode({name: list(map(column(name), rows)) for name in (ROW_KEY, ROW_ORDER)}) + b"\n"


class _StageRows(beam.DoFn):
    """A batch of rows -> its JSONL, and its key line on ``KEY_LINES``."""

    KEY_LINES = "key_lines"

    def process(self, rows: list[Any]) -> Iterator[bytes | beam.pvalue.TaggedOutput]:
        if rows:
            yield rows_to_jsonl(rows)
            yield beam.pvalue.TaggedOutput(self.KEY_LINES, row_key_line(rows))


class _LoadRun(beam.DoFn):
    """Runs once per run, after every file is written: loads them, then removes the staged rows.

    If the warehouse stays locked past its timeout and the run is ``resumable``, nothing is
    lost and nothing is redone: the staged files stay, ``load_deferred`` is counted, and
    ``DuckDBSink.resume`` loads them later (``beam-ecommerce batch --resume RUN_ID``).
    Otherwise (a replay, whose next steps need the load done) the run fails.
    """

    def __init__(self, warehouse: DuckDBWarehouse, run_id: str, run_staging_dir: str, resumable: bool) -> None:
        self.warehouse = warehouse
        self.run_id = run_id
        self.run_staging_dir = run_staging_dir
        self.resumable = resumable

    def process(
        self, _: None, row_files: list[str], key_line_files: list[str], dead_letter_files: list[str]
    ) -> Iterator[LoadReport]:
        try:
            report = self.warehouse.load(
                self.run_id, sorted(row_files), sorted(dead_letter_files), row_key_lines=sorted(key_line_files)
            )
        except WarehouseLocked as error:
            if not self.resumable:
                raise
            metrics.counter(metrics.LOAD_DEFERRED).inc()
            _LOGGER.warning("run %s not loaded, its staged files are kept: %s", self.run_id, error)
            return
        metrics.counter(metrics.ROWS_LOADED).inc(report.rows_loaded)
        metrics.counter(metrics.DUPLICATES).inc(report.duplicates)
        remove_staged(self.run_staging_dir)
        _LOGGER.info("loaded run %s: %s", self.run_id, asdict(report))
        yield report


def remove_staged(run_staging_dir: str) -> None:
    if FileSystems.exists(run_staging_dir):
        FileSystems.delete([run_staging_dir])


class DuckDBSink(WarehouseSink):
    """The embedded default sink: staged JSONL files, then one idempotent DuckDB load.

    A ``resumable`` run whose load could not get the warehouse keeps its staged rows and
    dead-letter files, and its books (``keep_books``); ``resume`` loads them without
    processing again.
    """

    takes_typed_rows = True  # the rows are staged by msgspec, which encodes structs as their dicts

    def __init__(
        self, warehouse: DuckDBWarehouse, staging_dir: str, dead_letter_dir: str, run_id: str, resumable: bool = False
    ) -> None:
        self.warehouse = warehouse
        self.staging_dir = staging_dir
        self.dead_letter_dir = dead_letter_dir
        self.run_id = run_id
        self.resumable = resumable

    @property
    def run_staging_dir(self) -> str:
        return f"{self.staging_dir.rstrip('/')}/run_id={self.run_id}"

    @property
    def _books_path(self) -> str:
        return os.path.join(self.run_staging_dir, PENDING_BOOKS)

    def write(self, rows, dead_letters, duplicates=None):
        staged = rows | "ToJsonLines" >> beam.ParDo(_StageRows()).with_outputs(_StageRows.KEY_LINES, main="rows")
        row_files, key_line_files = (
            lines
            | f"Stage{name}"
            >> beam.io.WriteToText(
                f"{self.run_staging_dir}/{prefix}", file_name_suffix=".jsonl", append_trailing_newlines=False
            )
            for name, prefix, lines in (
                ("Rows", ROW_FILES, staged.rows),
                ("RowKeys", KEY_LINE_FILES, staged[_StageRows.KEY_LINES]),
            )
        )
        dead_letter_files = dead_letters | "WriteDeadLetters" >> WriteDeadLetterFiles(self.dead_letter_dir, self.run_id)
        pipeline = rows.pipeline
        return (
            pipeline
            | "LoadOnce" >> beam.Create([None])
            | "LoadIntoDuckDB"
            >> beam.ParDo(
                _LoadRun(self.warehouse, self.run_id, self.run_staging_dir, self.resumable),
                beam.pvalue.AsList(row_files),
                beam.pvalue.AsList(key_line_files),
                beam.pvalue.AsList(dead_letter_files),
            )
        )

    def keep_books(self, books: dict[str, Any]) -> None:
        """Keeps a deferred run's books (its source counts) beside its staged files, for ``resume``."""
        os.makedirs(self.run_staging_dir, exist_ok=True)
        with open(self._books_path, "wb") as out:
            out.write(orjson.dumps(books))

    def resume(self) -> tuple[LoadReport, dict[str, Any]]:
        """Loads the files a deferred run staged; its report and the books it kept."""
        try:
            with open(self._books_path, "rb") as source:
                books = orjson.loads(source.read())
        except FileNotFoundError:
            raise WarehouseError(
                f"run {self.run_id} has nothing waiting to be loaded in {self.run_staging_dir}: it was loaded, "
                "or it ran with another --staging_dir or --duckdb_path"
            ) from None
        staged = glob.escape(self.run_staging_dir)
        row_files, key_line_files = (
            sorted(glob.glob(f"{staged}/{prefix}*.jsonl")) for prefix in (ROW_FILES, KEY_LINE_FILES)
        )
        dead_letter_files = sorted(glob.glob(f"{glob.escape(dead_letter_prefix(self.dead_letter_dir, self.run_id))}*"))
        report = self.warehouse.load(self.run_id, row_files, dead_letter_files, row_key_lines=key_line_files)
        remove_staged(self.run_staging_dir)
        return report, books


# How the stream's dedupe hands the sink a re-send it absorbed: only its count is loaded (and its source acknowledged).
_ABSORBED = "absorbed"


class _LoadEachBundle(beam.DoFn):
    """Loads what one bundle of the stream carries, in one transaction, when the bundle ends; then
    acknowledges the bundle's messages, when the run reads them with ``ReadAfterCommit``.

    A bundle is the unit Beam commits, so nothing waits for a timer: on the local runner
    a buffer of its own (``GroupIntoBatches``) held the last rows of a quiet stream for
    half a minute. Rows and dead letters come untagged (a dead letter has a
    ``dead_letter_id``): the local runner runs every step for every bundle, empty or
    not, so each step saved on this path is throughput.

    While another process holds the warehouse, the load waits up to the warehouse's
    ``lock_timeout_seconds`` (``--warehouse_lock_timeout_seconds``). A load that cannot commit, for
    that or any other reason, fails the run (``Deliveries.fail``): the stream stops, and
    its messages are not acknowledged but released for redelivery. Without a ledger
    (Beam's own reader, which has acknowledged them already), the error is raised.
    """

    def __init__(self, warehouse: DuckDBWarehouse, run_id: str, staging_dir: str) -> None:
        self.warehouse = warehouse
        self.run_id = run_id
        self.staging_dir = staging_dir

    def start_bundle(self) -> None:
        self._rows: list[Row] = []
        self._dead_letters: list[Row] = []
        self._absorbed = 0
        self._sources: list[str] = []

    def process(self, item: Row | tuple[str, str]) -> None:
        if isinstance(item, tuple):
            self._absorbed += 1
            self._sources.append(item[1])
            return
        self._sources.append(item["source"])
        if "dead_letter_id" in item:
            self._dead_letters.append(item)
        else:
            self._rows.append(item)

    def finish_bundle(self) -> None:
        if not self._sources:
            return
        ledger = registered_deliveries(self.run_id)
        if ledger is not None and ledger.failure:
            return  # the run is stopping without acknowledging: these are released for redelivery
        try:
            report = self._load()
        except Exception as error:  # whatever stops a commit stops the run, unacknowledged
            if ledger is None:
                raise
            ledger.fail(" ".join(str(error).split()))
            return
        metrics.counter(metrics.ROWS_LOADED).inc(report.rows_loaded)
        metrics.counter(metrics.DUPLICATES).inc(report.duplicates)
        if ledger is not None:
            ledger.committed(message_id_of(source) for source in self._sources)
        self.start_bundle()

    def _load(self) -> LoadReport:
        os.makedirs(self.staging_dir, exist_ok=True)
        name = f"{self.staging_dir}/bundle-{uuid.uuid4().hex}"
        staged = {f"{name}-rows.jsonl": self._rows, f"{name}-dead-letters.jsonl": self._dead_letters}
        for path, items in staged.items():
            with open(path, "wb") as out:
                out.write(rows_to_jsonl(items))  # an empty file is skipped by the load
        row_file, dead_letter_file = staged
        lock_timeout = self.warehouse.lock_timeout_seconds
        deadline = time.monotonic() + lock_timeout
        try:
            while True:
                try:
                    return self.warehouse.load(self.run_id, [row_file], [dead_letter_file], self._absorbed)
                except WarehouseError as error:
                    if "lock" not in str(error).lower():
                        raise
                    if time.monotonic() >= deadline:
                        raise WarehouseError(
                            f"the warehouse {self.warehouse.path} stayed locked for over {lock_timeout:g} s "
                            "(another process holds it: dbt, the dashboard?); run the stream again once it is free, "
                            "or with a longer --warehouse_lock_timeout_seconds"
                        ) from None
        finally:
            for path in staged:
                os.remove(path)


class DuckDBStreamSink(WarehouseSink):
    """The local sink of the stream: each bundle's rows, duplicates and dead letters in one load.

    Its dead letters go to the warehouse's ``dead_letter`` table (and, if the stream has
    one, its dead-letter topic), not to files: the table is the local store of record.

    DuckDB lets one process write a file. The stream's loads all run in the pipeline's
    process and hold the file only while they load, so other processes (dbt, the
    dashboard) can read between loads; a load waits up to the warehouse's lock timeout for
    them. The loads' anti join on ``event_id`` keeps a redelivered message from landing twice.
    """

    def __init__(self, warehouse: DuckDBWarehouse, staging_dir: str, run_id: str) -> None:
        self.warehouse = warehouse
        self.staging_dir = staging_dir
        self.run_id = run_id

    def write(self, rows, dead_letters, duplicates=None):
        parts = [rows, dead_letters]
        if duplicates is not None:
            parts.append(duplicates | "MarkAbsorbed" >> beam.Map(lambda row: (_ABSORBED, row["source"])))
        staging_dir = f"{self.staging_dir}/run_id={self.run_id}"
        load = _LoadEachBundle(self.warehouse, self.run_id, staging_dir)
        return tuple(parts) | "Merge" >> beam.Flatten() | "LoadEachBundle" >> beam.ParDo(load)
