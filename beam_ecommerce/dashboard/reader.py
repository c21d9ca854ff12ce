"""The dashboard's one way into the warehouse: short read-only sessions.

DuckDB lets one process write a file, and a writer (the stream's loads, ``dbt build``)
cannot open it while another process reads it. So the dashboard never keeps the file
open: each request opens it read-only, runs its queries and closes it, and a request
that finds the file locked waits a moment, then reports ``busy`` instead of failing.
Writers win: while a writer waits for the file (``DuckDBWarehouse.writer_waiting``), a
new session reports ``busy`` at once instead of opening it, so the sessions in flight
drain and the writer gets in however many pages are open.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import duckdb

from beam_ecommerce.io.duckdb.warehouse import DuckDBWarehouse, WarehouseError

# How long one request waits for a writer to let go of the file. The stream holds it
# for one bundle's load (well under a second); dbt holds it for a whole build, which is
# worth telling the user about rather than hanging the page.
LOCK_WAIT_SECONDS = 1.5
_BUSY = "The warehouse is busy (a pipeline or dbt is writing to it); retrying."


class WarehouseUnavailable(Exception):
    """The warehouse cannot be read right now; ``reason`` says why, for the page.

    ``reason`` is ``missing`` (no file yet), ``busy`` (a writer holds it) or ``error``
    (anything else DuckDB refused: a corrupt file, a newer storage version).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class QueryError(Exception):
    """One query failed (say, a mart that lacks a column the dashboard reads); others may still work."""


class ReadSession(abc.ABC):
    """One short read of the warehouse."""

    @abc.abstractmethod
    def tables(self) -> frozenset[str]:
        """The tables and views that exist, as ``schema.name``."""

    @abc.abstractmethod
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of one query, as dicts keyed by column name; raises ``QueryError`` if it fails."""


class WarehouseReader(abc.ABC):
    """Where the dashboard reads from; raises ``WarehouseUnavailable`` when it cannot."""

    @abc.abstractmethod
    def session(self) -> AbstractContextManager[ReadSession]:
        """A read session, closed (and the file released) when the block ends."""

    @abc.abstractmethod
    def describe(self) -> str:
        """What is read, for the page and the log."""


class _DuckDBSession(ReadSession):
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def tables(self) -> frozenset[str]:
        found = self._con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database()"
        ).fetchall()
        return frozenset(name for (name,) in found)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self._con.execute(sql, list(params))
        except duckdb.Error as error:
            raise QueryError(str(error).splitlines()[0]) from None
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class DuckDBReader(WarehouseReader):
    """The local DuckDB warehouse file, opened read-only for each session."""

    def __init__(self, path: str, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.path = os.path.abspath(path)
        self.lock_wait_seconds = lock_wait_seconds

    def describe(self) -> str:
        return self.path

    @contextmanager
    def session(self) -> Iterator[ReadSession]:
        if not os.path.exists(self.path):
            raise WarehouseUnavailable(
                "missing", f"No warehouse at {self.path} yet: run `beam-ecommerce demo` (or `batch`) first."
            )
        warehouse = DuckDBWarehouse(self.path)
        if warehouse.writer_waiting():
            raise WarehouseUnavailable("busy", _BUSY)
        try:
            con = warehouse.connect(read_only=True, wait_for_lock=self.lock_wait_seconds)
        except WarehouseError as error:
            if "lock" in str(error).lower():
                raise WarehouseUnavailable("busy", _BUSY) from None
            raise WarehouseUnavailable("error", str(error)) from None
        try:
            yield _DuckDBSession(con)
        finally:
            con.close()
