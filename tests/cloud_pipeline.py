"""The batch and streaming pipelines built for BigQuery, not run: their graphs are what the cloud tests inspect."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_ecommerce.pipelines import batch, streaming

KEY = "cloud-test-key-0123456789"


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
                f"--pii_hash_key={KEY}",
            ]
        )
    )
    return pipeline


def bigquery_streaming_pipeline(_tmp_path: Path | None = None) -> beam.Pipeline:
    """The streaming pipeline with ``--sink=bigquery`` on a subscription."""
    pipeline, _ = streaming.build_pipeline(
        PipelineOptions(
            [
                "--input_subscription=projects/my-project/subscriptions/events",
                "--sink=bigquery",
                "--bigquery_dataset=proj:shop",
                "--dead_letter_dir=gs://bucket/dead-letter",
                f"--pii_hash_key={KEY}",
            ]
        )
    )
    return pipeline
