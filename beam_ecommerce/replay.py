"""Dead-letter replay: read dead letters back, choose them, fix them, and remember what was replayed.

The pieces that ``beam_ecommerce.pipelines.replay`` runs around the same ``ProcessEvents``
core as every other pipeline:

- ``ReadDeadLetters``: dead-letter rows from the JSONL files the sinks write (a folder or
  ``gs://`` prefix, or a file pattern) or from the local warehouse's ``dead_letter`` table,
  all in the files' JSON form;
- ``SelectForReplay``: those a ``DeadLetterFilter`` picks (stages, reasons, time range) and
  no earlier replay has landed, one per ``dead_letter_id``;
- ``replay_record`` and ``keep_identity``: a dead letter is its source record's identity. The
  record goes back into the core tagged with its ``dead_letter_id``, and if it fails again
  its new dead letter keeps that id, so the load's dedupe on ``dead_letter_id`` keeps the
  first one (with the original payload): four failed replays of 40 dead letters leave 40;
- ``ApplyFix``: a user's fix function ``module:function`` applied to each payload, like the
  UDFs of Google's templates; a record it fails on becomes a dead letter of stage ``replay_fix``.
  ``load_fix`` runs the user's code: it refuses what is not a Python function of the user's own;
- ``RecordAttempts``: after the load, one ``replay_attempts`` row per selected dead letter
  (loaded, or where and why it failed this time), and one ``replayed`` mark per dead letter
  whose record is now in the warehouse, so that a later replay leaves it out. If a replay
  dies between its load and its marks, the load's ``event_id`` dedupe absorbs the rows the
  next replay offers again;
- the books: ``WarehouseBooks`` (the local warehouse's ``replayed`` and ``replay_attempts``
  tables) for a replay into DuckDB, ``FileBooks`` (one JSONL file of attempts per replay
  beside its dead-letter files) for a replay into BigQuery.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import logging
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import apache_beam as beam
import duckdb
import orjson
import pyarrow as pa
from apache_beam import pvalue

from beam_ecommerce import metrics
from beam_ecommerce.io.dead_letter_files import dead_letter_prefix
from beam_ecommerce.io.duckdb_warehouse import DuckDBWarehouse, WarehouseError, rollback
from beam_ecommerce.records import RawBatch, RawRecord, Row
from beam_ecommerce.transforms.dead_letter import RecordError, RouteBatch, RunContext, original_record

_LOGGER = logging.getLogger(__name__)

TABLE = "table"
"""``--dead_letters`` value that reads the local warehouse's ``dead_letter`` table."""
REPLAY_FIX = "replay_fix"
"""Stage of the dead letter of a record the fix function failed on."""

SELECTED = "replay_selected"
ALREADY_REPLAYED = "replay_already_replayed"
UNREADABLE = "replay_unreadable_lines"
MARKED = "replay_marked"
ATTEMPTS = "replay_attempts_recorded"

REPLAY_OF = "beam_ecommerce:replay_of"
"""Attribute that carries a replayed record's ``dead_letter_id`` through the core to ``keep_identity``."""
LOADED = "loaded"
FAILED_AGAIN = "dead_letter"
"""The outcomes of a replay attempt (``replay_attempts.outcome``)."""
_OWN_DEF = "a fix function is a def in a module of your own"

# What a row needs to be replayed; the other dead-letter columns are context.
_NEEDED = frozenset({"dead_letter_id", "timestamp", "payloadBytes", "attributes", "stage", "error_type", "source"})

_REPLAYED_DDL = """
CREATE TABLE IF NOT EXISTS replayed (
  dead_letter_id VARCHAR NOT NULL,
  event_id VARCHAR NOT NULL,
  replay_run_id VARCHAR NOT NULL,
  replayed_at TIMESTAMPTZ NOT NULL
)"""

