"""Names of the Beam metrics every run reports; the reconciliation reads them back."""

from __future__ import annotations

from apache_beam.metrics import Metrics

NAMESPACE = "beam_ecommerce"

RECORDS_IN = "records_in"
# The source's own books, kept by the file reader apart from the core's: what it offered, what it
# read, and (one counter per file and byte offset) where it could not read on.
SOURCE_RECORDS = "source_records"
SOURCE_BYTES = "source_bytes"
READ_FAILURES = "read_failures"
DEAD_LETTERS = "dead_letters"
ROWS_LOADED = "rows_loaded"
DUPLICATES = "duplicates"
# A batch load that could not get the warehouse in time: its staged work waits for --resume.
LOAD_DEFERRED = "load_deferred"


def counter(name: str):
    """A counter in the project's namespace."""
    return Metrics.counter(NAMESPACE, name)


def dead_letter_counter(stage: str, error_type: str):
    """Counter of dead letters for one stage and reason, e.g. ``dead_letters.validate.schema_required``."""
    return Metrics.counter(NAMESPACE, f"{DEAD_LETTERS}.{stage}.{error_type}")
