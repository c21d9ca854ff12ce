"""Poison inputs as hypothesis strategies: records no producer should send, and some will.

Each strategy draws small choices and builds the bytes from them, so that very large
and deeply nested payloads cost hypothesis nothing to draw or shrink.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import orjson
from hypothesis import strategies as st

from beam_ecommerce.schemas import csv_columns
from tests.samples import EVENT_TYPES, sample_event

BOM = b"\xef\xbb\xbf"
_BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x80")
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
_PII_COLUMNS = ("email", "ip_address")
_ids = st.integers(0, 10**12).map(lambda n: f"evt-{n:012d}")


@st.composite
def events(draw, now: datetime | None = None) -> dict:
    """A valid event; with ``now``, one that occurred up to two hours before it (so some are late)."""
    event = sample_event(draw(st.sampled_from(EVENT_TYPES)), draw(_ids))
    if now is not None:
        occurred_at = now - timedelta(minutes=draw(st.integers(0, 120)))
        event["occurred_at"] = occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return event


def _with_field(event: dict, draw, value) -> bytes:
    # The standard library writes integers of any size; orjson stops at 64 bits.
    return json.dumps(event | {draw(st.sampled_from(sorted(event))): value}).encode()


JSON_KINDS = (
    "valid",
    "bom",
    "truncated",
    "wrong_type",
    "null",
    "bad_utf8",
    "large",
    "deep",
    "nan",
    "duplicate_keys",
    "top_level",
    "empty",
    "junk",
)


@st.composite
def json_payloads(draw, now: datetime | None = None) -> tuple[str, bytes]:
    """``(kind, payload)``: one JSON-ish record, valid or broken in one of the ways the issue lists."""
    event = draw(events(now))
    kind = draw(st.sampled_from(JSON_KINDS))
    return kind, _json_payload(draw, kind, event)


def _json_payload(draw, kind: str, event: dict) -> bytes:
    valid = orjson.dumps(event)
    if kind == "valid":
        return valid
    if kind == "bom":
        return BOM + valid
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "wrong_type":
        return _with_field(event, draw, draw(_JSON_VALUES))
    if kind == "null":
        return _with_field(event, draw, None)
    if kind == "bad_utf8":
        at = valid.index(b'"user_id"') + len(b'"user_id":"')
        return valid[:at] + draw(st.sampled_from(_BAD_UTF8)) + valid[at:]
    if kind == "large":
        size = draw(st.sampled_from([5_000, 300_000]))
        return orjson.dumps(event | {"page_url": "/" + "x" * size})
    if kind == "deep":
        depth = draw(st.sampled_from([3, 200, 5_000]))
        return valid[:-1] + b',"referrer":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    if kind == "nan":
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"nan"]))
        return valid[:-1] + b',"amount":' + token + b"}"
    if kind == "duplicate_keys":
        return valid[:-1] + b',"event_id":' + orjson.dumps(draw(_ids)) + b"}"
    if kind == "top_level":
        return draw(st.sampled_from([orjson.dumps([event]), b'"text"', b"42", b"null", b"true", b"[]"]))
    if kind == "empty":
        return draw(st.sampled_from([b"", b" ", b"\t", BOM]))
    return draw(st.binary(max_size=60))


def _cells(event: dict) -> list[str]:
    cells = []
    for name in csv_columns():
        value = event.get(name)
        cells.append("" if value is None else orjson.dumps(value).decode() if isinstance(value, list) else str(value))
    return cells


def _row(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()[:-1].encode("utf-8")


CSV_KINDS = ("valid", "quotes", "embedded_newline", "too_few", "too_many", "stray_quote", "nan", "bad_utf8", "empty")


@st.composite
def csv_records(draw) -> tuple[str, bytes]:
    """``(kind, payload)``: one CSV record under the ``csv_columns()`` header, valid or broken in a CSV way."""
    kind = draw(st.sampled_from(CSV_KINDS))
    return kind, _csv_record(draw, kind, _cells(draw(events())))


def _csv_record(draw, kind: str, cells: list[str]) -> bytes:
    column = draw(st.integers(0, len(cells) - 1))
    if kind == "quotes":
        cells[column] = f'say "{cells[column]}", twice ""'
    elif kind == "embedded_newline":
        # Not in a PII column: its row keeps only a hash, and the test counts a row's lines from its values.
        column = draw(st.sampled_from([i for i, name in enumerate(csv_columns()) if name not in _PII_COLUMNS]))
        cells[column] = cells[column] + draw(st.sampled_from(["\n", "\r\n", "\n\n"])) + "rest"
    elif kind == "too_few":
        del cells[draw(st.integers(1, len(cells))) :]
    elif kind == "too_many":
        cells += [""] * draw(st.integers(1, 3))
    elif kind == "stray_quote":
        return _row(cells).replace(b",", b',"', 1)
    elif kind == "nan":
        cells[csv_columns().index(draw(st.sampled_from(["amount", "unit_price"])))] = draw(
            st.sampled_from(["nan", "inf", "-inf", "NaN", "1e400"])
        )
    elif kind == "bad_utf8":
        return _row(cells).replace(b",", b"," + draw(st.sampled_from(_BAD_UTF8)), 1)
    elif kind == "empty":
        return b""
    return _row(cells)
