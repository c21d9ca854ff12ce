"""WriteDeadLetterFiles: dead letters as JSONL files, locally or under ``gs://``."""

from __future__ import annotations

import apache_beam as beam
import orjson


def dead_letter_prefix(directory: str, run_id: str) -> str:
    """Where one run's dead-letter files go: ``<directory>/run_id=<run_id>/dead_letter``."""
    return f"{directory.rstrip('/')}/run_id={run_id}/dead_letter"


class WriteDeadLetterFiles(beam.PTransform):
    """Dead-letter rows -> JSONL shards; returns the PCollection of written file names."""

    def __init__(self, directory: str, run_id: str) -> None:
        super().__init__()
        self.directory = directory
        self.run_id = run_id

    def expand(self, dead_letters):
        return (
            dead_letters
            | "ToJson" >> beam.Map(lambda row: orjson.dumps(row).decode("utf-8"))
            | "Write" >> beam.io.WriteToText(dead_letter_prefix(self.directory, self.run_id), file_name_suffix=".jsonl")
        )
