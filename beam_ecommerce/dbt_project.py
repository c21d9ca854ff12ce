"""The dbt project, run in-process on the local warehouse.

The project is the repository's ``dbt/`` folder; a wheel carries a copy of it as package
data (``beam_ecommerce/dbt``, setup.py's ``build_py``), so an installed package finds it
without the checkout.

``build`` runs ``dbt build`` with the bundled profile's ``local`` target (dbt-duckdb) on a
DuckDB file the pipelines wrote and reports what ran; every failure is a ``DbtError``
with a one-line message. ``daily_revenue`` reads the finance mart's last days back.

dbt keeps its state (``target/``) and logs beside the warehouse by default, so builds of
different warehouses never share them. dbt's runner is not re-entrant: one build runs at
a time in a process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

_PACKAGED_PROJECT = Path(__file__).resolve().parent / "dbt"
_CHECKOUT_PROJECT = Path(__file__).resolve().parent.parent / "dbt"
PROJECT_DIR = _PACKAGED_PROJECT if (_PACKAGED_PROJECT / "dbt_project.yml").is_file() else _CHECKOUT_PROJECT
"""The dbt project: the installed package's copy, else the checkout's (an editable install); its
``profiles.yml`` is the bundled profile."""

PROFILES_DIR = PROJECT_DIR
LOCAL_TARGET = "local"
DUCKDB_PATH_VARIABLE = "BEAM_ECOMMERCE_DUCKDB"
"""The environment variable the ``local`` target reads the DuckDB file's path from."""

_RUNNER_LOCK = threading.Lock()
_FAILED = frozenset({"error", "fail", "partial success"})


class DbtError(RuntimeError):
    """dbt could not build the warehouse; the message is one line for the user."""


@dataclass(frozen=True)
class NodeResult:
    """What happened to one node (model, seed, data test, unit test) of a run."""

    name: str
    resource_type: str
    status: str
    seconds: float
    message: str

    @property
    def failed(self) -> bool:
        return self.status in _FAILED


@dataclass(frozen=True)
class DbtBuildResult:
    """What ``build`` ran: every node's outcome, the wall time, and where dbt wrote its state."""

    nodes: tuple[NodeResult, ...]
    seconds: float
    target_path: Path
    log_path: Path

    def count(self, resource_type: str) -> int:
        """Nodes of ``resource_type`` (``model``, ``seed``, ``test``, ``unit_test``) that ran."""
        return sum(node.resource_type == resource_type for node in self.nodes)

    def summary(self) -> str:
        """One line: what was built and tested, and how long it took."""
        kinds = (("model", "model"), ("seed", "seed"), ("test", "data test"), ("unit_test", "unit test"))
        counts = [(self.count(kind), label) for kind, label in kinds]
        parts = [f"{n} {label}{'s' if n > 1 else ''}" for n, label in counts if n]
        return f"dbt build OK: {', '.join(parts)} in {self.seconds:.1f}s"


