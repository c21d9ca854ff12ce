"""Malformed records: every kind is rejected either by the parser or by the event contract.

Each malformed record is made from a fresh valid event that the stream never emits, so
the funnels of the valid events stay consistent. Dict-level kinds change the event and
encode it normally; byte-level kinds produce bytes that never parse into an event.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from beam_ecommerce.generator.codecs import Codec, CsvCodec
from beam_ecommerce.generator.config import CSV, JSONL
from beam_ecommerce.generator.events import EVENT_TYPES, Event
from beam_ecommerce.schemas.contract import event_schemas, event_types

DICT_KINDS = (
    "missing_required_field",
    "wrong_type",
    "bad_enum",
    "unknown_event_type",
    "unknown_schema_version",
    "bad_timestamp",
    "negative_price",
)
JSON_KINDS = ("truncated_json", "not_json", "bad_utf8", "not_an_object", *DICT_KINDS, "unexpected_field")
CSV_KINDS = (*DICT_KINDS, "wrong_column_count", "bad_utf8")

# Kinds that need a field only some event types have start from those types.
_EVENT_TYPES_OF = {
    "wrong_type": ("add_to_cart", "payment"),
    "negative_price": ("add_to_cart", "order_placed"),
}

_BAD_ENUM_VALUES: dict[str, tuple[str, ...]] = {
    "device": ("smart_tv", "Mobile", "phone"),
    "signup_channel": ("tv", "affiliate", "Organic"),
    "page_type": ("landing", "PRODUCT", "wishlist"),
    "payment_status": ("pending", "declined", "SUCCEEDED"),
    "payment_method": ("crypto", "cash", "apple pay"),
    "status": ("lost", "returned", "Shipped", "new"),
    "previous_status": ("lost", "pending", "Paid"),
}
_UNKNOWN_EVENT_TYPES = (
    "wishlist_add",
    "product_review",
    "PageView",
    "add-to-cart",
    "checkout_started",
    "coupon_applied",
    "ORDER_PLACED",
)
_UNEXPECTED_FIELDS: tuple[tuple[str, Any], ...] = (
    ("coupon_code", "WELCOME10"),
    ("debug", True),
    ("utm_source", "newsletter"),
    ("client_version", "5.12.0"),
    ("ab_test_group", "B"),
)
_BAD_UTF8 = (b"\xe9", b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x80")
_GARBAGE_START = "#%&<>@^~|"
_GARBAGE = string.ascii_letters + string.digits + string.punctuation + " "
_NOT_JSON_LINES = (
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "ERROR upstream timed out (110: Connection timed out) while reading response header",
    "event_type=page_view&user_id=u0000042&page_url=%2F",
    "#Fields: date time c-ip cs-method cs-uri-stem sc-status",
)


def _missing_required_field(event: Event, rng: random.Random) -> None:
    required = event_schemas()[(event["event_type"], event["schema_version"])].schema["required"]
    # event_type and schema_version select the schema; dropping them is what the
    # unknown_* kinds are about.
    del event[rng.choice([field for field in required if field not in ("event_type", "schema_version")])]


def _wrong_type(event: Event, rng: random.Random) -> None:
    # Values no parser can coerce to a number, in JSON as in CSV.
    if event["event_type"] == "add_to_cart" and rng.random() < 0.5:
        event["quantity"] = rng.choice(("two", "1 pc", "a few"))
    elif event["event_type"] == "add_to_cart":
        event["unit_price"] = f"{event['unit_price']:.2f}".replace(".", ",")
    else:
        event["amount"] = f"{event['amount']:.2f} {event['currency']}"


def _bad_enum(event: Event, rng: random.Random) -> None:
    field = rng.choice([field for field in _BAD_ENUM_VALUES if field in event])
    event[field] = rng.choice(_BAD_ENUM_VALUES[field])


def _bad_timestamp(event: Event, rng: random.Random) -> None:
    # Imported here: email.utils (and the socket module it loads) would cost every run's start-up.
    from email.utils import format_datetime

    occurred = datetime.fromisoformat(event["occurred_at"])
    date, time = event["occurred_at"][:10], event["occurred_at"][11:19]
    event["occurred_at"] = rng.choice(
        (
            f"{date} {time}",
            f"{date}T{time}",
            f"{date}T{time}+01:00",
            occurred.strftime("%d/%m/%Y %H:%M:%S"),
            format_datetime(occurred, usegmt=True),
            int(occurred.timestamp()),
        )
    )


def _negative_price(event: Event, rng: random.Random) -> None:
    line = rng.choice(event["items"]) if event["event_type"] == "order_placed" else event
    line["unit_price"] = -line["unit_price"]


def _with_bad_utf8(payload: bytes, event: Event, rng: random.Random) -> bytes:
    # Inside the user_id value: a text field written with the wrong encoding.
    at = payload.index(event["user_id"].encode()) + 1
    return payload[:at] + rng.choice(_BAD_UTF8) + payload[at:]


class Malformer:
    """Makes the malformed records of one format, its kinds taking turns in shuffled rounds."""

    def __init__(self, codec: Codec, fresh_event: Callable[[random.Random, str], Event], rng: random.Random) -> None:
        self.kinds = kinds_for(codec.format)
        self._codec = codec
        self._fresh_event = fresh_event
        self._rng = rng
        self._round: list[str] = []
        known = event_schemas()
        self._unknown_types = tuple(name for name in _UNKNOWN_EVENT_TYPES if name not in event_types())
        self._newest_version = {name: max(v for t, v in known if t == name) for name in EVENT_TYPES}
        self._dict_kinds: dict[str, Callable[[Event, random.Random], None]] = {
            "missing_required_field": _missing_required_field,
            "wrong_type": _wrong_type,
            "bad_enum": _bad_enum,
            "unknown_event_type": self._unknown_event_type,
            "unknown_schema_version": self._unknown_schema_version,
            "bad_timestamp": _bad_timestamp,
            "negative_price": _negative_price,
            "unexpected_field": self._unexpected_field,
        }

    def next_kind(self) -> str:
        """The kind of the next malformed record: every kind once per round, rounds shuffled."""
        if not self._round:
            self._round = list(self.kinds)
            self._rng.shuffle(self._round)
        return self._round.pop()

    def make(self, kind: str) -> tuple[bytes, Event | None]:
        """A malformed record of ``kind``: its payload and, for dict-level kinds, its event."""
        rng = self._rng
        event = self._fresh_event(rng, rng.choice(_EVENT_TYPES_OF.get(kind, EVENT_TYPES)))
        if kind in self._dict_kinds:
            self._dict_kinds[kind](event, rng)
            return self._codec.encode(event), event
        return self._byte_level(kind, event), None

    def _byte_level(self, kind: str, event: Event) -> bytes:
        rng = self._rng
        codec = self._codec
        if kind == "bad_utf8":
            return _with_bad_utf8(codec.encode(event), event, rng)
        if kind == "truncated_json":
            payload = codec.encode(event)
            return payload[: rng.randrange(1, len(payload))]
        if kind == "not_json":
            if rng.random() < 0.5:
                return rng.choice(_NOT_JSON_LINES).encode()
            length = rng.randrange(10, 120)
            return (rng.choice(_GARBAGE_START) + "".join(rng.choices(_GARBAGE, k=length))).encode()
        if kind == "not_an_object":
            return rng.choice(
                (
                    orjson.dumps([event]),
                    orjson.dumps(codec.encode(event).decode()),
                    b"null",
                    str(rng.randrange(1_000_000)).encode(),
                )
            )
        if kind == "wrong_column_count" and isinstance(codec, CsvCodec):
            cells = codec.cells(event)
            if rng.random() < 0.5:
                del cells[-rng.randint(1, 3) :]
            else:
                cells.extend([""] * rng.randint(1, 2))
            return codec.encode_cells(cells)
        raise ValueError(f"unknown malformation kind {kind!r} for {codec.format}")

    def _unknown_event_type(self, event: Event, rng: random.Random) -> None:
        event["event_type"] = rng.choice(self._unknown_types)

    def _unknown_schema_version(self, event: Event, rng: random.Random) -> None:
        newest = self._newest_version[event["event_type"]]
        event["schema_version"] = 0 if rng.random() < 0.2 else newest + rng.randint(1, 9)

    def _unexpected_field(self, event: Event, rng: random.Random) -> None:
        properties = event_schemas()[(event["event_type"], event["schema_version"])].schema["properties"]
        name, value = rng.choice([(n, v) for n, v in _UNEXPECTED_FIELDS if n not in properties])
        event[name] = value


def kinds_for(fmt: str) -> tuple[str, ...]:
    """The malformation kinds of ``"jsonl"`` or ``"csv"``."""
    if fmt == JSONL:
        return JSON_KINDS
    if fmt == CSV:
        return CSV_KINDS
    raise ValueError(f"unknown format {fmt!r}")
