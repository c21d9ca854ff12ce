"""The local warehouse resource: a DuckDB file with ``raw_events``, ``dead_letter``,
``pipeline_runs`` and the books of streams and replays; every statement the platform runs
against that file lives here (the live metrics' upsert in ``live_metrics.py``).

Beam-free, so the dashboard, dbt's helpers and reports open the file without importing a
runner. A run's rows and dead letters arrive as staged JSONL files, and a batch run's rows
also as key lines (``sinks.py``); one ``load`` puts both into DuckDB in a single
transaction, keeping the first copy of each ``event_id`` and dropping ids already in the
table, and checks that it inserted what the keys said it would. DuckDB allows one writer
per file, and the load is it; loading is idempotent, so re-running an input, or a run that
died before it committed, adds nothing twice. Over 400 lines because the file's lock
protocol, its load and its queries share the connection rules (writers first, readers
stand aside) in one class.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import duckdb

from beam_ecommerce.records import DEFAULT_MAX_RECORD_BYTES, Row
from beam_ecommerce.records.replay_attempt import LOADED
from beam_ecommerce.schemas import DEAD_LETTER, RAW_EVENTS
from beam_ecommerce.schemas.tables import Table

_LOGGER = logging.getLogger(__name__)

# How long a writer waits for another process (dbt, the dashboard, another run) to let go of
# the file: --warehouse_lock_timeout_seconds.
LOCK_WAIT_SECONDS = 120.0
# A deferred run's books, beside its staged files.
PENDING_BOOKS = "books.json"
# A writer that waits for the file leaves a marker here; readers that see one stand aside.
WRITERS_WAITING_SUFFIX = ".writers-waiting"
# A fault point for the reliability tests: with BEAM_ECOMMERCE_FAULT=load:inside_transaction
# a load SIGKILLs its own process once all its rows are written and before COMMIT, so a
# test sees a kill certainly inside the transaction. Read once, at import: unset, it costs
# one comparison per load.
FAULT_VARIABLE = "BEAM_ECOMMERCE_FAULT"
LOAD_INSIDE_TRANSACTION = "load:inside_transaction"
_FAULT = os.environ.get(FAULT_VARIABLE)
# DuckDB's own default ``maximum_object_size``: small enough for a buffer per thread.
_PARALLEL_OBJECT_BYTES = 16 << 20
# The largest ``maximum_object_size`` DuckDB's read_json accepts (a UINTEGER).
_DUCKDB_MAX_OBJECT_SIZE = (1 << 32) - 1
# A staged row's key and the order that picks its first copy; a key line (``sinks.py``) holds
# a batch's values of both, as two lists under these names.
ROW_KEY, ROW_ORDER = "event_id", "source"

_PIPELINE_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS pipeline_runs (
  run_id VARCHAR NOT NULL,
  loaded_at TIMESTAMPTZ NOT NULL,
  rows_offered BIGINT NOT NULL,
  rows_loaded BIGINT NOT NULL,
  duplicates BIGINT NOT NULL,
  dead_letters BIGINT NOT NULL,
  dead_letters_loaded BIGINT NOT NULL
)"""

_STREAM_DELIVERIES_DDL = """
CREATE TABLE IF NOT EXISTS stream_deliveries (
  run_id VARCHAR NOT NULL,
  recorded_at TIMESTAMPTZ NOT NULL,
  pulled BIGINT NOT NULL,
  released BIGINT NOT NULL
)"""


@dataclass(frozen=True)
class LoadReport:
    """What one load did: rows offered and kept, duplicates dropped, dead letters stored."""

    run_id: str
    rows_offered: int
    rows_loaded: int
    duplicates: int
    dead_letters: int
    dead_letters_loaded: int

    @property
    def accounted(self) -> int:
        """Records this load accounts for: rows loaded + dead letters + duplicates absorbed."""
        return self.rows_loaded + self.dead_letters + self.duplicates


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or written (locked, corrupt, disk full)."""


class WarehouseLocked(WarehouseError):
    """Another process held the warehouse longer than the writer was allowed to wait."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _column_types(con: duckdb.DuckDBPyConnection, table_name: str) -> dict[str, str]:
    return {name: column_type for name, column_type, *_ in con.execute(f'DESCRIBE "{table_name}"').fetchall()}