_ATTEMPTS_DDL = """
CREATE TABLE IF NOT EXISTS replay_attempts (
  dead_letter_id VARCHAR NOT NULL,
  replay_run_id VARCHAR NOT NULL,
  attempted_at TIMESTAMPTZ NOT NULL,
  outcome VARCHAR NOT NULL,
  event_id VARCHAR,
  stage VARCHAR,
  error_type VARCHAR,
  error_message VARCHAR
)"""
_ATTEMPT_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("dead_letter_id", "outcome", "event_id", "stage", "error_type", "error_message")]
)


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters to replay: any of ``stages``, any of ``reasons``, failed in ``[since, until)``.

    An empty set or ``None`` does not filter.
    """

    stages: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, row: Row) -> bool:
        if self.stages and row["stage"] not in self.stages:
            return False
        if self.reasons and row["error_type"] not in self.reasons:
            return False
        if self.since is None and self.until is None:
            return True
        failed_at = datetime.fromisoformat(row["timestamp"])
        return (self.since is None or failed_at >= self.since) and (self.until is None or failed_at < self.until)


def dead_letter_files(location: str) -> str:
    """The pattern of the dead-letter files under ``location``, unless ``location`` is a pattern already.

    Only the shards ``WriteDeadLetterFiles`` names: a run that was killed leaves half-written
    temporary files beside them, which are no dead letters.
    """
    if any(char in location for char in "*?["):
        return location
    return dead_letter_prefix(location, "*") + "*.jsonl"


class _ParseDeadLetterLine(beam.DoFn):
    """``(file, line)`` -> the dead-letter row; a line that is none is counted and logged, not replayed."""

    def process(self, element: tuple[str, str]) -> Iterator[Row]:
        path, line = element
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not _NEEDED <= row.keys():
            metrics.counter(UNREADABLE).inc()
            _LOGGER.warning("%s: left out a line that is not a dead letter: %.100s", path, line)
            return
        yield row


def _json_form(row: Row) -> Row:
    """A ``dead_letter`` table row in the form the files hold (base64 payload, ISO timestamp)."""
    return row | {
        "payloadBytes": base64.b64encode(row["payloadBytes"]).decode("ascii"),
        "timestamp": row["timestamp"].isoformat(),
    }


class _ReadDeadLetterTable(beam.DoFn):
    """The local warehouse's ``dead_letter`` table, row by row."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse = warehouse

    def process(self, _: None) -> Iterator[Row]:
        con = self.warehouse.connect(read_only=True)
        try:
            cursor = con.execute("SELECT * FROM dead_letter")
            names = [column[0] for column in cursor.description]
            while chunk := cursor.fetchmany(10_000):
                for values in chunk:
                    yield _json_form(dict(zip(names, values, strict=True)))
        finally:
            con.close()


class ReadDeadLetters(beam.PTransform):
    """``location`` (files, see ``dead_letter_files``, or ``TABLE``) -> dead-letter rows in their JSON form."""

    def __init__(self, location: str, warehouse: DuckDBWarehouse) -> None:
        super().__init__()
        self.location = location
        self.warehouse = warehouse

    def expand(self, pbegin):
        if self.location == TABLE:
            return (
                pbegin | "Once" >> beam.Create([None]) | "ReadTable" >> beam.ParDo(_ReadDeadLetterTable(self.warehouse))
            )
        return (
            pbegin
            | "ReadFiles" >> beam.io.ReadFromTextWithFilename(dead_letter_files(self.location))
            | "Parse" >> beam.ParDo(_ParseDeadLetterLine())
        )


def replayed_ids(warehouse: DuckDBWarehouse) -> frozenset[str]:
    """The dead letters earlier replays landed (none before the first replay)."""
    if not os.path.exists(warehouse.path):
        return frozenset()
    con = warehouse.connect(read_only=True)
    try:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'replayed'").fetchone()[0]:
            return frozenset()
        return frozenset(
            dead_letter_id for (dead_letter_id,) in con.execute("SELECT dead_letter_id FROM replayed").fetchall()
        )
    finally:
        con.close()


def _one_copy(keyed: tuple[str, Iterable[Row]]) -> Row:
    """One of the copies of a dead letter (files and table, or the files of several runs, can hold it): the first.

    The first is the record's own failure; later ones are the files of replays that failed it again.
    """
    return min(keyed[1], key=lambda row: row["timestamp"])


