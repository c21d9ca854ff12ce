"""One replay attempt of one dead letter: what the replay transforms produce and the replay books keep."""

from __future__ import annotations

LOADED = "loaded"
FAILED_AGAIN = "dead_letter"
"""The outcomes of a replay attempt (``replay_attempts.outcome``)."""

Attempt = tuple[str, str, str | None, str | None, str | None, str | None]
"""``(dead_letter_id, outcome, event_id, stage, error_type, error_message)``: one replay of one dead letter."""
ATTEMPT_COLUMNS = ("dead_letter_id", "outcome", "event_id", "stage", "error_type", "error_message")
"""The names of an ``Attempt``'s fields, as the ``replay_attempts`` table and files call them."""
