"""Dead-letter replay's transforms: choose dead letters, fix them, turn them back into records, count the attempts.

What ``beam_ecommerce.pipelines.replay`` runs around the same ``ProcessEvents`` core as every
other pipeline (reading dead letters and the replay books are IO: ``io.dead_letter_reader``,
``io.replay_books``):

- ``SelectForReplay``: the dead letters a ``DeadLetterFilter`` picks (stages, reasons, time
  range) and no earlier replay has landed, one per ``dead_letter_id``;
- ``replay_record`` and ``keep_identity``: a dead letter is its source record's identity. The
  record goes back into the core tagged with its ``dead_letter_id``, and if it fails again
  its new dead letter keeps that id, so the load's dedupe on ``dead_letter_id`` keeps the
  first one (with the original payload): four failed replays of 40 dead letters leave 40;
- ``ApplyFix``: a user's fix function ``module:function`` applied to each payload, like the
  UDFs of Google's templates; a record it fails on becomes a dead letter of stage ``replay_fix``.
  ``load_fix`` runs the user's code: it refuses what is not a Python function of the user's own;
- ``RecordAttempts``: after the load, one attempt per selected dead letter (loaded, or where
  and why it failed this time), handed to the ``ReplayBooks`` to record with the ``replayed``
  marks, so that a later replay leaves a landed dead letter out. If a replay dies between its
  load and its marks, the load's ``event_id`` dedupe absorbs the rows the next replay offers again.
"""

from __future__ import annotations

import importlib
import inspect
import os
import site
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import apache_beam as beam
from apache_beam import pvalue

from beam_ecommerce import metrics
from beam_ecommerce.records import RawBatch, RawRecord, Row
from beam_ecommerce.records.dead_letter import RunContext, original_record
from beam_ecommerce.records.replay_attempt import FAILED_AGAIN, LOADED, Attempt
from beam_ecommerce.transforms.dead_letter import RecordError, RouteBatch

REPLAY_FIX = "replay_fix"
"""Stage of the dead letter of a record the fix function failed on."""
SELECTED = "replay_selected"
ALREADY_REPLAYED = "replay_already_replayed"
REPLAY_OF = "beam_ecommerce:replay_of"
"""Attribute that carries a replayed record's ``dead_letter_id`` through the core to ``keep_identity``."""
_OWN_DEF = "a fix function is a def in a module of your own"


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


def _attempt(joined: tuple[str, dict[str, list]]) -> Attempt:
    """Loaded (with its row's ``event_id``), or failed again (where and why, this time)."""
    dead_letter_id, found = joined
    if found["landed"]:
        return dead_letter_id, LOADED, found["landed"][0], None, None, None
    return dead_letter_id, FAILED_AGAIN, None, *found["failed"][0]


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
