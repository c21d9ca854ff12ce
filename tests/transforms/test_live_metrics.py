"""LiveMetrics on Beam's TestStream: early, on-time and late panes, out-of-order and too-late events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to

from beam_ecommerce.records import RowBatch
from beam_ecommerce.transforms import RunContext
from beam_ecommerce.transforms.live_metrics import NONE, LiveMetrics, metrics_key, order_category

CONTEXT = RunContext("live-test", "test")
LATENESS = timedelta(minutes=10)
MINUTE = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


def _order(event_id: str, second: int, quantity: int = 1, price: float = 10.0) -> dict:
    return {
        "event_id": event_id,
        "event_type": "order_placed",
        "occurred_at": MINUTE + timedelta(seconds=second),
        "currency": "EUR",
        "items": [
            {"product_id": "p1", "product_category": "books", "unit_price": 1.0, "quantity": 1},
            {"product_id": "p2", "product_category": "electronics", "unit_price": price, "quantity": quantity},
        ],
        "revenue": round(1.0 + price * quantity, 2),
    }


def _page_view(event_id: str, second: int) -> dict:
    return {
        "event_id": event_id,
        "event_type": "page_view",
        "occurred_at": MINUTE + timedelta(seconds=second),
        "product_category": "books",
    }


def _dead_letter(second: int, stage: str) -> dict:
    return {
        "dead_letter_id": f"dl-{second}",
        "timestamp": (MINUTE + timedelta(seconds=second)).isoformat(),
        "stage": stage,
    }


def _streaming_pipeline() -> TestPipeline:
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    return TestPipeline(options=options)


def _figures(row: dict) -> tuple:
    return (
        row["product_category"],
        row["currency"],
        row["pane_timing"],
        row["pane_index"],
        row["orders"],
        row["gross_revenue"],
        row["items"],
        row["events"],
        row["dead_letters"],
        row["watermark_lag_seconds"] is None,
    )


def test_a_window_fires_early_on_time_and_late_and_drops_what_is_later_than_allowed():
    end = MINUTE + timedelta(minutes=1)
    stream = (
        TestStream()
        .advance_watermark_to(MINUTE.timestamp())
        .add_elements([_order("o1", 10), _dead_letter(15, "validate")])
        .advance_processing_time(3)  # an early pane: the minute so far
        .add_elements([RowBatch([_order("o2", 50, quantity=2), _page_view("v1", 20)])])  # out of order, batched
        .advance_watermark_to(end.timestamp())  # the on-time pane
        .add_elements([_order("o3", 30)])  # behind the watermark, within the lateness: a late pane
        .advance_watermark_to((end + LATENESS).timestamp() + 1)
        .add_elements([_order("o4", 40)])  # beyond the allowed lateness: not counted
        .advance_watermark_to_infinity()
    )
    pipeline = _streaming_pipeline()
    events = pipeline | stream
    rows = (events, pipeline | "NoDeadLetters" >> beam.Create([])) | LiveMetrics(CONTEXT, LATENESS)
    assert_that(
        rows | beam.Map(_figures),
        equal_to(
            [
                ("electronics", "EUR", "EARLY", 0, 1, 11.0, 2, 1, 0, True),
                (NONE, NONE, "EARLY", 0, 0, 0.0, 0, 0, 1, True),
                ("electronics", "EUR", "ON_TIME", 1, 2, 32.0, 5, 2, 0, False),
                ("books", NONE, "ON_TIME", 0, 0, 0.0, 0, 1, 0, False),
                (NONE, NONE, "ON_TIME", 1, 0, 0.0, 0, 0, 1, False),
                ("electronics", "EUR", "LATE", 2, 3, 43.0, 7, 3, 0, False),
            ]
        ),
    )
    pipeline.run()


def test_rows_carry_their_window_and_counts_by_type_and_stage():
    stream = (
        TestStream()
        .add_elements([_order("o1", 5), _page_view("v1", 6), _page_view("v2", 61)])
        .advance_watermark_to_infinity()
    )
    pipeline = _streaming_pipeline()
    dead_letters = pipeline | "DeadLetters" >> beam.Create([_dead_letter(7, "parse"), _dead_letter(8, "late")])
    rows = (pipeline | stream, dead_letters) | LiveMetrics(CONTEXT, LATENESS)
    assert_that(
        rows
        | beam.Map(
            lambda row: (
                row["window_start"],
                row["window_end"] - row["window_start"],
                row["product_category"],
                tuple((t["event_type"], t["events"]) for t in row["events_by_type"]),
                tuple((s["stage"], s["dead_letters"]) for s in row["dead_letters_by_stage"]),
                row["run_id"],
            )
        ),
        equal_to(
            [
                (MINUTE, timedelta(minutes=1), "electronics", (("order_placed", 1),), (), "live-test"),
                (MINUTE, timedelta(minutes=1), "books", (("page_view", 1),), (), "live-test"),
                (MINUTE + timedelta(minutes=1), timedelta(minutes=1), "books", (("page_view", 1),), (), "live-test"),
                (MINUTE, timedelta(minutes=1), NONE, (), (("late", 1), ("parse", 1)), "live-test"),
            ]
        ),
    )
    pipeline.run()


def test_an_order_counts_under_its_largest_line_as_the_marts_do():
    assert order_category(_order("o1", 0)["items"]) == "electronics"
    tie = [
        {"product_category": "books", "unit_price": 5.0, "quantity": 2},
        {"product_category": "garden", "unit_price": 10.0, "quantity": 1},
    ]
    assert order_category(tie) == "books"  # the first line wins a tie
    assert order_category([]) == NONE
    assert metrics_key(_dead_letter(0, "parse")) == (NONE, NONE)
    assert metrics_key(_page_view("v", 0)) == ("books", NONE)