class _SkipReplayed(beam.DoFn):
    """Leaves out the dead letters an earlier replay landed; counts what it selects and what it leaves out."""

    def process(self, row: Row, replayed: frozenset[str]) -> Iterator[Row]:
        if row["dead_letter_id"] in replayed:
            metrics.counter(ALREADY_REPLAYED).inc()
            return
        metrics.counter(SELECTED).inc()
        yield row


class SelectForReplay(beam.PTransform):
    """Dead-letter rows -> those to replay: one per ``dead_letter_id``, picked by ``selection``, not replayed yet.

    The filter sees a dead letter's first copy, so files and table pick alike: a replay's
    file of a record it failed again (same id, this attempt's stage) does not match on its own.
    ``books`` say which dead letters earlier replays landed.
    """

    def __init__(self, selection: DeadLetterFilter, books: ReplayBooks) -> None:
        super().__init__()
        self.selection = selection
        self.books = books

    def expand(self, rows):
        replayed = pvalue.AsSingleton(rows.pipeline | "ReplayedIds" >> self.books.replayed())
        return (
            rows
            | "KeyById" >> beam.Map(lambda row: (row["dead_letter_id"], row))
            | "GroupById" >> beam.GroupByKey()
            | "OneCopy" >> beam.Map(_one_copy)
            | "Filter" >> beam.Filter(self.selection.matches)
            | "NotReplayedYet" >> beam.ParDo(_SkipReplayed(), replayed)
        )


def _in_standard_library(module_name: str) -> bool:
    top_level = module_name.partition(".")[0]
    return top_level in sys.stdlib_module_names or top_level in sys.builtin_module_names


def _installed_package(module_name: str) -> bool:
    """Whether the imported ``module_name`` lives in a site-packages folder: an installed distribution's code."""
    location = getattr(sys.modules.get(module_name), "__file__", None)
    if location is None:
        return False
    paths = sysconfig.get_paths()
    folders = {paths["purelib"], paths["platlib"], *site.getsitepackages(), site.getusersitepackages()}
    path = os.path.realpath(location)
    return any(path.startswith(os.path.join(os.path.realpath(folder), "")) for folder in folders)


