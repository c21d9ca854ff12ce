"""WriteDeadLetterFiles: dead letters as JSONL files, locally or under ``gs://``."""

from __future__ import annotations

import apache_beam as beam
import orjson
from apache_beam.io import fileio
from apache_beam.transforms.window import FixedWindows

# A stream's dead-letter files: one per minute of event time.
STREAM_WINDOW_SECONDS = 60


def dead_letter_prefix(directory: str, run_id: str) -> str:
    """Where one run's dead-letter files go: ``<directory>/run_id=<run_id>/dead_letter``."""
    return f"{directory.rstrip('/')}/run_id={run_id}/dead_letter"


class WriteDeadLetterFiles(beam.PTransform):
    """Dead-letter rows -> JSONL files; returns what the write reports (file names or results).

    A batch run writes one set of shards. A stream (``window_seconds`` set) writes one
    file per fixed window of that many seconds, named after the window, so files appear
    while the stream runs instead of at an end it never reaches.
    """

    def __init__(self, directory: str, run_id: str, window_seconds: int | None = None) -> None:
        super().__init__()
        self.directory = directory
        self.run_id = run_id
        self.window_seconds = window_seconds

    def expand(self, dead_letters):
        lines = dead_letters | "ToJson" >> beam.Map(lambda row: orjson.dumps(row).decode("utf-8"))
        prefix = dead_letter_prefix(self.directory, self.run_id)
        if self.window_seconds is None:
            return lines | "Write" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
        folder, name = prefix.rsplit("/", 1)
        return (
            lines
            | "Window" >> beam.WindowInto(FixedWindows(self.window_seconds))
            | "WriteWindows"
            >> fileio.WriteToFiles(
                path=folder,
                file_naming=fileio.default_file_naming(name, ".jsonl"),
                shards=1,
                sink=lambda _: fileio.TextSink(),
            )
        )
