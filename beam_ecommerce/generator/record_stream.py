"""The record stream: valid events with duplicates and malformed records mixed in."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

from beam_ecommerce.generator.clock import Clock
from beam_ecommerce.generator.codecs import Codec, codec_for
from beam_ecommerce.generator.config import DUPLICATE, JSONL, VALID, GeneratedRecord, GeneratorConfig
from beam_ecommerce.generator.malformations import Malformer
from beam_ecommerce.generator.pools import build_pools
from beam_ecommerce.generator.simulation import ShopSimulation

# Records are planned in strata of this many: each stratum gets its share of the
# malformed and duplicate records, at random positions inside it.
STRATUM = 128

_event_type = itemgetter("event_type")


@dataclass(slots=True)
class RecordBatch:
    """Consecutive records as parallel lists (see :class:`GeneratedRecord` for the fields)."""

    payloads: list[bytes] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    events: list[dict[str, Any] | None] = field(default_factory=list)


class RecordStream:
    """All records of one data set in emission order, in batches, with running tallies.

    ``kind_counts`` counts the records emitted so far per kind (``"valid"``,
    ``"duplicate"`` and malformation kinds); ``events_by_type`` the valid ones per type.
    ``pools`` are the users and products the events are drawn from.
    """

    def __init__(self, config: GeneratorConfig, codec: Codec) -> None:
        self._config = config
        self._codec = codec
        self.pools = build_pools(config.seed, config.num_users, config.num_products)
        self.kind_counts: Counter[str] = Counter()
        self.events_by_type: Counter[str] = Counter()

    def __iter__(self) -> Iterator[RecordBatch]:
        config = self._config
        total = config.num_events
        valid, invalid, duplicates = config.planned_counts()
        simulation = ShopSimulation(self.pools, Clock(config.start, config.days), config.seed, valid)
        # Its own generator, so the valid events do not depend on what is mixed in among them.
        rng = random.Random(f"records:{config.seed}")
        malformer = Malformer(self._codec, simulation.fresh_event, rng)
        encode = self._codec.encode
        special = invalid + duplicates
        # Duplicates re-send a valid record of the current batch, or of the latest batch
        # that has one: re-sends come soon after the original.
        with_valid = RecordBatch()

        def add_valid(batch: RecordBatch, count: int) -> None:
            events = simulation.take(count)
            payloads = list(map(encode, events))
            batch.payloads += payloads
            batch.kinds += repeat(VALID, count)
            batch.events += events
            self.events_by_type.update(map(_event_type, events))

        for start in range(0, total, STRATUM):
            stop = min(start + STRATUM, total)
            # A duplicate needs a valid record before it: with duplicates planned, the
            # first record is valid (planned_counts leaves room for that).
            first = start + 1 if start == 0 and duplicates else start
            positions = sorted(rng.sample(range(first, stop), special * stop // total - special * start // total))
            batch = RecordBatch()
            at = start
            for position in positions:
                if position > at:
                    add_valid(batch, position - at)
                at = position + 1
                if rng.random() * (invalid + duplicates) < invalid:
                    invalid -= 1
                    kind = malformer.next_kind()
                    payload, event = malformer.make(kind)
                else:
                    duplicates -= 1
                    kind = DUPLICATE
                    source = batch if VALID in batch.kinds else with_valid
                    payload, event = _pick_valid(source, rng.random())
                batch.payloads.append(payload)
                batch.kinds.append(kind)
                batch.events.append(event)
            if stop > at:
                add_valid(batch, stop - at)
            if VALID in batch.kinds:
                with_valid = batch
            self.kind_counts.update(batch.kinds)
            yield batch


def _pick_valid(batch: RecordBatch, uniform: float) -> tuple[bytes, dict[str, Any]]:
    """A valid record of ``batch`` (which has one), chosen by a draw from ``[0, 1)``."""
    at = int(uniform * len(batch.kinds))
    while batch.kinds[at] != VALID:
        at = (at + 1) % len(batch.kinds)
    return batch.payloads[at], batch.events[at]  # type: ignore[return-value]


def generate_records(config: GeneratorConfig, fmt: str = JSONL) -> Iterator[GeneratedRecord]:
    """Every record of the data set in ``fmt`` (``"jsonl"`` or ``"csv"``), lazily, in constant memory.

    CSV payloads are rows under the ``csv_columns()`` header (not included here).
    """
    stream = RecordStream(config, codec_for(fmt))
    return (record for batch in stream for record in map(GeneratedRecord, batch.payloads, batch.kinds, batch.events))


def generate_events(config: GeneratorConfig) -> Iterator[GeneratedRecord]:
    """Every record of the data set in JSON form, lazily, in constant memory."""
    return generate_records(config, JSONL)
