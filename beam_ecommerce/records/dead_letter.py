"""The dead-letter row: a record the pipeline could not take, kept whole with where and why.

A dead letter keeps Google's DataflowTemplates columns (``timestamp``, ``payloadString``,
``payloadBytes``, ``attributes``, ``errorMessage``, ``stacktrace``) and adds where and
why the record failed. Rows are JSON-ready: the same dict goes to JSONL files, to
BigQuery and, through the files, to DuckDB. Plain data, no Beam: the transforms build
these rows, the sinks and replay read them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beam_ecommerce.records.raw import CSV, JSON, RawRecord, Row

PARSE = "parse"
VALIDATE = "validate"
ENRICH = "enrich"
SINK = "sink"
UNEXPECTED_ERROR = "unexpected_error"

# E-mail and IPv4 addresses. Linear in the text: an e-mail match may only start where a run of
# local-part characters starts (the look-behind) and its runs are possessive, so no position is
# scanned twice; the unanchored ``[\w.+-]+@`` took quadratic time on a long word (100k characters: 52 s).
_CLEAR_PII = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+|(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Longest text a dead letter's message columns keep (the payload columns keep the record whole).
MAX_MESSAGE_CHARS = 8192
# Dead-letter attributes that describe a file record (Pub/Sub records carry their message's attributes).
FORMAT_ATTRIBUTE = "beam_ecommerce:file_format"
CSV_HEADER_ATTRIBUTE = "beam_ecommerce:csv_header"


@dataclass(frozen=True)
class RunContext:
    """What every record of one pipeline run is stamped with."""

    run_id: str
    pipeline_version: str


def _dead_letter_id(raw: RawRecord, stage: str) -> str:
    digest = hashlib.sha256(raw.source.encode("utf-8", "surrogatepass"))
    digest.update(b"\0" + stage.encode() + b"\0" + raw.payload)
    return digest.hexdigest()[:32]


def _payload_string(payload: bytes) -> str | None:
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dead_letter_row(
    raw: RawRecord,
    context: RunContext,
    stage: str,
    error_type: str,
    message: str,
    *,
    stacktrace: str | None = None,
    event: dict[str, Any] | None = None,
) -> Row:
    """The dead-letter row for ``raw``, failed at ``stage`` for ``error_type``."""
    event = event or {}
    return {
        "dead_letter_id": _dead_letter_id(raw, stage),
        "timestamp": datetime.now(UTC).isoformat(),
        "payloadString": _payload_string(raw.payload),
        "payloadBytes": base64.b64encode(raw.payload).decode("ascii"),
        "attributes": [{"key": k, "value": v} for k, v in raw.attributes + _file_metadata(raw)],
        "errorMessage": _redact(message),
        "stacktrace": _redact(stacktrace),
        "stage": stage,
        "error_type": error_type,
        "event_id": _redact(_str_or_none(event.get("event_id"))),
        "event_type": _redact(_str_or_none(event.get("event_type"))),
        "source": raw.source,
        "pipeline_version": context.pipeline_version,
        "run_id": context.run_id,
    }


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _redact(text: str | None) -> str | None:
    """``text`` without e-mail or IP addresses: messages can quote a record's values, and only the
    payload columns may hold PII in clear (replay needs them).

    Text longer than ``MAX_MESSAGE_CHARS`` is cut to that many characters first (the cut says
    how long it was), so what is scanned is bounded whatever the record holds.
    """
    if text is None:
        return None
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{_cut_at_word(text[:MAX_MESSAGE_CHARS])}… [cut: {len(text)} characters]"
    return _CLEAR_PII.sub("<redacted>", text)


def _cut_at_word(text: str) -> str:
    """``text`` without its last word: a cut can split an address, and half of one does not match."""
    end = len(text)
    while end and (text[end - 1].isalnum() or text[end - 1] in "_.+-@"):
        end -= 1
    return text[:end]


def _file_metadata(raw: RawRecord) -> tuple[tuple[str, str], ...]:
    """What it takes to parse a CSV record again (its format and its file's header): replay needs it."""
    if raw.format != CSV:
        return ()
    header = ((CSV_HEADER_ATTRIBUTE, ",".join(raw.csv_header)),) if raw.csv_header is not None else ()
    return ((FORMAT_ATTRIBUTE, CSV), *header)


def original_payload(row: Row) -> bytes:
    """The exact bytes a dead letter was made from."""
    return base64.b64decode(row["payloadBytes"])


def original_record(row: Row) -> RawRecord:
    """The raw record a dead letter was made from, as the core first saw it (``dead_letter_row`` undone)."""
    attributes = {item["key"]: item["value"] for item in row["attributes"]}
    record_format = attributes.pop(FORMAT_ATTRIBUTE, JSON)
    header = attributes.pop(CSV_HEADER_ATTRIBUTE, None)
    return RawRecord(
        original_payload(row),
        row["source"],
        record_format,
        tuple(attributes.items()),
        tuple(header.split(",")) if header is not None else None,
    )
