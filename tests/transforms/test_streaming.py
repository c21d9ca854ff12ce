"""The streaming edge on Beam's TestStream: out-of-order and late events, re-sends, watermarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import apache_beam as beam
import orjson
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_ecommerce.records import RawRecord, RowBatch
from beam_ecommerce.records.dead_letter import original_payload
from beam_ecommerce.transforms import BatchRecords, ProcessEvents, RunContext
from beam_ecommerce.transforms.stream_dedupe import DeduplicateStream
from tests.samples import EVENT_TYPES, sample_event

CONTEXT = RunContext("stream-test", "test")
LATENESS = timedelta(hours=1)


def _message(event_id: str, occurred_at: datetime, message_id: int) -> RawRecord:
    event = sample_event(EVENT_TYPES[message_id % len(EVENT_TYPES)], event_id)
    event["occurred_at"] = occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return RawRecord(orjson.dumps(event), f"projects/p/subscriptions/s#{message_id}")


def _run(stream: TestStream):
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    pipeline = TestPipeline(options=options)
    processed = pipeline | stream | BatchRecords() | ProcessEvents(CONTEXT, "k", allowed_lateness=LATENESS)
    rows = processed.rows | DeduplicateStream(horizon=2 * LATENESS)
    return pipeline, rows.rows, processed.dead_letters


def test_each_event_id_lands_once_and_late_events_go_to_the_dead_letter():
    now = datetime.now(UTC).replace(microsecond=0)
    first = _message("evt-00000001", now - timedelta(minutes=5), 1)
    second = _message("evt-00000002", now - timedelta(minutes=1), 2)
    out_of_order = _message("evt-00000003", now - timedelta(minutes=40), 3)
    late = _message("evt-00000004", now - timedelta(hours=3), 4)
    resend_first = first._replace(source="projects/p/subscriptions/s#5")
    stream = (
        TestStream()
        .advance_watermark_to((now - timedelta(minutes=30)).timestamp())
        .add_elements([first, second, first])  # a re-send inside one bundle
        .advance_watermark_to((now - timedelta(minutes=2)).timestamp())
        .add_elements([out_of_order, late, resend_first])  # behind the watermark, too late, re-sent
        .advance_processing_time(5)
        .advance_watermark_to_infinity()
    )
    pipeline, rows, dead_letters = _run(stream)
    assert_that(
        rows | beam.Map(lambda row: row["event_id"]),
        equal_to(["evt-00000001", "evt-00000002", "evt-00000003"]),
        label="one row per event id",
    )
    assert_that(
        dead_letters | beam.Map(lambda d: (d["stage"], d["error_type"], d["event_id"], original_payload(d))),
        equal_to([("late", "beyond_allowed_lateness", "evt-00000004", late.payload)]),
        label="late events are dead letters with their payload",
    )
    pipeline.run()


def test_rows_carry_their_event_time():
    occurred_at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
    recent = datetime.now(UTC) - timedelta(minutes=1)
    stream = TestStream().add_elements([_message("evt-00000009", recent, 1)]).advance_watermark_to_infinity()
    pipeline, rows, _ = _run(stream)

    class _Timestamp(beam.DoFn):
        def process(self, row, timestamp=beam.DoFn.TimestampParam):
            yield timestamp.micros == int(row["occurred_at"].timestamp() * 1_000_000)

    assert_that(rows | beam.ParDo(_Timestamp()), equal_to([True]))
    pipeline.run()
    assert occurred_at.tzinfo is UTC


def _rows(keyed_ids: list[tuple[str, datetime]]) -> list:
    return [{"event_id": event_id, "occurred_at": occurred_at} for event_id, occurred_at in keyed_ids]


# A TestPipeline's start-up is most of a small case's cost: each example runs CASES_PER_PIPELINE
# generated cases, each in its own branch of one pipeline (its own Create and DeduplicateStream,
# its ids prefixed with its case), so 3 examples run the 15 cases that 15 one-case examples ran.
CASES_PER_PIPELINE = 5
_dedupe_case = st.tuples(
    st.lists(st.sampled_from([f"evt-{n:08d}" for n in range(12)]), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=5),  # shards
    st.integers(min_value=1, max_value=7),  # batch size
)


@settings(max_examples=3, deadline=None)
@given(st.lists(_dedupe_case, min_size=CASES_PER_PIPELINE, max_size=CASES_PER_PIPELINE))
def test_dedupe_keeps_exactly_one_row_per_event_id(cases):
    with TestPipeline() as pipeline:
        kept, duplicates, expected_ids, expected_duplicates = [], [], [], []
        for number, (ids, shards, batch_size) in enumerate(cases):
            case = f"case{number}"
            ids = [f"{case}-{event_id}" for event_id in ids]
            minutes = {event_id: n for n, event_id in enumerate(sorted(set(ids)))}
            rows = _rows([(event_id, datetime(2026, 11, 3, 10, minutes[event_id], tzinfo=UTC)) for event_id in ids])
            batches = [RowBatch(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
            distinct = (
                pipeline
                | f"Create {case}" >> beam.Create(batches)
                | f"Dedupe {case}" >> DeduplicateStream(timedelta(hours=2), shards=shards)
            )
            kept.append(distinct.rows)
            duplicates.append(distinct.duplicates)
            expected_ids += sorted(set(ids))
            if len(ids) > len(set(ids)):
                expected_duplicates.append((case, len(ids) - len(set(ids))))
        assert_that(
            kept | "All rows" >> beam.Flatten() | "Ids" >> beam.Map(lambda row: row["event_id"]),
            equal_to(expected_ids),
        )
        assert_that(
            duplicates
            | "All duplicates" >> beam.Flatten()
            | "Case" >> beam.Map(lambda row: row["event_id"].split("-", 1)[0])
            | "Count" >> beam.combiners.Count.PerElement(),
            equal_to(expected_duplicates),
            label="the rest are duplicates, case by case",
        )


def test_dedupe_state_expires_once_the_watermark_passes_the_horizon():
    """Bounded state: after the watermark is ``horizon`` past an id's bucket, its state is gone."""
    occurred_at = datetime(2026, 11, 3, 10, 0, 30, tzinfo=UTC)
    batch = RowBatch(_rows([("evt-00000001", occurred_at)]))
    horizon = timedelta(minutes=10)
    stream = (
        TestStream()
        .add_elements([batch, batch])  # the second copy is a repeat
        .advance_watermark_to((occurred_at + timedelta(minutes=1) + horizon).timestamp() + 1)
        .add_elements([batch])  # state expired: passes again
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(options=options) as pipeline:
        distinct = pipeline | stream | DeduplicateStream(horizon)
        assert_that(distinct.rows | "Ids" >> beam.Map(lambda row: row["event_id"]), equal_to(["evt-00000001"] * 2))
        assert_that(
            distinct.duplicates | "DuplicateIds" >> beam.Map(lambda row: row["event_id"]),
            equal_to(["evt-00000001"]),
            label="one repeat while the state lived",
        )
