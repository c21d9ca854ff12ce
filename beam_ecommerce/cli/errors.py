"""How the command line reports what a user can fix: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

PROG = "beam-ecommerce"


class UserError(Exception):
    """A problem the user can fix; reported in one line, without a traceback."""


@contextmanager
def run_errors() -> Iterator[None]:
    """Turns a pipeline's option and warehouse errors, and a run that could not write its files, into ``UserError``.

    Imported late: the pipelines import Beam, which ``generate`` must not pay for.
    """
    from beam_ecommerce.io.duckdb.warehouse import WarehouseError
    from beam_ecommerce.pipelines.options import OptionsError

    try:
        yield
    except (OptionsError, WarehouseError) as error:
        raise UserError(str(error)) from None
    except RuntimeError as error:  # Beam re-raises what a step raised as a RuntimeError
        raise _file_error(error) from None


def _file_error(error: RuntimeError) -> UserError:
    """A run that failed writing its files (disk full, no permission) as one line; other failures go on."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        raise error
    return UserError(f"the run stopped, nothing was loaded: cannot write its files: {cause}")