@functools.cache
def _contract_types(table: Table) -> dict[str, str]:
    """The column types ``table`` should have, spelled as DuckDB spells them (so they compare as text)."""
    con = duckdb.connect()
    try:
        con.execute(table.duckdb_ddl())
        return _column_types(con, table.name)
    finally:
        con.close()


def add_missing_columns(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Evolves ``table`` additively: adds the contract's new columns, refuses anything else.

    A new contract version may only add optional fields (the contract checks that), so a
    column whose type differs, or a new column that must not be null, means the file was
    made by an incompatible contract: loading into it would fail row by row, so stop here.
    """
    existing = _column_types(con, table.name)
    expected = _contract_types(table)
    retyped = [
        f"{name} is {existing[name]}, not {kind}" for name, kind in expected.items() if existing.get(name, kind) != kind
    ]
    if retyped:
        raise WarehouseError(f"table {table.name} does not match the event contract: {'; '.join(retyped)}")
    for column in table.columns:
        if column.name in existing:
            continue
        if column.mode == "REQUIRED":
            raise WarehouseError(f"cannot add required column {column.name} to {table.name}: its rows have no value")
        con.execute(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {column.duckdb_type()}')
        _LOGGER.info("added column %s %s to %s", column.name, column.duckdb_type(), table.name)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Rolls back the open transaction; a COMMIT that failed (disk full) has ended it already."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute("ROLLBACK")


def fault_point(name: str) -> None:
    """Kills this process here, as a crash or an OOM kill would, if ``BEAM_ECOMMERCE_FAULT`` names this point."""
    if _FAULT == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _sql_list(paths: Iterable[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def staged_object_bytes(max_record_bytes: int) -> int:
    """The largest JSON object a record of at most ``max_record_bytes`` can be staged as.

    DuckDB's read_json refuses any object over its ``maximum_object_size`` (16 MiB by
    default), which once failed a whole load over one large dead letter; so the load reads
    a file that holds a larger object again with this bound. A dead letter holds its record
    twice: as JSON text, where a control character is escaped in 6 bytes, and as base64
    (4 bytes per 3); its message columns are cut at ``MAX_MESSAGE_CHARS``.
    """
    return min(8 * max_record_bytes + (1 << 20), _DUCKDB_MAX_OBJECT_SIZE)


def _read_staged(table: Table, files: list[str], max_object_bytes: int, names: tuple[str, ...] = ()) -> str:
    """A SELECT of ``table``'s columns (or only those ``names``) from staged JSONL files, typed as the table is.

    Timestamps and bytes arrive as text (ISO 8601, base64) and are converted here.
    """
    columns, select = [], []
    for column in table.columns:
        if names and column.name not in names:
            continue
        as_text = column.type in ("TIMESTAMP", "BYTES")
        columns.append(f"'{column.name}': '{'VARCHAR' if as_text else column.duckdb_type()}'")
        name = f'"{column.name}"'
        if column.type == "TIMESTAMP":
            name = f"CAST({name} AS TIMESTAMPTZ) AS {name}"
        elif column.type == "BYTES":
            name = f"from_base64({name}) AS {name}"
        select.append(name)
    return (
        f"SELECT {', '.join(select)} FROM read_json({_sql_list(files)}, format = 'newline_delimited', "
        f"maximum_object_size = {max_object_bytes}, columns = {{{', '.join(columns)}}})"
    )


def _too_large(error: duckdb.InvalidInputException) -> bool:
    """Whether ``error`` is DuckDB's JSON reader meeting an object over its ``maximum_object_size``."""
    return "maximum_object_size" in str(error)


