"""Names of the Beam metrics every run reports; the reconciliation reads them back."""

from __future__ import annotations

from apache_beam.metrics import Metrics

NAMESPACE = "beam_ecommerce"

RECORDS_IN = "records_in"
DEAD_LETTERS = "dead_letters"
ROWS_LOADED = "rows_loaded"
DUPLICATES = "duplicates"


def counter(name: str):
    """A counter in the project's namespace."""
    return Metrics.counter(NAMESPACE, name)


def dead_letter_counter(stage: str, error_type: str):
    """Counter of dead letters for one stage and reason, e.g. ``dead_letters.validate.schema_required``."""
    return Metrics.counter(NAMESPACE, f"{DEAD_LETTERS}.{stage}.{error_type}")