def default_state_paths(duckdb_path: str | os.PathLike) -> tuple[Path, Path]:
    """dbt's target and log folders for a warehouse: ``dbt/target`` and ``dbt/logs`` beside the file."""
    state = Path(duckdb_path).resolve().parent / "dbt"
    return state / "target", state / "logs"


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """Sets one environment variable for the duration (the profile reads it), then restores it."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def invoke(
    args: Sequence[str],
    duckdb_path: str | os.PathLike,
    target_path: str | os.PathLike | None = None,
    log_path: str | os.PathLike | None = None,
    quiet: bool = True,
    callbacks: Sequence[Callable] = (),
):
    """Runs one dbt command with the bundled project and profile on ``duckdb_path``.

    Returns dbt's ``dbtRunnerResult``; ``args`` is the command and its own options
    (``["build", "--select", "fct_orders"]``). The project, profile, target ``local``
    and the target and log folders (``default_state_paths``) are added unless ``args``
    names them. ``quiet`` leaves only errors on the console; ``callbacks`` receive dbt's
    events.
    """
    from dbt.cli.main import dbtRunner

    default_target, default_logs = default_state_paths(duckdb_path)
    defaults = {
        "--project-dir": str(PROJECT_DIR),
        "--profiles-dir": str(PROFILES_DIR),
        "--target": LOCAL_TARGET,
        "--target-path": str(target_path or default_target),
        "--log-path": str(log_path or default_logs),
    }
    # A user's own choice (`--target bigquery`, say) wins over the defaults.
    given = {arg.split("=", 1)[0] for arg in args} | ({"--target"} if "-t" in args else set())
    argv = [*args, *(item for option, value in defaults.items() if option not in given for item in (option, value))]
    if quiet:
        argv += ["--quiet", "--no-use-colors"]
    with _RUNNER_LOCK, _environment(DUCKDB_PATH_VARIABLE, str(Path(duckdb_path).resolve())):
        try:
            return dbtRunner(callbacks=list(callbacks)).invoke(argv)
        finally:
            _release_duckdb_file()


def _release_duckdb_file() -> None:
    """Closes the database dbt-duckdb keeps open in the process after a run.

    Until then DuckDB refuses this process any other connection to the file (a
    read-only reader, the pipelines' writer) and other processes cannot write it.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def build(
    duckdb_path: str | os.PathLike,
    select: str | None = None,
    full_refresh: bool = False,
    *,
    target_path: str | os.PathLike | None = None,
    log_path: str | os.PathLike | None = None,
) -> DbtBuildResult:
    """``dbt build`` (seeds, models, data and unit tests) on the warehouse at ``duckdb_path``.

    ``select`` is a dbt selection (``"fct_orders+"``); ``full_refresh`` rebuilds the
    incremental models from scratch. Raises ``DbtError`` if the warehouse is missing or
    any node errors or fails.
    """
    path = Path(duckdb_path)
    if not path.is_file():
        raise DbtError(f"no warehouse at {path}: run `beam-ecommerce batch` or `beam-ecommerce demo` first")
    default_target, default_logs = default_state_paths(path)
    target = Path(target_path or default_target)
    logs = Path(log_path or default_logs)
    args = ["build"]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    started = time.perf_counter()
    outcome = invoke(args, path, target, logs)
    seconds = time.perf_counter() - started
    if outcome.exception is not None or outcome.result is None:
        raise DbtError(f"dbt build could not run on {path}: {_first_line(outcome.exception)} (log: {logs}/dbt.log)")
    nodes = tuple(_node_result(result) for result in outcome.result.results)
    if not nodes:
        raise DbtError(f"nothing to build: --select {select!r} matches no model, seed or test")
    failed = [node for node in nodes if node.failed]
    if failed or not outcome.success:
        raise DbtError(_failure_line(failed, len(nodes), logs))
    return DbtBuildResult(nodes, seconds, target, logs)


def _node_result(result) -> NodeResult:
    return NodeResult(
        name=result.node.name,
        resource_type=str(result.node.resource_type),
        status=str(result.status),
        seconds=float(result.execution_time or 0.0),
        message=_first_line(result.message),
    )


def _failure_line(failed: list[NodeResult], total: int, logs: Path) -> str:
    first = failed[0] if failed else None
    detail = f": {first.resource_type} {first.name} {first.status}: {first.message}" if first else ""
    others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"dbt build failed on {len(failed)} of {total} nodes{detail}{others}; log: {logs}/dbt.log"


def _first_line(value: object) -> str:
    lines = [line.strip() for line in str(value or "").splitlines() if line.strip()]
    return lines[0] if lines else "no message"


@dataclass(frozen=True)
class DailyRevenue:
    """One day of the finance mart, every category and currency together, in EUR."""

    revenue_date: date
    orders: int
    cancelled_orders: int
    refunded_orders: int
    net_revenue_eur: float


def daily_revenue(duckdb_path: str | os.PathLike, days: int = 7) -> list[DailyRevenue]:
    """The last ``days`` days of ``marts.dm_daily_revenue``, oldest first (read-only)."""
    import duckdb

    try:
        con = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as error:
        raise DbtError(f"cannot read {duckdb_path}: {_first_line(error)}") from None
    try:
        rows = con.execute(
            """
            select revenue_date, sum(orders), sum(cancelled_orders), sum(refunded_orders), sum(net_revenue_eur)
            from marts.dm_daily_revenue
            group by revenue_date
            order by revenue_date desc
            limit ?
            """,
            [days],
        ).fetchall()
    except duckdb.CatalogException:
        raise DbtError(f"{duckdb_path} has no marts.dm_daily_revenue: run `beam-ecommerce dbt build` first") from None
    finally:
        con.close()
    return [
        DailyRevenue(day, int(o), int(c), int(r), round(float(eur or 0.0), 2)) for day, o, c, r, eur in reversed(rows)
    ]
