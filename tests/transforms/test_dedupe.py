import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_ecommerce.transforms import DeduplicateEvents


def test_keeps_the_lowest_source_of_each_event_id():
    batches = [
        [{"event_id": "a", "source": "f:2"}, {"event_id": "b", "source": "f:3"}],
        [{"event_id": "a", "source": "f:1"}, {"event_id": "a", "source": "f:9"}],
    ]
    pipeline = TestPipeline()
    kept = pipeline | beam.Create(batches) | DeduplicateEvents()
    assert_that(kept | beam.Map(lambda r: (r["event_id"], r["source"])), equal_to([("a", "f:1"), ("b", "f:3")]))
    result = pipeline.run()
    result.wait_until_finish()
    from apache_beam.metrics.metric import MetricsFilter

    counters = result.metrics().query(MetricsFilter().with_name("duplicates"))["counters"]
    assert sum(c.committed for c in counters) == 2
