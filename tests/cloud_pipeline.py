"""The batch pipeline built for BigQuery, not run: its graph is what the cloud tests inspect."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_ecommerce.pipelines import batch


def bigquery_batch_pipeline(tmp_path: Path) -> beam.Pipeline:
    """The batch pipeline with ``--sink=bigquery`` over one small local file."""
    (tmp_path / "e.jsonl").write_text("{}\n")
    pipeline, _ = batch.build_pipeline(
        PipelineOptions(
            [
                f"--input={tmp_path}/e.jsonl",
                "--sink=bigquery",
                "--bigquery_dataset=proj:shop",
                "--dead_letter_dir=gs://bucket/dead-letter",
                "--project=proj",
                "--temp_location=gs://bucket/tmp",
            ]
        )
    )
    return pipeline
