"""Where the local platform keeps its files by default (importable without importing Beam)."""

import os

DEFAULT_WAREHOUSE = "warehouse/ecommerce.duckdb"

# The local Pub/Sub emulator's project, topic and subscription (``stream --emulator`` and the demo).
EMULATOR_PROJECT = "local-shop"
EMULATOR_TOPIC = "events"
EMULATOR_SUBSCRIPTION = "events-stream"


def default_dead_letter_dir(duckdb_path: str) -> str:
    """The dead-letter folder of a local run: beside its warehouse file, wherever the user stands.

    Dead letters carry raw payloads (PII included), so they belong with the warehouse, not
    in whatever directory the command happened to be started from.
    """
    return os.path.join(os.path.dirname(os.path.abspath(duckdb_path)), "dead_letter")
