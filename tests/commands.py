"""The command line of ``beam-ecommerce`` in a child process, as a terminal starts it."""

from __future__ import annotations

import sys

# A test run started in the background ignores SIGINT, and children inherit that; a terminal's
# child gets Ctrl-C as KeyboardInterrupt. (Not ``preexec_fn``: forking a process with gRPC threads
# and running Python before exec aborted the child.)
_AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'beam-ecommerce'; runpy.run_module('beam_ecommerce.cli', run_name='__main__')"
)


def cli_command(*args: str) -> list[str]:
    """``python -m beam_ecommerce.cli ARGS`` with Ctrl-C (SIGINT) delivered as it is from a terminal."""
    return [sys.executable, "-c", _AS_FROM_A_TERMINAL, *args]
