"""Baselines the benchmarks compare against, committed as code.

- ``naive_beam``: the Beam job a first attempt would write: ``ReadFromText`` ->
  ``json.loads`` -> ``json.dumps`` -> ``WriteToText``, one element per event, no
  validation, no enrichment, no dead letter (it drops what does not parse: the flaw
  the project exists to fix, kept here so the baseline runs on the same input).
- ``plain_loop``: the Python ceiling of the core's work without Beam: orjson and the
  contract's compiled validators in a plain loop over the same files.
- ``pubsub_reader_alone``: the ceiling of a local stream: Beam's own Pub/Sub reader on the
  streaming DirectRunner feeding one DoFn that notes when each event arrived, nothing
  else (``benchmarks.streaming`` runs it in its process).

Run as ``python -m benchmarks.baselines naive_beam|plain_loop INPUT_GLOB OUTPUT_DIR``.
"""

from __future__ import annotations

import glob
import json
import sys
import time

import apache_beam as beam
import orjson
from apache_beam.options.pipeline_options import PipelineOptions

from beam_ecommerce.schemas import event_schemas, validator


def _loads_or_drop(line: bytes):
    try:
        yield json.loads(line)
    except ValueError:
        return


def naive_beam(pattern: str, output: str) -> int:
    """ReadFromText -> json.loads -> json.dumps -> WriteToText on the DirectRunner."""
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as pipeline:
        (
            pipeline
            | beam.io.ReadFromText(pattern, coder=beam.coders.BytesCoder())  # str would crash on bad UTF-8
            | "Parse" >> beam.FlatMap(_loads_or_drop)
            | "Serialize" >> beam.Map(json.dumps)
            | beam.io.WriteToText(f"{output}/naive", file_name_suffix=".jsonl")
        )
    return 0


def plain_loop(pattern: str, output: str) -> int:
    """orjson.loads + the compiled validator of each event's type, no Beam."""
    validators = {key: validator(*key) for key in event_schemas()}
    valid = invalid = 0
    with open(f"{output}/plain_loop.jsonl", "wb") as out:
        for path in sorted(glob.glob(pattern)):
            with open(path, "rb") as lines:
                for line in lines:
                    try:
                        event = orjson.loads(line)
                        validators[(event["event_type"], event["schema_version"])](event)
                    except Exception:  # noqa: BLE001 - a ceiling, not a pipeline: count and go on
                        invalid += 1
                        continue
                    valid += 1
                    out.write(orjson.dumps(event) + b"\n")
    print(f"valid={valid} invalid={invalid}")
    return 0


# When each event id reached the reader-alone pipeline; the DirectRunner runs it in this process.
READER_ARRIVALS: dict[str, float] = {}


class _NoteArrival(beam.DoFn):
    def process(self, message: bytes) -> None:
        event_id = orjson.loads(message)["event_id"]
        READER_ARRIVALS.setdefault(event_id, time.monotonic())


def pubsub_reader_alone(subscription: str) -> beam.Pipeline:
    """ReadFromPubSub -> note each event's arrival: the local stream with no work at all."""
    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    _ = pipeline | beam.io.ReadFromPubSub(subscription=subscription) | beam.ParDo(_NoteArrival())
    return pipeline


if __name__ == "__main__":
    name, pattern, output = sys.argv[1:4]
    sys.exit({"naive_beam": naive_beam, "plain_loop": plain_loop}[name](pattern, output))
