"""The batch pipeline, not the sink, deduplicates for a sink that cannot absorb duplicates (BigQuery's MERGE)."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_ecommerce.io.warehouse import WarehouseSink
from beam_ecommerce.pipelines.sinks import write_batch_run
from beam_ecommerce.records import RowBatch
from tests.cloud_pipeline import bigquery_batch_pipeline


class _PassThroughSink(WarehouseSink):
    """A stand-in sink that hands back what it was given: what a sink receives is the point here.

    A fake because BigQuery cannot run on this machine; the real ``BigQuerySink``'s graph is
    checked below.
    """

    def __init__(self, absorbs_duplicates: bool) -> None:
        self.absorbs_duplicates = absorbs_duplicates

    def write(self, rows, dead_letters, duplicates=None):
        return rows


def _batches() -> list[RowBatch]:
    return [
        RowBatch([{"event_id": "e1", "source": "f:2"}, {"event_id": "e2", "source": "f:3"}]),
        RowBatch([{"event_id": "e1", "source": "f:1"}]),
    ]


def test_a_sink_that_cannot_absorb_duplicates_gets_one_row_per_event_id_the_lowest_source():
    with TestPipeline() as pipeline:
        landed = write_batch_run(_PassThroughSink(False), pipeline | beam.Create(_batches()), None)
        assert_that(landed, equal_to([{"event_id": "e1", "source": "f:1"}, {"event_id": "e2", "source": "f:3"}]))


def test_a_sink_that_absorbs_duplicates_gets_the_cores_batches_untouched():
    with TestPipeline() as pipeline:
        landed = write_batch_run(_PassThroughSink(True), pipeline | beam.Create(_batches()), None)
        assert_that(landed | beam.Map(len), equal_to([2, 1]))


def test_the_bigquery_batch_pipeline_deduplicates_before_its_sink_loads(tmp_path):
    """The rows BigQuerySink counts and loads come out of ``Deduplicate`` (composed by the pipeline:
    ``test_layers`` keeps the sink itself from importing transforms)."""
    producers = {}

    class Producers(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node):
            inputs = node.main_inputs.values()
            producers[node.full_label] = [pcoll.producer.full_label for pcoll in inputs if pcoll.producer]

        enter_composite_transform = visit_transform

    bigquery_batch_pipeline(tmp_path).visit(Producers())
    assert producers["CountOffered"] == ["Deduplicate/KeepFirst"]
