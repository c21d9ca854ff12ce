"""The stream's bounded dedupe: one row per ``event_id``, with state kept per event-time bucket.

Every row that passed the core is stamped with its event time (``occurred_at``) and passes a
dedupe on ``event_id`` whose state is kept per event-time bucket until the watermark is
``horizon`` past the bucket, then cleared by one timer. With a horizon of at least the
allowed lateness (``transforms.lateness``), every re-send that is not late meets the state
of its first copy.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import timedelta

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from beam_ecommerce import metrics
from beam_ecommerce.records import Row, RowBatch

DUPLICATES_TAG = "duplicates"
"""The output of ``DeduplicateStream`` that carries the repeats it absorbed (counted as ``metrics.DUPLICATES``)."""


class EventIdSetCoder(beam.coders.Coder):
    """A set of event ids as one newline-joined blob: ids match ``^[A-Za-z0-9_-]+$`` (the contract).

    State is encoded on every read and write; this is several times cheaper than pickling a set.
    """

    def encode(self, value: set[str]) -> bytes:
        return "\n".join(value).encode()

    def decode(self, encoded: bytes) -> set[str]:
        return set(encoded.decode().split("\n")) if encoded else set()

    def is_deterministic(self) -> bool:
        return False


def dedupe_key(row: Row, bucket_seconds: int, shards: int) -> tuple[int, int]:
    """The state a row's event id is checked against: its event-time bucket, and a shard of the id.

    A re-send carries the same ``occurred_at`` as its first copy, so both meet in one bucket.
    """
    bucket = int(row["occurred_at"].timestamp()) // bucket_seconds * bucket_seconds
    return bucket, zlib.crc32(row["event_id"].encode()) % shards


def split_by_dedupe_key(rows: RowBatch, bucket_seconds: int, shards: int) -> Iterator[tuple[tuple[int, int], RowBatch]]:
    """A batch of rows -> one batch per dedupe key."""
    parts: dict[tuple[int, int], RowBatch] = {}
    for row in rows:
        parts.setdefault(dedupe_key(row, bucket_seconds, shards), RowBatch()).append(row)
    yield from parts.items()


class DropRepeatedEventIds(beam.DoFn):
    """Per (event-time bucket, shard): passes each event id's first row, stamped with its event time.

    Repeats go to ``DUPLICATES_TAG``. The bucket's ids are kept until the watermark is
    ``horizon`` past the bucket's end, then one timer clears them all: state is bounded by
    the ids of ``horizon`` plus one bucket, and there is one key per bucket and shard, not
    one per event (the local runner runs a bundle and scans timers per key).
    """

    SEEN = ReadModifyWriteStateSpec("seen", EventIdSetCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, horizon: timedelta, bucket_seconds: int) -> None:
        self.horizon = horizon
        self.bucket_seconds = bucket_seconds

    def process(
        self,
        keyed: tuple[tuple[int, int], RowBatch],
        seen=beam.DoFn.StateParam(SEEN),
        expiry=beam.DoFn.TimerParam(EXPIRY),
    ) -> Iterator[beam.window.TimestampedValue]:
        (bucket, _), rows = keyed
        ids = seen.read() or set()
        known = len(ids)
        repeats = 0
        for row in rows:
            event_time = row["occurred_at"].timestamp()
            if row["event_id"] in ids:
                repeats += 1
                yield pvalue.TaggedOutput(DUPLICATES_TAG, beam.window.TimestampedValue(row, event_time))
            else:
                ids.add(row["event_id"])
                yield beam.window.TimestampedValue(row, event_time)
        if len(ids) > known:
            seen.write(ids)
            expiry.set(Timestamp.of(bucket + self.bucket_seconds + self.horizon.total_seconds()))
        metrics.counter(metrics.DUPLICATES).inc(repeats)

    @on_timer(EXPIRY)
    def expire(self, seen=beam.DoFn.StateParam(SEEN)) -> None:
        seen.clear()


class DeduplicateStream(beam.PTransform):
    """Row batches -> single rows in event time, one per ``event_id`` within ``horizon``.

    Returns the ``rows`` and the ``duplicates`` it absorbed, so that a sink can count them.
    ``shards`` spreads one bucket's ids over that many keys: a few suit the local runner,
    which runs each key's work as its own bundle; on Dataflow more keys mean more parallelism.
    """

    def __init__(self, horizon: timedelta, shards: int = 1, bucket_seconds: int = 60) -> None:
        super().__init__()
        self.horizon = horizon
        self.shards = shards
        self.bucket_seconds = bucket_seconds

    def expand(self, row_batches):
        return (
            row_batches
            | "SplitByDedupeKey"
            >> beam.FlatMap(split_by_dedupe_key, self.bucket_seconds, self.shards).with_output_types(
                tuple[tuple[int, int], RowBatch]
            )
            | "DropRepeats"
            >> beam.ParDo(DropRepeatedEventIds(self.horizon, self.bucket_seconds)).with_outputs(
                DUPLICATES_TAG, main="rows"
            )
        )
