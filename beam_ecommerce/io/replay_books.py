"""Where replays keep their books: which dead letters landed (``replayed``) and every attempt.

``WarehouseBooks``: the local warehouse's ``replayed`` and ``replay_attempts`` tables, for a
replay into DuckDB; ``FileBooks``: one JSONL file of attempts per replay beside its dead-letter
files, for a replay into BigQuery. Both serve ``transforms.replay.ReplayBooks``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import orjson
import pyarrow as pa
from apache_beam import pvalue

from beam_ecommerce import metrics
from beam_ecommerce.io.dead_letter_files import dead_letter_prefix
from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse
from beam_ecommerce.records.replay_attempt import ATTEMPT_COLUMNS, LOADED, Attempt

MARKED = "replay_marked"
ATTEMPTS = "replay_attempts_recorded"

_ATTEMPT_SCHEMA = pa.schema([(name, pa.string()) for name in ATTEMPT_COLUMNS])


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
        recorded, marked = self.warehouse.record_replay_attempts(self.run_id, table)
        metrics.counter(ATTEMPTS).inc(recorded)
        metrics.counter(MARKED).inc(marked)
        yield marked


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
    """``pbegin`` -> the ids in the warehouse's ``replayed`` table (``DuckDBWarehouse.replayed_ids``)."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        super().__init__()
        self.warehouse = warehouse

    def expand(self, pbegin):
        return pbegin | "Once" >> beam.Create([self.warehouse]) | "Read" >> beam.Map(DuckDBWarehouse.replayed_ids)


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