def _working_directory_importable() -> None:
    """Lets ``--fix my_fixes:f`` find ``./my_fixes.py``, as ``python -m`` would (after the installed modules)."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


def load_fix(path: str) -> Callable[[bytes], bytes | str]:
    """The fix function ``module:function`` names, imported (importing runs the module's code).

    A fix runs on payloads that whoever could send an event wrote, so it must be a Python
    function (a ``def``) of the user's own: functions of the standard library
    (``os:system``, ``subprocess:getoutput``), of installed packages and compiled ones
    (``builtins:eval``), or a re-export of one, are refused, a standard-library module
    before it is even imported. The working directory is importable. ``ValueError``
    saying why if there is no such function.
    """
    module_name, _, name = path.partition(":")
    if not module_name or not name:
        raise ValueError(f"a fix function is named module:function, not {path!r}")
    if _in_standard_library(module_name):
        raise ValueError(f"{path} is in Python's standard library; {_OWN_DEF}")
    _working_directory_importable()
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import the fix function's module {module_name!r}: {error}") from None
    fix = getattr(module, name, None)
    if fix is None:
        raise ValueError(f"module {module_name!r} has no function {name!r}")
    if not inspect.isfunction(fix):
        origin = getattr(fix, "__module__", None) or type(fix).__name__
        raise ValueError(f"{path} ({origin}) is not a def; {_OWN_DEF}")
    if _in_standard_library(fix.__module__) or _installed_package(fix.__module__):
        raise ValueError(f"{path} is a def of {fix.__module__}, not of your own; {_OWN_DEF}")
    return fix


def replay_record(row: Row) -> RawRecord:
    """The record a dead letter was made from, carrying the dead letter's id for ``keep_identity``."""
    raw = original_record(row)
    return raw._replace(attributes=(*raw.attributes, (REPLAY_OF, row["dead_letter_id"])))


def keep_identity(dead_letter: Row) -> Row:
    """A replayed record's new dead letter, under the id of the dead letter it was replayed from.

    The dead letter is the source record's identity, however often a replay fails it again
    and at whichever stage: the warehouse keeps one row per ``dead_letter_id`` (the first,
    with the original payload), and the attempts go to ``replay_attempts``. The last
    ``REPLAY_OF`` attribute is the replay's own (a message's attributes come before it).
    """
    attributes = dead_letter["attributes"]
    last = max(i for i, item in enumerate(attributes) if item["key"] == REPLAY_OF)
    return dead_letter | {
        "dead_letter_id": attributes[last]["value"],
        "attributes": attributes[:last] + attributes[last + 1 :],
    }


class ApplyFix(RouteBatch):
    """Replay's stage before the core: ``fix(payload: bytes) -> bytes | str`` on each record.

    The record keeps its source and attributes; a fix that raises, or returns something
    else, sends the record to the dead letter (stage ``replay_fix``) with its bytes as they were.
    """

    stage = REPLAY_FIX

    def __init__(self, context: RunContext, fix_path: str) -> None:
        super().__init__(context)
        self.fix_path = fix_path

    def setup(self) -> None:
        self._fix = load_fix(self.fix_path)

    def apply(self, raw: RawRecord) -> RawRecord:
        fixed = self._fix(raw.payload)
        if isinstance(fixed, str):
            fixed = fixed.encode("utf-8")
        if not isinstance(fixed, bytes):
            raise RecordError("fix_returned_no_bytes", f"{self.fix_path} returned {type(fixed).__name__}, not bytes")
        return raw._replace(payload=fixed)

    def process(self, batch: RawBatch):
        for output in super().process(batch):
            yield output if isinstance(output, pvalue.TaggedOutput) else RawBatch(output)


def _source_and_event_id(rows: list[Row]) -> Iterator[tuple[str, str]]:
    for row in rows:
        yield row["source"], row["event_id"]


def _landed(joined: tuple[str, dict[str, list[str]]]) -> Iterator[tuple[str, str]]:
    """``(dead_letter_id, event_id)`` for each dead letter of a source that produced a row."""
    _, found = joined
    event_ids = sorted(found["rows"])
    if event_ids:
        for dead_letter_id in found["dead_letters"]:
            yield dead_letter_id, event_ids[0]


Attempt = tuple[str, str, str | None, str | None, str | None, str | None]
"""``(dead_letter_id, outcome, event_id, stage, error_type, error_message)``: one replay of one dead letter."""


def _attempt(joined: tuple[str, dict[str, list]]) -> Attempt:
    """Loaded (with its row's ``event_id``), or failed again (where and why, this time)."""
    dead_letter_id, found = joined
    if found["landed"]:
        return dead_letter_id, LOADED, found["landed"][0], None, None, None
    return dead_letter_id, FAILED_AGAIN, None, *found["failed"][0]


class _WriteAttempts(beam.DoFn):
    """Writes all attempts of a replay and its ``replayed`` marks in one transaction, after the load.

    The load's reports are the side input that orders it after the load. Idempotent: a
    retried write adds no attempt of this run and no mark twice.
    """

    def __init__(self, warehouse: DuckDBWarehouse, run_id: str) -> None:
        self.warehouse = warehouse
        self.run_id = run_id

    def process(self, attempts: list[Attempt], _loads: list[Any]) -> Iterator[int]:
        table = pa.Table.from_pylist(
            [dict(zip(_ATTEMPT_SCHEMA.names, attempt, strict=True)) for attempt in attempts], schema=_ATTEMPT_SCHEMA
        )
        now = datetime.now(UTC)
        con = self.warehouse.connect(wait_for_lock=self.warehouse.lock_timeout_seconds)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(_REPLAYED_DDL)
            con.execute(_ATTEMPTS_DDL)
            con.register("attempts", table)
            (recorded,) = con.execute(
                """INSERT INTO replay_attempts BY NAME
                   SELECT a.*, ? AS replay_run_id, ? AS attempted_at FROM attempts AS a
                   ANTI JOIN (SELECT * FROM replay_attempts WHERE replay_run_id = ?) AS r
                     ON r.dead_letter_id = a.dead_letter_id""",
                [self.run_id, now, self.run_id],
            ).fetchone()
            (marked,) = con.execute(
                f"""INSERT INTO replayed
                    SELECT a.dead_letter_id, a.event_id, ?, ? FROM attempts AS a
                    ANTI JOIN replayed AS r ON r.dead_letter_id = a.dead_letter_id
                    WHERE a.outcome = '{LOADED}'""",
                [self.run_id, now],
            ).fetchone()
            con.execute("COMMIT")
        except duckdb.Error as error:
            rollback(con)
            raise WarehouseError(f"recording replay {self.run_id} in {self.warehouse.path} failed: {error}") from None
        finally:
            con.close()
        metrics.counter(ATTEMPTS).inc(recorded)
        metrics.counter(MARKED).inc(marked)
        yield marked


class RecordAttempts(beam.PTransform):
    """Rows a replay loaded -> one attempt per ``selected`` dead letter, handed to ``books`` with the load.

    A row is matched to its dead letters by its ``source`` (file and line, or message),
    which the core copies to every row, and a dead letter that failed again to its
    ``selected`` one by the id ``keep_identity`` gave it. The books record the attempts
    after ``loads`` (the sink's load reports) is complete, and mark the dead letters whose
    record is in the warehouse as replayed; one that failed again stays replayable.
    """

    def __init__(self, books: ReplayBooks, selected, failed_again, loads) -> None:
        super().__init__()
        self.books = books
        self.selected = selected
        self.failed_again = failed_again
        self.loads = loads

    def expand(self, row_batches):
        landed = {
            "rows": row_batches | "RowSources" >> beam.FlatMap(_source_and_event_id),
            "dead_letters": self.selected
            | "DeadLetterSources" >> beam.Map(lambda d: (d["source"], d["dead_letter_id"])),
        } | "JoinOnSource" >> beam.CoGroupByKey()
        attempts = (
            {
                "landed": landed | "Landed" >> beam.FlatMap(_landed),
                "failed": self.failed_again
                | "Failures"
                >> beam.Map(lambda d: (d["dead_letter_id"], (d["stage"], d["error_type"], d["errorMessage"]))),
            }
            | "JoinOnDeadLetter" >> beam.CoGroupByKey()
            | "Attempts" >> beam.Map(_attempt)
        )
        return attempts | "Record" >> self.books.record(self.loads)


class ReplayBooks(Protocol):
    """Where replays keep their books: which dead letters landed (``replayed``) and every attempt."""

    def replayed(self) -> beam.PTransform:
        """``pbegin`` -> one element: the ids of the dead letters earlier replays landed."""
        ...

    def record(self, loads) -> beam.PTransform:
        """Attempts -> recorded once ``loads`` (the sink's load reports) is complete."""
        ...


class WarehouseBooks:
    """The local warehouse's ``replayed`` and ``replay_attempts`` tables, written in one transaction."""

    def __init__(self, warehouse: DuckDBWarehouse, run_id: str) -> None:
        self.warehouse = warehouse
        self.run_id = run_id

    def replayed(self) -> beam.PTransform:
        return _ReplayedInWarehouse(self.warehouse)

    def record(self, loads) -> beam.PTransform:
        return _WriteAttemptsToWarehouse(self.warehouse, self.run_id, loads)


class _ReplayedInWarehouse(beam.PTransform):
    """``pbegin`` -> the ids in the warehouse's ``replayed`` table (``replayed_ids``)."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        super().__init__()
        self.warehouse = warehouse

    def expand(self, pbegin):
        return pbegin | "Once" >> beam.Create([self.warehouse]) | "Read" >> beam.Map(replayed_ids)


class _WriteAttemptsToWarehouse(beam.PTransform):
    """Attempts -> all of them, after ``loads``, in one transaction (``_WriteAttempts``)."""

    def __init__(self, warehouse: DuckDBWarehouse, run_id: str, loads) -> None:
        super().__init__()
        self.warehouse = warehouse
        self.run_id = run_id
        self.loads = loads

    def expand(self, attempts):
        return (
            attempts
            | "AllAttempts" >> beam.combiners.ToList()
            | "Write" >> beam.ParDo(_WriteAttempts(self.warehouse, self.run_id), pvalue.AsList(self.loads))
        )


ATTEMPT_FILES = "replay_attempts"
"""Name of a replay's attempt files beside its dead-letter files: ``<dir>/run_id=<run_id>/replay_attempts-*.jsonl``."""


def attempt_files_prefix(directory: str, run_id: str) -> str:
    """Where replay ``run_id`` writes its attempts under the dead-letter ``directory``."""
    run_folder = dead_letter_prefix(directory, run_id).rsplit("/", 1)[0]
    return f"{run_folder}/{ATTEMPT_FILES}"


class FileBooks:
    """JSONL attempt files beside the replay's dead-letter files (the books of a replay into BigQuery).

    One file per replay, ``<dead_letter_dir>/run_id=<run_id>/replay_attempts-00000-of-00001.jsonl``,
    one line per attempt (the ``replay_attempts`` columns); its ``loaded`` lines are the
    ``replayed`` marks the next replay reads from the same ``dead_letter_dir``. They spare it
    the work, not the warehouse a duplicate: the MERGE on ``event_id`` and ``dead_letter_id``
    does that. A retried or rerun replay of the same run id rewrites its one file.
    """

    def __init__(self, directory: str, run_id: str) -> None:
        self.directory = directory
        self.run_id = run_id

    def replayed(self) -> beam.PTransform:
        return _ReplayedInFiles(attempt_files_prefix(self.directory, "*") + "*.jsonl")

    def record(self, loads) -> beam.PTransform:
        return _WriteAttemptFiles(attempt_files_prefix(self.directory, self.run_id), self.run_id, loads)


def _loaded_ids(line: str) -> Iterator[str]:
    """The dead letter an attempt line says was loaded; a line that says nothing of the kind marks none."""
    try:
        attempt = orjson.loads(line)
    except orjson.JSONDecodeError:
        return
    if isinstance(attempt, dict) and attempt.get("outcome") == LOADED and attempt.get("dead_letter_id"):
        yield attempt["dead_letter_id"]


class _ReplayedInFiles(beam.PTransform):
    """``pbegin`` -> the ids of the ``loaded`` lines of the attempt files ``pattern`` matches."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = pattern

    def expand(self, pbegin):
        return (
            pbegin
            | "Pattern" >> beam.Create([self.pattern])
            # No attempt files before the first replay: an empty match is no error.
            | "ReadAttempts" >> beam.io.ReadAllFromText()
            | "LoadedIds" >> beam.FlatMap(_loaded_ids)
            | "Ids" >> beam.combiners.ToSet()
            | "Frozen" >> beam.Map(frozenset)
        )


def _attempt_line(attempt: Attempt, run_id: str, _loads: list[Any]) -> str:
    """One attempt as a JSON line; ``_loads`` (the load's reports) holds it back until the load is done."""
    metrics.counter(ATTEMPTS).inc()
    if attempt[1] == LOADED:
        metrics.counter(MARKED).inc()
    row = dict(zip(_ATTEMPT_SCHEMA.names, attempt, strict=True))
    row |= {"replay_run_id": run_id, "attempted_at": datetime.now(UTC).isoformat()}
    return orjson.dumps(row).decode("utf-8")


class _WriteAttemptFiles(beam.PTransform):
    """Attempts -> one JSONL file ``<prefix>-00000-of-00001.jsonl``, written after ``loads``."""

    def __init__(self, prefix: str, run_id: str, loads) -> None:
        super().__init__()
        self.prefix = prefix
        self.run_id = run_id
        self.loads = loads

    def expand(self, attempts):
        return (
            attempts
            | "ToJson" >> beam.Map(_attempt_line, self.run_id, pvalue.AsList(self.loads))
            | "Write" >> beam.io.WriteToText(self.prefix, file_name_suffix=".jsonl", num_shards=1)
        )
