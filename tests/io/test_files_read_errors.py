"""A file that cannot be read even to its header still leaves a trace: one read-error record."""

from __future__ import annotations

import gzip

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_ecommerce.io.files import ReadEventFiles
from beam_ecommerce.transforms.parse import READ_ERROR_ATTRIBUTE


def test_a_gzip_csv_cut_inside_its_header_block_yields_one_read_error(tmp_path):
    data = gzip.compress(b"event_id,page_url\ne1,/x\n")
    (tmp_path / "e.csv.gz").write_bytes(data[:5])  # inside gzip's own header: no byte decompresses
    pipeline = TestPipeline()
    records = pipeline | ReadEventFiles(str(tmp_path / "e.csv.gz")) | beam.FlatMap(lambda batch: batch)
    assert_that(
        records | beam.Map(lambda r: (r.source, r.payload, READ_ERROR_ATTRIBUTE in dict(r.attributes))),
        equal_to([(f"{tmp_path}/e.csv.gz:1", b"", True)]),
    )
    pipeline.run()
