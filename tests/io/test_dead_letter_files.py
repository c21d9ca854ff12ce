"""Dead-letter files: one set per batch run, one file per window in a stream."""

import glob

import apache_beam as beam
import orjson
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from beam_ecommerce.io.dead_letter_files import WriteDeadLetterFiles


def _read_back(pattern: str) -> dict[str, list[dict]]:
    return {path: [orjson.loads(line) for line in open(path, "rb")] for path in sorted(glob.glob(pattern))}


def test_a_batch_run_writes_its_dead_letters_under_its_run_id(tmp_path):
    dead_letters = [{"dead_letter_id": f"d{n}", "stage": "parse"} for n in range(5)]
    with TestPipeline() as pipeline:
        _ = pipeline | beam.Create(dead_letters) | WriteDeadLetterFiles(str(tmp_path), "run-1")
    written = _read_back(f"{tmp_path}/run_id=run-1/dead_letter*.jsonl")
    assert sorted(row["dead_letter_id"] for rows in written.values() for row in rows) == [f"d{n}" for n in range(5)]


def test_a_stream_writes_one_file_per_window_as_the_watermark_passes(tmp_path):
    stream = (
        TestStream()
        .add_elements([TimestampedValue({"dead_letter_id": "a"}, 10), TimestampedValue({"dead_letter_id": "b"}, 20)])
        .advance_watermark_to(70)
        .add_elements([TimestampedValue({"dead_letter_id": "c"}, 75)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    with TestPipeline(options=options) as pipeline:
        _ = pipeline | stream | WriteDeadLetterFiles(str(tmp_path), "run-2", window_seconds=60)
    written = _read_back(f"{tmp_path}/run_id=run-2/dead_letter*.jsonl")
    assert sorted(sorted(row["dead_letter_id"] for row in rows) for rows in written.values()) == [["a", "b"], ["c"]]
    assert all("1970-01-01T00:0" in path for path in written), "file names carry their window"
