"""A fix function for replay tests, named ``tests.reliability.fixes:repair`` on the command line."""

from __future__ import annotations

import orjson


def repair(payload: bytes) -> bytes:
    """Undoes two producer bugs: an unknown ``schema_version`` (JSON) and a lower-case currency (CSV).

    Raises on a payload that is no JSON object and no CSV row: that record stays in the dead letter.
    """
    if payload.startswith(b"{"):
        event = orjson.loads(payload)
        event["schema_version"] = 1
        return orjson.dumps(event)
    if b"," not in payload:
        raise ValueError("neither a JSON object nor a CSV row")
    return payload.replace(b",eur,", b",EUR,")