def _non_empty(paths: Iterable[str]) -> list[str]:
    return [path for path in paths if os.path.getsize(path) > 0]


def _read_key_lines(table: Table, key: str, order: str, files: list[str]) -> str:
    """A SELECT of the (key, order) of every row the key lines in ``files`` stand for."""
    types = {column.name: column.duckdb_type() for column in table.columns}
    return (
        f'SELECT unnest("{key}") AS "{key}", unnest("{order}") AS "{order}" FROM read_json({_sql_list(files)}, '
        f"format = 'newline_delimited', columns = {{'{key}': '{types[key]}[]', '{order}': '{types[order]}[]'}})"
    )


@dataclass(frozen=True)
class _Staged:
    """One table's staged JSONL files, their keys read (``_read_keys``): what ``_insert_new`` inserts from."""

    table: Table
    key: str
    order: str
    files: list[str]
    object_bytes: int
    """The ``maximum_object_size`` the files are read with (see ``staged_object_bytes``)."""
    read_keys: str
    """A SELECT of the (key, order) of every staged row, from the key lines or a temporary table of them."""
    offered: int
    copies: str
    """A temporary table of the (key, order) of every staged row whose key is staged more than once."""
    later_copies: str
    """A temporary table of the (key, order) of every staged row that is not its key's first."""
    ties: bool
    """Whether two staged rows share their key and order: then the rows cannot tell the first copy."""

    @property
    def large_objects(self) -> bool:
        return self.object_bytes > _PARALLEL_OBJECT_BYTES

    @property
    def present(self) -> str:
        """The temporary table ``_insert_new`` makes of the staged keys already in the table."""
        return f"present_keys_{self.table.name}"


def _read_keys(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    key: str,
    order: str,
    files: list[str],
    max_object_bytes: int,
    key_lines: Sequence[str] = (),
) -> _Staged | None:
    """Reads only the key and order of the staged ``files`` of ``table``; ``None`` if they hold nothing.

    Where the files come with key lines (one JSON line of a staged batch's keys and orders,
    as two lists), those are read instead: a tenth of the bytes (at 10M rows 1.3 s against
    3.3 s). DuckDB's JSON reader holds buffers of ``maximum_object_size`` per thread, so
    files are read on every thread with its default size; if one holds a larger object (a
    dead letter of a huge record), they are read on one thread with room for
    ``max_object_bytes``, the largest a record can stage as. Key lines do not tell whether
    a row is that large: ``_insert_new`` finds out.

    From key lines only the keys' hashes are kept (8 bytes a row), and the (key, order) of
    the rows whose hash repeats are read again: keeping every key and order spilled out of
    512MB at 10M rows (3.2 against 2.1 s, benchmarks/README.md, session 13). The rows' own
    files cost as much to read as to insert from, so their keys and orders are read once,
    into a temporary table.
    """
    files = _non_empty(files)
    if not files:
        return None
    key_lines = _non_empty(key_lines)
    hashes, copies, later_copies, row_keys = (
        f"{part}_{table.name}" for part in ("key_hashes", "staged_copies", "later_copies", "row_keys")
    )
    object_bytes = _PARALLEL_OBJECT_BYTES

    def keep_hashes(read: str) -> None:
        con.execute(f'CREATE TEMP TABLE {hashes} AS SELECT hash("{key}") AS key_hash FROM ({read})')

    def keep_row_keys() -> None:
        con.execute(f"CREATE TEMP TABLE {row_keys} AS {_read_staged(table, files, object_bytes, (key, order))}")

    # Whichever it is, ``read`` can be read again on every thread.
    read = ""
    if key_lines:
        lines = _read_key_lines(table, key, order, key_lines)
        try:
            keep_hashes(lines)
            read = lines
        except duckdb.InvalidInputException as error:
            if not _too_large(error):
                raise
            # a line of keys longer than DuckDB reads in parallel: the rows' files are read instead
    if not read:
        try:
            keep_row_keys()
        except duckdb.InvalidInputException as error:
            if not _too_large(error):
                raise
            object_bytes = max_object_bytes
            with _one_thread_reads(con):
                keep_row_keys()
        read = f"FROM {row_keys}"
        keep_hashes(read)
    (offered,) = con.execute(f"SELECT count(*) FROM {hashes}").fetchone()
    # Repeated keys are found by their hashes: grouping 10M 8-byte hashes fits the memory
    # limit where grouping the keys themselves spilled (1.2 against 3.3-4.2 s). A key that
    # only shares its hash with another is its own least copy, so it is never dropped.
    with _hash_table_on_the_right(con):
        con.execute(
            f"""CREATE TEMP TABLE {copies} AS SELECT s."{key}", s."{order}" FROM ({read}) AS s
            SEMI JOIN (SELECT key_hash FROM {hashes} GROUP BY key_hash HAVING count(*) > 1) AS repeated
            ON hash(s."{key}") = repeated.key_hash"""
        )
    con.execute(f"DROP TABLE {hashes}")
    (ties,) = con.execute(
        f'SELECT EXISTS (SELECT 1 FROM {copies} GROUP BY "{key}", "{order}" HAVING count(*) > 1)'
    ).fetchone()
    con.execute(
        f"""CREATE TEMP TABLE {later_copies} AS SELECT "{key}", "{order}" FROM {copies}
        EXCEPT SELECT "{key}", min("{order}") FROM {copies} GROUP BY "{key}"
        """
    )
    return _Staged(table, key, order, files, object_bytes, read, offered, copies, later_copies, ties)


@contextlib.contextmanager
def _one_thread_reads(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Keeps the files' order while the block runs, which keeps DuckDB's JSON reader on one thread."""
    con.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        _reset(con, "SET preserve_insertion_order = false")


@contextlib.contextmanager
def _hash_table_on_the_right(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Keeps DuckDB from swapping a join's sides while the block runs: the right side, the
    smaller by far, is the one to build the hash table on (DuckDB's estimate put it on the
    millions of staged rows)."""
    con.execute("SET disabled_optimizers = 'build_side_probe_side'")
    try:
        yield
    finally:
        _reset(con, "RESET disabled_optimizers")


def _reset(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """Runs ``statement`` unless the block before it failed inside a transaction, which refuses every
    statement until it is rolled back: then the error that failed it is the one to raise."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute(statement)


def _insert_new(con: duckdb.DuckDBPyConnection, staged: _Staged | None) -> tuple[int, int]:
    """Inserts the staged rows whose key the table lacks, the first of each key by order; (staged, inserted).

    The rows are read from the files once, straight into the table: only the (key, order)
    of later copies (``_read_keys``) and the staged keys already in the table are
    anti-joined away. DuckDB would build its hash table on the files' rows (1M rows: 4.1 s
    against 2.0 s), so it is kept from swapping the join's sides. The keys already in the
    table are found first, from the staged keys, so that a load never hashes every key the
    table holds: when it did, 1M rows into a table of 10M took 7.5 against 4.6 s, and each
    50-row load of a stream 1.5 against 0.4 s (``benchmarks.load_into_table``). A temporary
    table of every staged row made the whole load 37 s against 26 s at 10M rows, where it
    spilled out of 512MB (benchmarks/README.md, session 7): it is only made when two staged
    rows tie on key and order, the one case where the rows alone cannot tell which to keep.

    The keys were read apart from the rows (from key lines, or a first pass), so the count
    inserted is checked against theirs: every staged key not in the table, once. A
    disagreement (key lines that do not match their rows) raises before anything commits.
    """
    if staged is None:
        return 0, 0
    inserted = _insert_first_copies(con, staged)
    table, key = staged.table.name, staged.key
    (later,) = con.execute(f'SELECT count(*) - count(DISTINCT "{key}") FROM {staged.copies}').fetchone()
    (present,) = con.execute(f"SELECT count(*) FROM {staged.present}").fetchone()
    expected = staged.offered - later - present
    if inserted != expected:
        raise WarehouseError(
            f"{table}: the staged files hold {staged.offered} keys, {expected} of them new, but {inserted} rows "
            "were inserted: the staged rows and their keys disagree, so nothing was loaded"
        )
    return staged.offered, inserted


def _insert_first_copies(con: duckdb.DuckDBPyConnection, staged: _Staged) -> int:
    """``_insert_new``'s insert; the rows it inserted."""
    table, key, order, present = staged.table.name, staged.key, staged.order, staged.present
    _find_present(con, staged)
    select = _read_staged(staged.table, staged.files, staged.object_bytes)
    reads = _one_thread_reads(con) if staged.large_objects else contextlib.nullcontext()
    with reads:
        if not staged.ties:
            with _hash_table_on_the_right(con):
                (inserted,) = con.execute(
                    f"""INSERT INTO "{table}" BY NAME SELECT s.* FROM ({select}) AS s
                    ANTI JOIN {staged.later_copies} AS l ON l."{key}" = s."{key}" AND l."{order}" = s."{order}"
                    ANTI JOIN {present} AS p ON p."{key}" = s."{key}"
                    """
                ).fetchone()
            return inserted
        rows = f"staged_rows_{table}"
        con.execute(f"CREATE TEMP TABLE {rows} AS {select}")
    (inserted,) = con.execute(
        f"""
        INSERT INTO "{table}" BY NAME
        WITH copies AS (SELECT rowid AS copy, "{key}", "{order}" FROM {rows}
                        SEMI JOIN {staged.copies} USING ("{key}")),
        later_copies AS (SELECT copy FROM copies EXCEPT SELECT arg_min(copy, "{order}") FROM copies GROUP BY "{key}")
        SELECT s.* FROM {rows} AS s
        ANTI JOIN later_copies ON s.rowid = later_copies.copy
        ANTI JOIN {present} AS p ON p."{key}" = s."{key}"
        """
    ).fetchone()
    return inserted


def _find_present(con: duckdb.DuckDBPyConnection, staged: _Staged) -> None:
    """Makes ``staged.present``, the staged keys the table already holds; an empty table costs no read."""
    table, key = staged.table.name, staged.key
    if not con.execute(f'SELECT EXISTS (FROM "{table}")').fetchone()[0]:
        con.execute(f'CREATE TEMP TABLE {staged.present} AS SELECT "{key}" FROM "{table}" LIMIT 0')
        return
    staged_keys = f"staged_keys_{table}"
    con.execute(f'CREATE TEMP TABLE {staged_keys} AS SELECT "{key}" FROM ({staged.read_keys})')
    # Both sides are tables here, their sizes known: DuckDB hashes the smaller.
    con.execute(
        f'CREATE TEMP TABLE {staged.present} AS SELECT DISTINCT "{key}" FROM {staged_keys} '
        f'SEMI JOIN "{table}" USING ("{key}")'
    )


class DuckDBWarehouse:
    """The DuckDB file behind the local warehouse (the resource; ``DuckDBSink`` is the Beam edge)."""

    def __init__(
        self,
        path: str,
        memory_limit: str = "512MB",
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        lock_timeout_seconds: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.path = path
        self.memory_limit = memory_limit
        self.max_object_bytes = staged_object_bytes(max_record_bytes)
        self.lock_timeout_seconds = lock_timeout_seconds

    @property
    def _writers_waiting_dir(self) -> str:
        return os.path.abspath(self.path) + WRITERS_WAITING_SUFFIX

    def writer_waiting(self) -> bool:
        """Whether a writer in a live process is waiting for the file; readers then stand aside.

        DuckDB lets a writer in only when no other process has the file open, so readers
        that come and go without pause would starve it: writers win.
        """
        try:
            names = os.listdir(self._writers_waiting_dir)
        except FileNotFoundError:
            return False
        return any(_process_alive(int(pid)) for pid, _, _ in (name.partition("-") for name in names) if pid.isdigit())

    @contextlib.contextmanager
    def _announced_writer(self) -> Iterator[None]:
        """Marks this process as a writer waiting for the file while the block runs."""
        os.makedirs(self._writers_waiting_dir, exist_ok=True)
        marker = os.path.join(self._writers_waiting_dir, f"{os.getpid()}-{uuid.uuid4().hex}")
        with open(marker, "w"):
            pass
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(marker)

    def connect(self, read_only: bool = False, wait_for_lock: float = 0.0) -> duckdb.DuckDBPyConnection:
        """A connection; waits up to ``wait_for_lock`` seconds while another process holds the file."""
        if read_only and not os.path.exists(self.path):
            raise WarehouseError(f"no warehouse at {self.path}: run `beam-ecommerce batch` or `demo` first")
        if not read_only:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            con = duckdb.connect(self.path, read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            if "lock" not in str(error).lower() or wait_for_lock <= 0:
                raise self._open_error(error, wait_for_lock) from None
            if read_only:
                con = self._wait_for_lock(read_only, wait_for_lock)
            else:
                with self._announced_writer():
                    con = self._wait_for_lock(read_only, wait_for_lock)
        except (duckdb.InvalidInputException, OSError) as error:
            raise WarehouseError(f"cannot open warehouse {self.path}: {error}") from None
        con.execute(f"SET memory_limit = '{self.memory_limit}'")
        return con

    def _wait_for_lock(self, read_only: bool, wait_for_lock: float) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + wait_for_lock
        while True:
            time.sleep(0.05)
            try:
                return duckdb.connect(self.path, read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                if "lock" not in str(error).lower() or time.monotonic() >= deadline:
                    raise self._open_error(error, wait_for_lock) from None

    def _open_error(self, error: duckdb.Error, waited: float) -> WarehouseError:
        if "lock" not in str(error).lower():
            return WarehouseError(f"cannot open warehouse {self.path}: {error}")
        return WarehouseLocked(
            f"warehouse {self.path} stayed locked by another process (dbt, a dashboard, another run) for "
            f"{waited:g} s (--warehouse_lock_timeout_seconds): {str(error).splitlines()[0]}"
        )

    def prepare(self) -> None:
        """Creates the file and its tables if needed, or evolves an older contract's tables; fails early
        if it cannot be written. Pipelines call it once, before their first load."""
        con = self.connect(wait_for_lock=self.lock_timeout_seconds)
        try:
            self.create_tables(con)
        finally:
            con.close()

    def run_totals(self, run_id: str) -> LoadReport:
        """What all loads of one run added up to (a stream loads many micro-batches).

        Opens the file as the stream's writer does: DuckDB refuses a read-only connection
        in a process that already holds a read-write one, and the demo reads while it streams.
        """
        con = self.connect()
        try:
            totals = con.execute(
                """SELECT coalesce(sum(rows_offered), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(duplicates), 0),
                          coalesce(sum(dead_letters), 0), coalesce(sum(dead_letters_loaded), 0)
                   FROM pipeline_runs WHERE run_id = ?""",
                [run_id],
            ).fetchone()
        finally:
            con.close()
        return LoadReport(run_id, *(int(value) for value in totals))

    def record_deliveries(self, run_id: str, pulled: int, released: int, wait_for_lock: float = 0.0) -> None:
        """Books a stopped stream's source count: messages it pulled, and those it released unloaded at its stop.

        The stream's sink books what it loaded (``pipeline_runs``); this count comes from
        the reader, so that the report's ``lost`` compares two independent counts.
        """
        con = self.connect(wait_for_lock=wait_for_lock)
        try:
            con.execute(_STREAM_DELIVERIES_DDL)
            con.execute(
                "INSERT INTO stream_deliveries VALUES (?, ?, ?, ?)", [run_id, datetime.now(UTC), pulled, released]
            )
        finally:
            con.close()

    def delivery_totals(self, run_id: str) -> tuple[int, int]:
        """(pulled, released) as ``record_deliveries`` booked them for a stream run; (0, 0) if never."""
        con = self.connect()
        try:
            con.execute(_STREAM_DELIVERIES_DDL)
            pulled, released = con.execute(
                "SELECT coalesce(sum(pulled), 0), coalesce(sum(released), 0) FROM stream_deliveries WHERE run_id = ?",
                [run_id],
            ).fetchone()
        finally:
            con.close()
        return int(pulled), int(released)

    def accounted_so_far(self, run_id: str) -> int:
        """Records a running run has accounted for so far; -1 while another process holds the file."""
        try:
            return self.run_totals(run_id).accounted
        except WarehouseError:
            return -1

    def create_tables(self, con: duckdb.DuckDBPyConnection) -> None:
        """Creates the tables, or adds the columns a newer contract has to the tables an older one made."""
        self._create_missing_tables(con)
        for table in (RAW_EVENTS, DEAD_LETTER):
            add_missing_columns(con, table)

    def _begin(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute("BEGIN TRANSACTION")
        self._create_missing_tables(con)  # evolving the tables is prepare()'s, once per run

    @staticmethod
    def _create_missing_tables(con: duckdb.DuckDBPyConnection) -> None:
        for table in (RAW_EVENTS, DEAD_LETTER):
            con.execute(table.duckdb_ddl())
        con.execute(_PIPELINE_RUNS_DDL)

    def load(
        self,
        run_id: str,
        row_files: list[str],
        dead_letter_files: list[str],
        absorbed_before: int = 0,
        row_key_lines: Sequence[str] = (),
    ) -> LoadReport:
        """Loads one run's staged rows and dead letters in one transaction.

        ``row_key_lines`` are the files of the rows' key lines, where they were staged with
        some: the load reads the rows' keys from those. ``absorbed_before`` counts duplicates
        already dropped upstream (by a stream's dedupe); they are booked with the load's own.
        Another process that holds the file delays the load by up to ``lock_timeout_seconds``,
        then it raises ``WarehouseLocked`` and nothing is written.
        """
        con = self.connect(wait_for_lock=self.lock_timeout_seconds)
        try:
            # No order is kept by the dedupe anyway: keeping the files' order only kept DuckDB on one thread.
            con.execute("SET preserve_insertion_order = false")
            staged_rows = _read_keys(
                con, RAW_EVENTS, ROW_KEY, ROW_ORDER, row_files, self.max_object_bytes, row_key_lines
            )
            staged_dead_letters = _read_keys(
                con, DEAD_LETTER, "dead_letter_id", "timestamp", dead_letter_files, self.max_object_bytes
            )
            self._begin(con)
            try:
                offered, loaded = _insert_new(con, staged_rows)
            except duckdb.InvalidInputException as error:
                if staged_rows.large_objects or not _too_large(error):
                    raise
                # The rows' keys came from key lines, which cannot tell that a row is larger
                # than DuckDB reads on every thread: the rows are read again, on one.
                rollback(con)
                self._begin(con)
                staged_rows = replace(staged_rows, object_bytes=self.max_object_bytes)
                offered, loaded = _insert_new(con, staged_rows)
            dead_letters, dead_letters_loaded = _insert_new(con, staged_dead_letters)
            duplicates = offered - loaded + absorbed_before
            report = LoadReport(run_id, offered, loaded, duplicates, dead_letters, dead_letters_loaded)
            con.execute(
                "INSERT INTO pipeline_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, datetime.now(UTC), offered, loaded, duplicates, dead_letters, dead_letters_loaded],
            )
            fault_point(LOAD_INSIDE_TRANSACTION)
            con.execute("COMMIT")
            return report
        except WarehouseError:
            rollback(con)
            raise
        except duckdb.Error as error:
            rollback(con)
            raise WarehouseError(
                f"loading run {run_id} into {self.path} failed, nothing was written: {error}"
            ) from None
        finally:
            con.close()

    def events_by_type(self) -> dict[str, int]:
        """Rows of ``raw_events`` per event type, read-only, ordered by type."""
        con = self.connect(read_only=True)
        try:
            return dict(con.execute("SELECT event_type, count(*) FROM raw_events GROUP BY 1 ORDER BY 1").fetchall())
        finally:
            con.close()

    def dead_letters_by_reason(self, run_id: str) -> dict[str, int]:
        """How many dead letters one run stored, by ``<stage>.<error_type>``."""
        con = self.connect()
        try:
            return dict(
                con.execute(
                    "SELECT stage || '.' || error_type, count(*) FROM dead_letter "
                    "WHERE run_id = ? GROUP BY 1 ORDER BY 1",
                    [run_id],
                ).fetchall()
            )
        finally:
            con.close()

    # The replay books (``io.replay_books.WarehouseBooks``): which dead letters landed, and every attempt.
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

    def dead_letter_rows(self) -> Iterator[Row]:
        """Every row of the ``dead_letter`` table, read in chunks (a replay's source)."""
        con = self.connect(read_only=True)
        try:
            cursor = con.execute("SELECT * FROM dead_letter")
            names = [column[0] for column in cursor.description]
            while chunk := cursor.fetchmany(10_000):
                for values in chunk:
                    yield dict(zip(names, values, strict=True))
        finally:
            con.close()

    def replayed_ids(self) -> frozenset[str]:
        """The dead letters earlier replays landed (none before the first replay, or without a file)."""
        if not os.path.exists(self.path):
            return frozenset()
        con = self.connect(read_only=True)
        try:
            if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'replayed'").fetchone()[0]:
                return frozenset()
            return frozenset(
                dead_letter_id for (dead_letter_id,) in con.execute("SELECT dead_letter_id FROM replayed").fetchall()
            )
        finally:
            con.close()

    def record_replay_attempts(self, run_id: str, attempts: Any) -> tuple[int, int]:
        """Books replay ``run_id``'s ``attempts`` (an Arrow table of ``ATTEMPT_COLUMNS``) and marks what loaded.

        One transaction, idempotent: a retried call adds no attempt of this run and no mark
        twice. Returns (attempts recorded, dead letters newly marked as replayed).
        """
        now = datetime.now(UTC)
        con = self.connect(wait_for_lock=self.lock_timeout_seconds)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(self._REPLAYED_DDL)
            con.execute(self._ATTEMPTS_DDL)
            con.register("attempts", attempts)
            (recorded,) = con.execute(
                """INSERT INTO replay_attempts BY NAME
                   SELECT a.*, ? AS replay_run_id, ? AS attempted_at FROM attempts AS a
                   ANTI JOIN (SELECT * FROM replay_attempts WHERE replay_run_id = ?) AS r
                     ON r.dead_letter_id = a.dead_letter_id""",
                [run_id, now, run_id],
            ).fetchone()
            (marked,) = con.execute(
                """INSERT INTO replayed
                   SELECT a.dead_letter_id, a.event_id, ?, ? FROM attempts AS a
                   ANTI JOIN replayed AS r ON r.dead_letter_id = a.dead_letter_id
                   WHERE a.outcome = ?""",
                [run_id, now, LOADED],
            ).fetchone()
            con.execute("COMMIT")
        except duckdb.Error as error:
            rollback(con)
            raise WarehouseError(f"recording replay {run_id} in {self.path} failed: {error}") from None
        finally:
            con.close()
        return recorded, marked
